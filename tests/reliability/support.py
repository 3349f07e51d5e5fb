"""What the reliability tests share: instances built byte by byte, a blocking SCU that can
misbehave on purpose, and outside views of a running receiver (its file descriptors, its
memory, what it left on disk).

Instances are encoded here, element by element, rather than with pydicom: the hostile-value
tests need bytes pydicom refuses to write (invalid UTF-8, NULs in the middle of a value).

The SCU is :class:`oxidicom.testing.scu.BlockingScu` (the sans-IO requestor over a plain
blocking socket), so a test decides exactly what reaches the wire and when: half a data
set, an A-ABORT in the middle of one, a TCP reset, requests it never reads the answers of.
"""

from __future__ import annotations

import os
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import attrs

from oxidicom.dimse.messages import CStoreRSP
from oxidicom.testing.scu import BlockingScu

T = TypeVar("T")

VERIFICATION: Final = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_VR_LE: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_LE: Final = "1.2.840.10008.1.2.1"
DEFAULT_CONTEXTS: Final = ((VERIFICATION, (IMPLICIT_VR_LE,)), (CT_IMAGE_STORAGE, (IMPLICIT_VR_LE,)))

# --- instances -------------------------------------------------------------------------------

TAGS: Final = {
    "SpecificCharacterSet": 0x00080005,
    "SOPClassUID": 0x00080016,
    "SOPInstanceUID": 0x00080018,
    "StudyDate": 0x00080020,
    "AccessionNumber": 0x00080050,
    "Modality": 0x00080060,
    "StudyDescription": 0x00081030,
    "SeriesDescription": 0x0008103E,
    "PatientName": 0x00100010,
    "PatientID": 0x00100020,
    "PatientBirthDate": 0x00100030,
    "PatientSex": 0x00100040,
    "PatientAge": 0x00101010,
    "ProtocolName": 0x00181030,
    "StudyInstanceUID": 0x0020000D,
    "SeriesInstanceUID": 0x0020000E,
    "SeriesNumber": 0x00200011,
    "InstanceNumber": 0x00200013,
    "PixelData": 0x7FE00010,
}
_UID_TAGS: Final = frozenset({0x00080016, 0x00080018, 0x0020000D, 0x0020000E})


def new_uid() -> str:
    """A UID nobody else will use (PS3.5 B.2, ``2.25.`` + a UUID as an integer)."""
    return f"2.25.{uuid.uuid4().int}"


def element(tag: int, value: bytes) -> bytes:
    """One Implicit VR Little Endian element, padded to even length (UIDs with NUL)."""
    if len(value) % 2:
        value += b"\0" if tag in _UID_TAGS or tag == TAGS["PixelData"] else b" "
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


@attrs.frozen
class Instance:
    """One C-STORE's worth: the request's UIDs and the data set (Implicit VR LE)."""

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    data_set: bytes


def make_instance(
    series_instance_uid: str,
    instance_number: int,
    *,
    pixel_bytes: int = 0,
    values: Mapping[str, str | bytes | None] | None = None,
) -> Instance:
    """A CT instance of ``series_instance_uid`` with every tag the contract reads.

    ``values`` override the defaults by keyword (``str`` is UTF-8 encoded, ``bytes`` go as
    they are, ``None`` leaves the element out); ``pixel_bytes`` adds that much PixelData,
    to make the data set span many PDUs.
    """
    sop_instance_uid = new_uid()
    defaults: dict[str, str | bytes | None] = {
        "SOPClassUID": CT_IMAGE_STORAGE,
        "SOPInstanceUID": sop_instance_uid,
        "StudyDate": "20240131",
        "AccessionNumber": "ACC42",
        "Modality": "CT",
        "StudyDescription": "Reliability",
        "SeriesDescription": "Series",
        "PatientName": "Doe^Jane",
        "PatientID": "REL01",
        "PatientBirthDate": "19700101",
        "PatientSex": "F",
        "PatientAge": "054Y",
        "ProtocolName": "protocol",
        "StudyInstanceUID": "2.25.1234567890",
        "SeriesInstanceUID": series_instance_uid,
        "SeriesNumber": "3",
        "InstanceNumber": str(instance_number),
    }
    defaults.update(values or {})
    if pixel_bytes:
        defaults["PixelData"] = bytes(index % 251 for index in range(pixel_bytes))
    elements = []
    for keyword, value in defaults.items():
        if value is None:
            continue
        raw = value.encode() if isinstance(value, str) else value
        elements.append((TAGS[keyword], raw))
    data_set = b"".join(element(tag, raw) for tag, raw in sorted(elements))
    return Instance(CT_IMAGE_STORAGE, sop_instance_uid, series_instance_uid, data_set)


def make_series(
    count: int, *, pixel_bytes: int = 0, **values: str | bytes | None
) -> list[Instance]:
    """``count`` instances of one new series, numbered from 1."""
    series = new_uid()
    return [
        make_instance(series, number, pixel_bytes=pixel_bytes, values=values)
        for number in range(1, count + 1)
    ]


# --- a blocking SCU ------------------------------------------------------------------------


class Scu(BlockingScu):
    """:class:`~oxidicom.testing.scu.BlockingScu` with this suite's defaults and instances."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        calling_ae_title: str | bytes = "RELIABILITY",
        contexts: Sequence[tuple[str, Sequence[str]]] = DEFAULT_CONTEXTS,
        timeout: float = 20.0,
        **options: Any,
    ) -> None:
        super().__init__(
            host,
            port,
            calling_ae_title=calling_ae_title,
            contexts=contexts,
            timeout=timeout,
            **options,
        )

    def store_instance(self, instance: Instance) -> CStoreRSP:
        return self.store(instance.sop_class_uid, instance.sop_instance_uid, instance.data_set)

    def store_pipelined(self, instances: Sequence[Instance]) -> list[CStoreRSP]:
        """Every C-STORE in one write, before reading any response (a peer that pipelines)."""
        for instance in instances:
            self.send_store(
                instance.sop_class_uid, instance.sop_instance_uid, instance.data_set, flush=False
            )
        self.flush()
        responses = [self.response() for _ in instances]
        assert all(isinstance(response, CStoreRSP) for response in responses), responses
        return cast(list[CStoreRSP], responses)

    def send_partial(self, instance: Instance, size: int) -> None:
        """C-STORE-RQ and the first ``size`` bytes of the data set, the last not marked last."""
        self.send_store(
            instance.sop_class_uid, instance.sop_instance_uid, instance.data_set, size=size
        )


def store_all(
    host: str, port: int, instances: Sequence[Instance], *, calling_ae_title: str = "RELIABILITY"
) -> list[int]:
    """One association storing ``instances``, released: the C-STORE statuses."""
    scu = Scu(host, port, calling_ae_title=calling_ae_title)
    statuses = [scu.store_instance(instance).status for instance in instances]
    scu.release()
    return statuses


# --- the receiver seen from outside ---------------------------------------------------------


def open_fds(pid: int) -> int:
    """How many file descriptors process ``pid`` holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def child_processes(pid: int) -> list[int]:
    """The process IDs of ``pid``'s children (a receiver's workers, ``OXIDICOM_WORKERS``)."""
    return sorted(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))


def receiver_processes(pid: int) -> list[int]:
    """The receiver and its worker processes: leaks are counted over all of them."""
    return [pid, *child_processes(pid)]


def settled_tree_fds(pid: int) -> int:
    """:func:`settled_fds` summed over ``pid`` and its worker processes."""
    return sum(settled_fds(p) for p in receiver_processes(pid))


def settled_fds(pid: int, *, quiet: float = 0.5, timeout: float = 10.0) -> int:
    """The descriptor count of ``pid`` once it has not changed for ``quiet`` seconds (a
    connection that just ended may still be closing): the baseline to come back to."""
    deadline = time.monotonic() + timeout
    count, since = open_fds(pid), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.05)
        now = open_fds(pid)
        if now != count:
            count, since = now, time.monotonic()
    return count


def leftovers(files_root: Path) -> list[str]:
    """Temporary files the writer should never leave: anything in ``.oxidicom/tmp`` and any
    hidden ``.oxidicom-*.tmp`` next to a final file."""
    found = []
    tmp = files_root / ".oxidicom" / "tmp"
    if tmp.is_dir():
        found += [str(path) for path in tmp.rglob("*") if path.is_file()]
    services = files_root / "SERVICES"
    if services.is_dir():
        found += [str(path) for path in services.rglob(".oxidicom-*")]
    return sorted(found)


def stored_files(files_root: Path) -> list[Path]:
    """Every file under ``FILES_ROOT/SERVICES``."""
    services = files_root / "SERVICES"
    return sorted(path for path in services.rglob("*") if path.is_file())


def data_set_of(path: Path) -> bytes:
    """The data set bytes of a Part 10 file we wrote (after the file meta group)."""
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM", f"{path} is not a Part 10 file"
    # (0002,0000) UL, explicit VR: tag 4, VR 2, length 2, value 4.
    group_length = struct.unpack_from("<I", raw, 132 + 8)[0]
    return raw[132 + 12 + group_length :]


def wait_for(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Poll ``probe`` until ``done`` holds of its value; raise with the last value after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout:g} s")
        time.sleep(interval)


def files_outside(root: Path, allowed: Iterable[Path]) -> list[str]:
    """Files under ``root`` that are not under one of ``allowed`` (nor a receiver's own
    bookkeeping or log)."""
    allowed = [path.resolve() for path in allowed]
    strays = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name).resolve()
            if name.endswith(".log") or any(path.is_relative_to(a) for a in allowed):
                continue
            strays.append(str(path))
    return sorted(strays)


def kwargs_subset(kwargs: Mapping[str, object], **expected: object) -> dict[str, object]:
    """The items of ``kwargs`` named in ``expected``, to compare in one assert."""
    return {key: kwargs.get(key) for key in expected}


def wait_until_refusing(host: str, port: int, *, timeout: float = 30.0) -> None:
    """Wait until a new connection to ``host:port`` is refused (the receiver stopped
    listening, as after SIGTERM)."""

    def refused() -> bool:
        try:
            with socket.create_connection((host, port), timeout=5):
                return False
        except ConnectionRefusedError:
            return True

    wait_for(refused, bool, timeout=timeout, what="new connections refused")
