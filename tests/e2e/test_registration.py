"""Series registration: a real Celery worker with CUBE's signature runs our tasks (§5).

DCMTK's storescu pushes the two series of the contract's example, as the Rust project's
integration test did: once over two parallel associations, once over one association.
Each series must produce exactly one ``register_pacs_series`` whose kwargs are, key for
key and type for type, what the contract derives from the series' first instance.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydicom import dcmread

from tests.e2e.checks import Registrations, files_from
from tests.e2e.cube_contract import expected_file_path, expected_registration
from tests.e2e.dicom_files import make_instance, write_series
from tests.peers.dcmtk import storescu
from tests.peers.oxidicom_receiver import Receiver
from tests.peers.pynetdicom_peer import run_scu

SERIES_A = {
    "PatientID": "1449c1d",
    "PatientName": "anonymized",
    "PatientBirthDate": "20090701",
    "PatientAge": "030Y",
    "PatientSex": "M",
    "StudyDescription": "MR-Brain w/o Contrast",
    "AccessionNumber": "98edede8b2",
    "StudyDate": "20130308",
    "SeriesNumber": "5",
    "SeriesDescription": "SAG MPRAGE 220 FOV",
    "SeriesInstanceUID": "1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0",
    "ProtocolName": "SAG MPRAGE 220 FOV",
}
SERIES_B = {
    "PatientID": "02",
    "PatientName": "Jane^Doe",
    "PatientBirthDate": "19660101",
    "PatientAge": "002W",
    "PatientSex": "F",
    "StudyDescription": "Hanke_Stadler^0024_transrep",
    "StudyDate": "20130717",
    "SeriesNumber": "401",
    "SeriesDescription": "anat-T1w",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.2.1143.515404396022363061013111326823367652",
}
B_FIRST_INSTANCE = "1.2.826.0.1.3680043.2.1143.1590429688519720198888333603882344634"
A_COUNT, B_COUNT = 6, 4


def _example_series(workdir: Path) -> tuple[list[Path], list[Path]]:
    a = write_series(workdir / "a", SERIES_A, A_COUNT)
    b = write_series(workdir / "b", SERIES_B, B_COUNT, first_instance_uid=B_FIRST_INSTANCE)
    return a, b


def _check_registrations(
    receiver: Receiver, aet: str, a: list[Path], b: list[Path], registrations: Registrations
) -> None:
    # The contract's own example paths, with our AE title for the PACS.
    a_folder = (
        f"SERVICES/PACS/{aet}/1449c1d-anonymized-20090701/"
        "MR-Brain_w_o_Contrast-98edede8b2-20130308/00005-SAG_MPRAGE_220_FOV-a27cf06"
    )
    b_first = (
        f"SERVICES/PACS/{aet}/02-Jane_Doe-19660101/"
        "Hanke_Stadler_0024_transrep-AccessionNumber-20130717/00401-anat-T1w-661b8fc/"
        f"0001-{B_FIRST_INSTANCE}.dcm"
    )
    sent = {path: dcmread(path) for path in [*a, *b]}
    stored = files_from(receiver, aet)
    assert stored == sorted(expected_file_path(aet, ds) for ds in sent.values())
    assert b_first in stored
    assert sum(path.startswith(f"{a_folder}/") for path in stored) == A_COUNT

    tasks = registrations(aet, 2)
    by_series = {kwargs["SeriesInstanceUID"]: kwargs for kwargs in tasks}
    assert len(tasks) == len(by_series) == 2
    expected = {
        SERIES_A["SeriesInstanceUID"]: expected_registration(aet, sent[a[0]], ndicom=A_COUNT),
        SERIES_B["SeriesInstanceUID"]: expected_registration(aet, sent[b[0]], ndicom=B_COUNT),
    }
    assert by_series == expected
    assert by_series[SERIES_A["SeriesInstanceUID"]]["path"] == a_folder
    # The values the contract spells out, as literals.
    assert _subset(by_series[SERIES_A["SeriesInstanceUID"]]) == {
        "StudyDate": "2013-03-08",
        "PatientAge": 10957,
        "ndicom": A_COUNT,
        "pacs_name": aet,
        "AccessionNumber": "98edede8b2",
        "StudyDescription": "MR-Brain w/o Contrast",
    }
    assert _subset(by_series[SERIES_B["SeriesInstanceUID"]]) == {
        "StudyDate": "2013-07-17",
        "PatientAge": 14,
        "ndicom": B_COUNT,
        "pacs_name": aet,
        "AccessionNumber": None,
        "StudyDescription": "Hanke_Stadler^0024_transrep",
    }


def _subset(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("StudyDate", "PatientAge", "ndicom", "pacs_name", "AccessionNumber", "StudyDescription")
    return {key: kwargs[key] for key in keys}


def test_two_series_in_parallel_associations(
    rx: Receiver, aet: str, tmp_path: Path, wait_for_registrations: Registrations
) -> None:
    a, b = _example_series(tmp_path)

    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda files: storescu(rx.host, rx.port, files, calling_aet=aet), [a, b])
        )

    for result in results:
        result.check()
    assert [len(result.responses) for result in results] == [A_COUNT, B_COUNT]
    _check_registrations(rx, aet, a, b, wait_for_registrations)


def test_two_series_in_one_association(
    rx: Receiver, aet: str, tmp_path: Path, wait_for_registrations: Registrations
) -> None:
    a, b = _example_series(tmp_path)

    result = storescu(rx.host, rx.port, [*a, *b], calling_aet=aet).check()

    assert result.responses == ("Success",) * (A_COUNT + B_COUNT)
    _check_registrations(rx, aet, a, b, wait_for_registrations)


def test_series_with_empty_patient_id_is_registered(
    rx: Receiver, aet: str, wait_for_registrations: Registrations
) -> None:
    """A present but empty PatientID is stored and registered with PatientID "", as the
    Rust receiver did: what the C-STORE-RSP says (success) holds for CUBE too (§5)."""
    anonymous = make_instance({"PatientID": "", "StudyDate": "20240105"})
    other = make_instance({"PatientID": "P2", "StudyDate": "20240105"})

    result = run_scu(rx.host, rx.port, items=[anonymous, other], calling_aet=aet)

    assert result.ending == "released"
    assert result.statuses == (0x0000, 0x0000)
    registrations = {
        kwargs["SeriesInstanceUID"]: kwargs for kwargs in wait_for_registrations(aet, 2)
    }
    assert registrations[other.SeriesInstanceUID] == expected_registration(aet, other, ndicom=1)
    assert registrations[anonymous.SeriesInstanceUID] == expected_registration(
        aet, anonymous, ndicom=1
    )
    assert registrations[anonymous.SeriesInstanceUID]["PatientID"] == ""
    assert expected_file_path(aet, anonymous) in files_from(rx, aet)
