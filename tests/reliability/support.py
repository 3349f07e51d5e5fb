"""What the reliability tests share: instances built byte by byte, a blocking SCU that can
misbehave on purpose, and outside views of a running receiver (its file descriptors, its
memory, what it left on disk).

Instances are encoded here, element by element, rather than with pydicom: the hostile-value
tests need bytes pydicom refuses to write (invalid UTF-8, NULs in the middle of a value).

The SCU is the sans-IO :class:`~oxidicom.ul.association.Association` over a plain blocking
socket, so a test decides exactly what reaches the wire and when: half a data set, an
A-ABORT in the middle of one, a TCP reset, requests it never reads the answers of.
"""

from __future__ import annotations

import os
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, TypeVar, cast

import attrs

from oxidicom.dimse.messages import CEchoRQ, CEchoRSP, CStoreRQ, CStoreRSP, Message
from oxidicom.dimse.reader import CommandReceived, MessageReader
from oxidicom.dimse.writer import fragment_length, send_message
from oxidicom.ul.actions import Role
from oxidicom.ul.association import Association
from oxidicom.ul.events import (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    ConnectionClosed,
    PDataChunk,
    ReleaseConfirmed,
    UserEvent,
)
from oxidicom.ul.items import PresentationContextRQ, UserInformation
from oxidicom.ul.pdus import AAssociateRJ, AAssociateRQ

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


class AssociationRejectedError(Exception):
    def __init__(self, rejection: AAssociateRJ) -> None:
        super().__init__(f"rejected {rejection.result},{rejection.source},{rejection.reason}")
        self.rejection = rejection

    @property
    def triple(self) -> tuple[int, int, int]:
        """(result, source, reason), as PS3.8 Table 9-21 lists them."""
        return (self.rejection.result, self.rejection.source, self.rejection.reason)


class AssociationEndedError(Exception):
    """The receiver closed, aborted or did not answer in time."""


class Scu:
    """A requestor on a blocking socket, for tests that must control the wire exactly.

    ``context_ids`` overrides the presentation context IDs (1, 3, 5... by default);
    ``source_host`` binds the local end (``127.0.0.2`` is another peer on the same host);
    ``receive_buffer`` shrinks SO_RCVBUF before connecting (a peer that reads little).
    The constructor connects and negotiates; it raises :class:`AssociationRejectedError`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        calling_ae_title: str | bytes = "RELIABILITY",
        called_ae_title: str = "ANY-SCP",
        contexts: Sequence[tuple[str, Sequence[str]]] = DEFAULT_CONTEXTS,
        context_ids: Sequence[int] | None = None,
        source_host: str | None = None,
        receive_buffer: int | None = None,
        timeout: float = 20.0,
    ) -> None:
        self._timeout = timeout
        self._reader = MessageReader()
        self._message_id = 0
        self._responses: list[Message] = []
        self.association = Association(Role.REQUESTOR)
        calling = calling_ae_title if isinstance(calling_ae_title, str) else "PLACEHOLDER"
        request = AAssociateRQ(
            called_ae_title,
            calling,
            tuple(
                PresentationContextRQ(context_id, sop_class, tuple(syntaxes))
                for context_id, (sop_class, syntaxes) in zip(
                    context_ids or range(1, 2 * len(contexts), 2), contexts, strict=True
                )
            ),
            UserInformation(maximum_length=16384, implementation_class_uid="2.25.42"),
        )
        self.association.request_association(request, time.monotonic())
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if receive_buffer is not None:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            if source_host is not None:
                self.sock.bind((source_host, 0))
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.association.connection_made(time.monotonic())
            pending = b"".join(self.association.data_to_send())
            if isinstance(calling_ae_title, bytes):
                # Raw calling AE title bytes (16, space padded) where the codec would refuse
                # them: offset 26 of the A-ASSOCIATE-RQ (PS3.8 Table 9-11).
                pending = pending[:26] + calling_ae_title.ljust(16, b" ")[:16] + pending[42:]
            self.sock.sendall(pending)
            event = self._next(AssociationAccepted, AssociationRejected)
        except BaseException:
            self.sock.close()
            raise
        if isinstance(event, AssociationRejected):
            self.sock.close()
            raise AssociationRejectedError(event.response)

    def __enter__(self) -> Scu:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Drop the connection if the test failed in the middle (a receiver shutting down
        would wait for the association otherwise); a released one is closed already."""
        self.sock.close()

    def context_for(self, sop_class: str) -> int:
        for context in self.association.contexts.values():
            if context.abstract_syntax == sop_class:
                return context.context_id
        raise AssociationEndedError(f"no accepted context for {sop_class}")

    def echo(self) -> int:
        self._send(self.context_for(VERIFICATION), CEchoRQ(self._new_message_id()))
        response = self._response()
        assert isinstance(response, CEchoRSP), response
        return response.status

    def encoded_echoes(self, count: int) -> bytes:
        """``count`` C-ECHO-RQ PDUs, encoded but not sent (for a peer that floods)."""
        context_id = self.context_for(VERIFICATION)
        for _ in range(count):
            message = CEchoRQ(self._new_message_id())
            send_message(self.association, context_id, message, time.monotonic())
        return b"".join(self.association.data_to_send())

    def store(self, instance: Instance) -> CStoreRSP:
        self.send_partial(instance, len(instance.data_set), last=True)
        response = self._response()
        assert isinstance(response, CStoreRSP), response
        return response

    def store_pipelined(self, instances: Sequence[Instance]) -> list[CStoreRSP]:
        """Every C-STORE in one write, before reading any response (a peer that pipelines)."""
        for instance in instances:
            context_id = self.context_for(instance.sop_class_uid)
            request = CStoreRQ(
                self._new_message_id(), instance.sop_class_uid, instance.sop_instance_uid
            )
            send_message(self.association, context_id, request, time.monotonic())
            fragment = fragment_length(self.association)
            data = memoryview(instance.data_set)
            for start in range(0, len(data), fragment):
                is_last = start + fragment >= len(data)
                chunk = data[start : start + fragment]
                self.association.send_data(context_id, False, is_last, chunk, time.monotonic())
        self.sock.sendall(b"".join(self.association.data_to_send()))
        responses = [self._response() for _ in instances]
        assert all(isinstance(response, CStoreRSP) for response in responses), responses
        return cast(list[CStoreRSP], responses)

    def send_partial(self, instance: Instance, size: int, *, last: bool = False) -> None:
        """C-STORE-RQ and the first ``size`` bytes of the data set (all of it with ``last``)."""
        context_id = self.context_for(instance.sop_class_uid)
        request = CStoreRQ(
            self._new_message_id(), instance.sop_class_uid, instance.sop_instance_uid
        )
        self._send(context_id, request)
        fragment = fragment_length(self.association)
        data = memoryview(instance.data_set)[:size]
        for start in range(0, len(data), fragment):
            is_last = last and start + fragment >= len(data)
            self.association.send_data(
                context_id, False, is_last, data[start : start + fragment], time.monotonic()
            )
            self._flush()

    def release(self) -> None:
        self.association.release(time.monotonic())
        self._flush()
        self._next(ReleaseConfirmed)
        self.sock.close()

    def abort(self) -> None:
        """A-ABORT, then close."""
        self.association.abort(time.monotonic())
        self._flush()
        self.sock.close()

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER with a zero timeout): a peer that crashed."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def closed_by_peer(self, timeout: float) -> bool:
        """Read (and drop) whatever comes until the receiver closes; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
        return False

    def _new_message_id(self) -> int:
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    def _send(self, context_id: int, message: Message) -> None:
        send_message(self.association, context_id, message, time.monotonic())
        self._flush()

    def _flush(self) -> None:
        for part in self.association.data_to_send():
            self.sock.sendall(part)

    def _response(self) -> Message:
        while not self._responses:
            self._next()
        return self._responses.pop(0)

    def _next(self, *wanted: type[UserEvent]) -> UserEvent | None:
        deadline = time.monotonic() + self._timeout
        while True:
            event = self.association.next_event()
            if event is None:
                if not wanted and self._responses:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssociationEndedError(f"nothing from the receiver in {self._timeout} s")
                self.sock.settimeout(remaining)
                try:
                    data = self.sock.recv(65536)
                except (TimeoutError, ConnectionResetError) as error:
                    raise AssociationEndedError(str(error)) from None
                self.association.receive_data(data, time.monotonic())
                continue
            if isinstance(event, PDataChunk):
                result = self._reader.feed(event)
                if isinstance(result, CommandReceived):
                    self._responses.append(result.message)
                    if not wanted:
                        return None
                continue
            if wanted and isinstance(event, wanted):
                return event
            if isinstance(event, Aborted | ConnectionClosed):
                raise AssociationEndedError(f"association ended: {event!r}")


def store_all(
    host: str, port: int, instances: Sequence[Instance], *, calling_ae_title: str = "RELIABILITY"
) -> list[int]:
    """One association storing ``instances``, released: the C-STORE statuses."""
    scu = Scu(host, port, calling_ae_title=calling_ae_title)
    statuses = [scu.store(instance).status for instance in instances]
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
