"""Values built to hurt: whatever the AE title or the tags say, an instance lands inside
``FILES_ROOT/SERVICES/PACS/`` or is refused with a failure status, never anywhere else, and
its registration still has the contract's kwargs."""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from pathlib import Path

import pytest

from oxidicom.net import AssociationAbortedError, AssociationRejectedError
from tests.peers.celery_worker import CeleryWorker, RegisteredTask
from tests.peers.oxidicom_receiver import Receiver
from tests.reliability.support import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    VERIFICATION,
    Instance,
    Scu,
    data_set_of,
    files_outside,
    leftovers,
    make_instance,
    new_uid,
    stored_files,
)

pytestmark = [pytest.mark.interop]

SAFE_COMPONENT = re.compile(r"[A-Za-z0-9._~-]{1,255}")
FAILURE_RANGES = (range(0xA700, 0xA800), range(0xA900, 0xAA00), range(0xC000, 0xD000))
TOKEN = uuid.uuid4().hex[:12]
"""In every value that would escape, so an escape is found by name."""
ESCAPE = "../" * 24 + f"tmp/escaped-{TOKEN}"

VALUE_CASES: dict[str, dict[str, str | bytes | None]] = {
    "dotdot-patient-id": {"PatientID": ESCAPE},
    "absolute-patient-id": {"PatientID": f"/tmp/escaped-{TOKEN}", "PatientName": None},
    "slashes-everywhere": {
        "PatientName": "a/b/../c",
        "StudyDescription": "../..",
        "SeriesDescription": "/",
        "AccessionNumber": "..",
        "PatientBirthDate": "/..",
    },
    "dotdot-numbers": {"SeriesNumber": "..", "InstanceNumber": "../.."},
    "nul-inside-values": {"PatientID": b"REL\0/../\0X", "StudyDescription": b"a\0\0b\0"},
    "control-characters": {
        "PatientName": b"\x01\x07\x1b[2J\x7f",
        "SeriesDescription": b"\x08\t\n\r",
        "ProtocolName": b"\x1b]0;pwned\x07",
    },
    "ten-thousand-characters": {
        "StudyDescription": "x" * 10_000,
        "SeriesDescription": "y" * 9_998 + "/..",
        "PatientID": "p" * 10_000,
    },
    "invalid-utf8": {
        "SpecificCharacterSet": "ISO_IR 192",
        "PatientName": b"\xff\xfe\xc3\x28/../",
        "StudyDescription": b"\xed\xa0\x80\xc0\xaf..",
        "PatientID": b"\xe2\x82/..",
    },
    "dotdot-sop-instance-uid": {"SOPInstanceUID": "../../.."},
    "dotdot-series-instance-uid": {"SeriesInstanceUID": None},  # set per run below
    "bad-study-date": {"StudyDate": "../../19"},
}
TEXT_KWARGS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "Modality",
    "ProtocolName",
    "StudyDescription",
    "SeriesDescription",
)

AE_TITLE_CASES = {
    "dotdot": b"..",
    "dot": b".",
    "dotdot-slash": b"../..",
    "slash": b"/",
    "dotdot-inside": b"a/../b",
    "nul": b"\0\0AE",
    "control": b"\x01\x1b[31m",
    "backslash": b"\\\\server\\share",
    "all-spaces-but-dot": b"   .",
}


def _instance(case: str) -> Instance:
    values = dict(VALUE_CASES[case])
    if case == "dotdot-series-instance-uid":
        series = f"../../{new_uid()}"
        values.pop("SeriesInstanceUID")
        return make_instance(series, 1, values=values)
    return make_instance(new_uid(), 1, values=values)


def _expected_text(value: str | bytes | None) -> str | None:
    """Contract §5 for text we sent as ASCII: trimmed, NULs removed."""
    if value is None:
        return None
    text = value if isinstance(value, str) else value.decode("latin-1")
    return text.replace("\0", "").strip(" \t\n\r\x0b\x0c")


def _stored_copy(receiver: Receiver, instance: Instance) -> list[Path]:
    return [p for p in stored_files(receiver.files_root) if data_set_of(p) == instance.data_set]


def _check_containment(receiver: Receiver) -> None:
    """Nothing outside SERVICES/PACS/ and the receiver's own folder; no escape by name."""
    workdir = receiver.files_root.parent
    allowed = [receiver.files_root / "SERVICES" / "PACS", receiver.files_root / ".oxidicom"]
    assert files_outside(workdir, allowed) == []
    assert list(Path("/tmp").glob(f"escaped-{TOKEN}*")) == []
    assert list(Path("/").glob(f"escaped-{TOKEN}*")) == []
    assert leftovers(receiver.files_root) == []


def _stored_folder_or_refused(
    receiver: Receiver, instance: Instance, status: int, pacs: str | None
) -> str | None:
    """The series folder the instance was stored in (checked), or None when it was refused
    with a failure status and nothing of it was stored."""
    copies = _stored_copy(receiver, instance)
    if status != 0:
        assert any(status in r for r in FAILURE_RANGES), hex(status)
        assert copies == []
        return None
    [path] = copies
    return _check_stored_path(receiver, path, pacs)


def _check_stored_path(receiver: Receiver, path: Path, pacs: str | None) -> str:
    relative = path.relative_to(receiver.files_root)
    parts = relative.parts
    assert parts[:2] == ("SERVICES", "PACS"), relative
    assert len(parts) == 7, relative
    for part in parts[2:]:
        assert SAFE_COMPONENT.fullmatch(part), relative
        assert part not in (".", ".."), relative
    assert path.resolve().is_relative_to((receiver.files_root / "SERVICES" / "PACS").resolve())
    if pacs is not None:
        assert parts[2] == pacs
    return str(relative.parent)


def _registration(celery_worker: CeleryWorker, instance: Instance) -> RegisteredTask:
    series = _expected_text(instance.series_instance_uid)
    [task] = celery_worker.wait_for_tasks_blocking(
        1, where=lambda t: t.kwargs["SeriesInstanceUID"] == series
    )
    return task


@pytest.mark.parametrize("case", list(VALUE_CASES))
def test_hostile_tag_values_stay_inside_files_root(
    case: str, shared_receiver: Receiver, celery_worker: CeleryWorker
) -> None:
    receiver = shared_receiver
    instance = _instance(case)
    with Scu(receiver.host, receiver.port, calling_ae_title="HOSTILE") as scu:
        response = scu.store_instance(instance)
        scu.release()

    folder = _stored_folder_or_refused(receiver, instance, response.status, "HOSTILE")
    if folder is not None:
        task = _registration(celery_worker, instance)
        kwargs = task.kwargs
        assert kwargs["path"] == folder
        assert kwargs["pacs_name"] == "HOSTILE"
        assert kwargs["ndicom"] == 1
        assert kwargs["StudyDate"] == "2024-01-31"
        sent = dict(VALUE_CASES[case])
        for keyword in TEXT_KWARGS:
            value = kwargs[keyword]
            assert value is None or (isinstance(value, str) and "\0" not in value), keyword
            if "SpecificCharacterSet" not in sent and keyword in sent:
                assert value == _expected_text(sent[keyword]), keyword
    _check_containment(receiver)


@pytest.mark.parametrize("case", list(AE_TITLE_CASES))
def test_hostile_calling_ae_titles_stay_inside_files_root(
    case: str, shared_receiver: Receiver, celery_worker: CeleryWorker
) -> None:
    receiver = shared_receiver
    instance = make_instance(new_uid(), 1)
    try:
        scu = Scu(receiver.host, receiver.port, calling_ae_title=AE_TITLE_CASES[case])
    except (AssociationRejectedError, AssociationAbortedError):
        assert _stored_copy(receiver, instance) == []  # refused: fine, nothing stored
    else:
        with scu:
            response = scu.store_instance(instance)
            scu.release()
        folder = _stored_folder_or_refused(receiver, instance, response.status, None)
        if folder is not None:
            task = _registration(celery_worker, instance)
            assert task.kwargs["path"] == folder
            assert task.kwargs["ndicom"] == 1
            pacs_name = task.kwargs["pacs_name"]
            assert isinstance(pacs_name, str)
            assert "\0" not in pacs_name
    _check_containment(receiver)


def test_a_repeated_presentation_context_id_is_answered_once(shared_receiver: Receiver) -> None:
    """Two proposals under one ID: the first is answered and used (the receiver once built
    an answer its own state machine refused, and dropped the connection with a traceback)."""
    receiver = shared_receiver
    contexts = [(VERIFICATION, [EXPLICIT_VR_LE]), (VERIFICATION, [IMPLICIT_VR_LE])]
    with Scu(receiver.host, receiver.port, contexts=contexts, context_ids=[1, 1]) as scu:
        [context] = scu.association.contexts.values()
        assert context.transfer_syntax == EXPLICIT_VR_LE
        assert scu.echo() == 0
        scu.release()
    assert "Traceback" not in receiver.log()


DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"


def _deflated_instance(zeros_before_header: int) -> Instance:
    """A deflated CT data set; with ``zeros_before_header``, a private OB value of that many
    zero bytes sits before the series and study UIDs (a deflate bomb: ~1000:1)."""

    def element(tag: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
        value += b"\0" if len(value) % 2 else b""
        size = len(value) if length is None else length
        if vr == b"OB":
            return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, size) + value
        return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, size) + value

    series, sop = new_uid(), new_uid()
    head = b"".join(
        [
            element(0x00080016, b"UI", CT_IMAGE_STORAGE.encode()),
            element(0x00080018, b"UI", sop.encode()),
            element(0x00080020, b"DA", b"20240131"),
            element(0x00100020, b"LO", b"BOMB"),
        ]
    )
    tail = element(0x0020000D, b"UI", new_uid().encode()) + element(
        0x0020000E, b"UI", series.encode()
    )
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflate.compress(head)]
    if zeros_before_header:
        parts.append(deflate.compress(element(0x00191010, b"OB", b"", zeros_before_header)))
        block = bytes(16 * 1024 * 1024)
        for _ in range(zeros_before_header // len(block)):
            parts.append(deflate.compress(block))
    parts += [deflate.compress(tail), deflate.flush()]
    return Instance(CT_IMAGE_STORAGE, sop, series, b"".join(parts))


def test_a_deflate_bomb_is_refused_and_the_association_goes_on(
    shared_receiver: Receiver,
) -> None:
    """256 MiB of zeros before the tags, in 256 KiB of deflate: walking it would hold the
    event loop for seconds per megabyte received; the receiver gives up past 64 MiB."""
    receiver = shared_receiver
    contexts = [(CT_IMAGE_STORAGE, [DEFLATED_EXPLICIT_VR_LE]), (VERIFICATION, [IMPLICIT_VR_LE])]
    bomb = _deflated_instance(256 * 1024 * 1024)
    plain = _deflated_instance(0)
    assert len(bomb.data_set) < 1024 * 1024
    with Scu(receiver.host, receiver.port, calling_ae_title="DEFLATE", contexts=contexts) as scu:
        response = scu.store_instance(bomb)
        assert response.status == 0xC001, hex(response.status)
        assert scu.echo() == 0
        assert scu.store_instance(plain).status == 0
        scu.release()
    assert _stored_copy(receiver, bomb) == []
    assert len(_stored_copy(receiver, plain)) == 1


def test_ae_titles_and_values_cannot_forge_log_lines(shared_receiver: Receiver) -> None:
    """A calling AE title with a newline (and an instance refused, so that it is logged):
    every line of the receiver's log still starts with a timestamp of its own."""
    receiver = shared_receiver
    forged = f"F{TOKEN[:8]}"  # an AE title has 16 bytes
    refused = make_instance(new_uid(), 1, values={"PatientID": None})
    with Scu(receiver.host, receiver.port, calling_ae_title=f"A\n{forged}".encode()) as scu:
        assert scu.store_instance(refused).status in FAILURE_RANGES[2]
        scu.release()
    with Scu(receiver.host, receiver.port, calling_ae_title=b"\x1b[2J\x1b]0;x\x07") as scu:
        assert scu.store_instance(refused).status in FAILURE_RANGES[2]
        scu.release()
    log = receiver.log()
    assert forged in log
    assert not [line for line in log.splitlines() if line.startswith(forged)]
    assert "\x1b" not in log
