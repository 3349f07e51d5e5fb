"""Fuzz inputs over real sockets, against a running server; and a small blocking SCU.

:func:`send_input` plays one input on a fresh connection (pauses are skipped: a live server
runs on its own clock), half-closes, and reads the answer until the server closes. The
server passes when everything it sent is a sequence of well-framed PDUs and it closed the
connection within the timeout. :class:`Client` is a blocking requestor built on the sans-IO
:class:`~oxidicom.ul.association.Association`: the health check between inputs (a C-ECHO),
and a recorder of our own traffic for the corpus.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Sequence

import attrs

from fuzz.inputs import IMPLICIT_VR_LE, VERIFICATION, FuzzInput
from fuzz.target import BrokenPropertyError
from oxidicom.dimse.messages import CEchoRQ, CEchoRSP, CStoreRQ, CStoreRSP, Message
from oxidicom.dimse.reader import CommandReceived, MessageReader
from oxidicom.dimse.writer import fragment_length, send_message
from oxidicom.ul.actions import Role
from oxidicom.ul.association import Association
from oxidicom.ul.constants import PDU_HEADER_LENGTH, PduType
from oxidicom.ul.events import (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    ConnectionClosed,
    PDataChunk,
    ReleaseConfirmed,
    UserEvent,
)
from oxidicom.ul.fsm import State
from oxidicom.ul.items import PresentationContextRQ, UserInformation
from oxidicom.ul.pdus import AAssociateRQ


class RefusedHostError(ValueError):
    """Live fuzzing aims at loopback only, unless the operator says they own the host."""


def check_target(host: str, *, i_own_this_host: bool) -> None:
    """Refuse anything but a loopback address without ``i_own_this_host``."""
    if i_own_this_host:
        return
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as error:
        raise RefusedHostError(f"cannot resolve {host!r}: {error}") from None
    if not all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses):
        raise RefusedHostError(
            f"{host} is not a loopback address: live fuzzing sends malformed traffic; "
            "pass --i-own-this-host to aim it at a host you are responsible for"
        )


@attrs.frozen
class LiveAnswer:
    pdu_types: tuple[int, ...]
    """Types of the PDUs the server sent, in order."""
    seconds: float


def check_answer(data: bytes) -> tuple[int, ...]:
    """PDU types of a server's answer; raises :class:`BrokenPropertyError` if it is not a sequence
    of whole PDUs of defined types."""
    types: list[int] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < PDU_HEADER_LENGTH:
            raise BrokenPropertyError(f"server sent a truncated PDU header at byte {pos}")
        pdu_type = data[pos]
        length = int.from_bytes(data[pos + 2 : pos + 6], "big")
        if pdu_type not in PduType.__members__.values():
            raise BrokenPropertyError(f"server sent PDU type 0x{pdu_type:02X} at byte {pos}")
        if len(data) - pos - PDU_HEADER_LENGTH < length:
            raise BrokenPropertyError(f"server sent a truncated PDU at byte {pos}")
        types.append(pdu_type)
        pos += PDU_HEADER_LENGTH + length
    return tuple(types)


def send_input(host: str, port: int, fuzz_input: FuzzInput, timeout: float) -> LiveAnswer:
    """Play ``fuzz_input`` on a new connection; the server must answer and close in time."""
    started = time.monotonic()
    received = bytearray()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for step in fuzz_input.steps:
                if isinstance(step, bytes):
                    sock.sendall(step)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the server closed first (after an A-ABORT, say): its answer is below
        deadline = started + timeout
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise BrokenPropertyError(f"server did not close within {timeout:g} s") from None
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
    return LiveAnswer(check_answer(bytes(received)), time.monotonic() - started)


class Client:
    """A blocking SCU on the sans-IO requestor: associate, echo, store, release."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        contexts: Sequence[tuple[str, Sequence[str]]] = ((VERIFICATION, (IMPLICIT_VR_LE,)),),
        called_ae_title: str = "ANY-SCP",
        calling_ae_title: str = "OXIDICOM-FUZZ",
        max_length: int = 16384,
        timeout: float = 10.0,
    ) -> None:
        self.sent = bytearray()
        """Everything this client sent: a corpus entry."""
        self._timeout = timeout
        self._reader = MessageReader()
        self._message_id = 0
        self._responses: list[Message] = []
        self.association = Association(Role.REQUESTOR)
        request = AAssociateRQ(
            called_ae_title,
            calling_ae_title,
            tuple(
                PresentationContextRQ(2 * index + 1, sop_class, tuple(syntaxes))
                for index, (sop_class, syntaxes) in enumerate(contexts)
            ),
            UserInformation(maximum_length=max_length, implementation_class_uid="1.2.3.4.5"),
        )
        self.association.request_association(request, time.monotonic())
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.association.connection_made(time.monotonic())
        self._flush()
        event = self._next(AssociationAccepted, AssociationRejected)
        if not isinstance(event, AssociationAccepted):
            self.close()
            raise BrokenPropertyError(f"association rejected: {event!r}")

    def _context_for(self, sop_class: str) -> int:
        for context in self.association.contexts.values():
            if context.abstract_syntax == sop_class:
                return context.context_id
        raise BrokenPropertyError(f"no accepted context for {sop_class}")

    def echo(self) -> int:
        self._message_id += 1
        self._send(self._context_for(VERIFICATION), CEchoRQ(self._message_id))
        response = self._response()
        if not isinstance(response, CEchoRSP):
            raise BrokenPropertyError(f"C-ECHO answered by {response!r}")
        return response.status

    def store(self, sop_class: str, sop_instance: str, data_set: bytes) -> int:
        self._message_id += 1
        context_id = self._context_for(sop_class)
        self._send(context_id, CStoreRQ(self._message_id, sop_class, sop_instance))
        size = fragment_length(self.association)
        view = memoryview(data_set)
        for start in range(0, len(data_set), size):
            last = start + size >= len(data_set)
            piece = view[start : start + size]
            self.association.send_data(context_id, False, last, piece, time.monotonic())
        self._flush()
        response = self._response()
        if not isinstance(response, CStoreRSP):
            raise BrokenPropertyError(f"C-STORE answered by {response!r}")
        return response.status

    def release(self) -> None:
        self.association.release(time.monotonic())
        self._flush()
        self._next(ReleaseConfirmed)
        self.close()

    def close(self) -> None:
        self._sock.close()

    def _send(self, context_id: int, message: Message) -> None:
        send_message(self.association, context_id, message, time.monotonic())
        self._flush()

    def _flush(self) -> None:
        for part in self.association.data_to_send():
            self._sock.sendall(part)
            self.sent += part

    def _response(self) -> Message:
        while not self._responses:
            self._next()
        return self._responses.pop(0)

    def _next(self, *wanted: type[UserEvent]) -> UserEvent | None:
        """Read until an event of a ``wanted`` type (or, with none wanted, any progress)."""
        deadline = time.monotonic() + self._timeout
        while True:
            event = self.association.next_event()
            if event is None:
                if wanted == () and self._responses:
                    return None
                self._sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = self._sock.recv(65536)
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
                raise BrokenPropertyError(f"association ended: {event!r}")
            if self.association.state is State.STA1:
                raise BrokenPropertyError("association ended")
