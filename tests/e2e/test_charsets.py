"""Specific Character Sets: pydicom's charset files, pushed byte for byte with pynetdicom.

The registration carries the text as pydicom decodes it (ISO 2022 escapes for Japanese
and Korean, ISO 8859 parts, UTF-8, GB18030), trimmed and without NULs; the path carries
its sanitized form, where every run of non-ASCII letters is one ``_`` (contract §3, §5).
Most of these files have an empty StudyDate, which the contract refuses: the test gives
them one (pydicom rewrites only that element).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from tests.e2e.checks import Registrations, files_from
from tests.e2e.cube_contract import expected_file_path, expected_registration
from tests.e2e.dicom_files import CHARSET_FILES, charset_file, data_set_bytes, with_values
from tests.peers.oxidicom_receiver import Receiver
from tests.peers.pynetdicom_peer import run_scu


def _storable(name: str, workdir: Path) -> Path:
    source = charset_file(name)
    if str(dcmread(source, stop_before_pixels=True).get("StudyDate", "")).strip():
        return source
    return with_values(source, workdir / name, {"StudyDate": "20240229"})


@pytest.mark.parametrize("name", CHARSET_FILES)
def test_character_set(
    rx: Receiver,
    aet: str,
    tmp_path: Path,
    name: str,
    wait_for_registrations: Registrations,
) -> None:
    path = _storable(name, tmp_path)
    sent = dcmread(path)

    result = run_scu(rx.host, rx.port, items=[path], calling_aet=aet)

    assert (result.ending, result.statuses) == ("released", (0x0000,))
    expected = expected_file_path(aet, sent)
    assert files_from(rx, aet) == [expected]
    assert data_set_bytes(rx.files_root / expected) == data_set_bytes(path)
    [registration] = wait_for_registrations(aet, 1)
    assert registration == expected_registration(aet, sent, ndicom=1)
    # Spelled out, because this is what the test is about: pydicom's decoded name, but for
    # the empty trailing component groups pydicom leaves out (chrX1, chrX2).
    assert registration["PatientName"].rstrip("=") == str(sent.PatientName)
    assert not registration["PatientName"].isascii()
