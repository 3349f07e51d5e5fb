"""A requestor on a plain blocking socket, for tests and harnesses that drive the wire exactly.

:class:`BlockingScu` is the sans-IO requestor (:class:`~oxidicom.ul.association.Association`
and the DIMSE reader) with a socket and a clock: no event loop, no thread, one call at a
time. It says exactly what goes out and when, which the asyncio SCU
(:mod:`oxidicom.net.requestor`) deliberately does not: a data set can stop half way
(:meth:`BlockingScu.send_store` with ``size``), requests can go out before any response is
read (``flush=False``), the connection can end in a TCP reset, and the calling AE title can
be any 16 bytes. It fails with the asyncio SCU's errors, all ``AssociationError``s of
:mod:`oxidicom.net`: ``AssociationRejectedError``, ``NoContextError``, or
``AssociationAbortedError`` when the association ended or the peer did not answer in time.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from typing import Self

from oxidicom.dimse.messages import CEchoRQ, CEchoRSP, CStoreRQ, CStoreRSP, Message
from oxidicom.dimse.reader import CommandReceived, MessageReader
from oxidicom.dimse.writer import fragment_length, send_message
from oxidicom.net.requestor import (
    AssociationAbortedError,
    AssociationRejectedError,
    NoContextError,
)
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
from oxidicom.ul.pdus import AAssociateRQ

__all__ = ["VERIFICATION", "BlockingScu"]

VERIFICATION = "1.2.840.10008.1.1"
_IMPLICIT_VR_LE = "1.2.840.10008.1.2"
_CALLING_AE_TITLE_AT = 26
"""Offset of the calling AE title in an A-ASSOCIATE-RQ (PS3.8 Table 9-11)."""


class BlockingScu:
    """Connects and negotiates in the constructor (an ``AssociationError`` if that fails).

    ``contexts`` are (abstract syntax, transfer syntaxes) pairs, proposed with IDs 1, 3, 5...
    unless ``context_ids`` says otherwise. ``calling_ae_title`` as bytes goes into the
    request as it is (16 bytes, space padded), also where the codec would refuse it.
    ``source_host`` binds the local end (``127.0.0.2`` is another peer on the same host);
    ``receive_buffer`` sets SO_RCVBUF before connecting (a peer that reads little).
    ``timeout`` bounds each wait for the peer.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        contexts: Sequence[tuple[str, Sequence[str]]] = ((VERIFICATION, (_IMPLICIT_VR_LE,)),),
        context_ids: Sequence[int] | None = None,
        calling_ae_title: str | bytes = "OXIDICOM-SCU",
        called_ae_title: str = "ANY-SCP",
        max_length: int = 16384,
        source_host: str | None = None,
        receive_buffer: int | None = None,
        timeout: float = 20.0,
    ) -> None:
        self._timeout = timeout
        self._reader = MessageReader()
        self._message_id = 0
        self._responses: list[Message] = []
        self.association = Association(Role.REQUESTOR)
        request = AAssociateRQ(
            called_ae_title,
            calling_ae_title if isinstance(calling_ae_title, str) else "PLACEHOLDER",
            tuple(
                PresentationContextRQ(context_id, abstract_syntax, tuple(syntaxes))
                for context_id, (abstract_syntax, syntaxes) in zip(
                    context_ids or range(1, 2 * len(contexts), 2), contexts, strict=True
                )
            ),
            UserInformation(maximum_length=max_length, implementation_class_uid="2.25.42"),
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
                at = _CALLING_AE_TITLE_AT
                pending = pending[:at] + calling_ae_title.ljust(16, b" ")[:16] + pending[at + 16 :]
            self.sock.sendall(pending)
            event = self.next_event(AssociationAccepted, AssociationRejected)
        except BaseException:
            self.sock.close()
            raise
        if isinstance(event, AssociationRejected):
            self.sock.close()
            raise AssociationRejectedError(event.response)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Drop the connection (a released association is closed already): a test that
        failed half way must not leave the peer waiting for the rest."""
        self.close()

    # -- services ----------------------------------------------------------------------------

    def context_for(self, abstract_syntax: str) -> int:
        for context in self.association.contexts.values():
            if context.abstract_syntax == abstract_syntax:
                return context.context_id
        raise NoContextError(f"no accepted presentation context for {abstract_syntax}")

    def echo(self) -> int:
        """C-ECHO: the response's status."""
        self.send_command(self.context_for(VERIFICATION), CEchoRQ(self.new_message_id()))
        response = self.response()
        if not isinstance(response, CEchoRSP):
            raise AssociationAbortedError(f"C-ECHO answered by {response!r}")
        return response.status

    def store(self, sop_class_uid: str, sop_instance_uid: str, data_set: bytes) -> CStoreRSP:
        """C-STORE of a data set (in the transfer syntax of the SOP class's context)."""
        self.send_store(sop_class_uid, sop_instance_uid, data_set)
        response = self.response()
        if not isinstance(response, CStoreRSP):
            raise AssociationAbortedError(f"C-STORE answered by {response!r}")
        return response

    def send_store(
        self,
        sop_class_uid: str,
        sop_instance_uid: str,
        data_set: bytes,
        *,
        size: int | None = None,
        flush: bool = True,
    ) -> None:
        """A C-STORE-RQ and its data set in fragments of the peer's maximum length, without
        waiting for the response. With ``size``, only the first ``size`` bytes go, and the
        last of them is not marked last (an instance left half way). With ``flush=False``
        nothing is written yet: :meth:`flush` writes it all at once (a peer that pipelines).
        """
        context_id = self.context_for(sop_class_uid)
        request = CStoreRQ(self.new_message_id(), sop_class_uid, sop_instance_uid)
        send_message(self.association, context_id, request, time.monotonic())
        whole = size is None
        data = memoryview(data_set)[:size]
        fragment = fragment_length(self.association)
        for start in range(0, len(data), fragment):
            last = whole and start + fragment >= len(data)
            piece = data[start : start + fragment]
            self.association.send_data(context_id, False, last, piece, time.monotonic())
            if flush:
                self.flush()
        if flush:
            self.flush()

    def send_command(self, context_id: int, message: Message) -> None:
        send_message(self.association, context_id, message, time.monotonic())
        self.flush()

    def encoded_echoes(self, count: int) -> bytes:
        """``count`` C-ECHO-RQ PDUs, encoded but not sent (for a peer that floods)."""
        context_id = self.context_for(VERIFICATION)
        for _ in range(count):
            message = CEchoRQ(self.new_message_id())
            send_message(self.association, context_id, message, time.monotonic())
        return b"".join(self.association.data_to_send())

    def release(self) -> None:
        """A-RELEASE, wait for the answer, close."""
        self.association.release(time.monotonic())
        self.flush()
        self.next_event(ReleaseConfirmed)
        self.sock.close()

    def abort(self) -> None:
        """A-ABORT, then close."""
        self.association.abort(time.monotonic())
        self.flush()
        self.sock.close()

    def close(self) -> None:
        """Close the connection, saying nothing (a peer that vanished)."""
        self.sock.close()

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER with a zero timeout): a peer that crashed."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def closed_by_peer(self, timeout: float) -> bool:
        """Read (and drop) whatever comes until the peer closes; False on timeout."""
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

    # -- the wire ----------------------------------------------------------------------------

    def new_message_id(self) -> int:
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    def flush(self) -> None:
        for part in self.association.data_to_send():
            self.sock.sendall(part)

    def response(self) -> Message:
        """The next DIMSE response, in the order they came."""
        while not self._responses:
            self.next_event()
        return self._responses.pop(0)

    def next_event(self, *wanted: type[UserEvent]) -> UserEvent | None:
        """Read until an event of a ``wanted`` type arrives (with none wanted, until a DIMSE
        message does, kept for :meth:`response`); raise ``AssociationAbortedError`` if the
        association ends first or nothing comes within the timeout."""
        deadline = time.monotonic() + self._timeout
        while True:
            event = self.association.next_event()
            if event is None:
                if not wanted and self._responses:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssociationAbortedError(f"nothing from the peer in {self._timeout:g} s")
                self.sock.settimeout(remaining)
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    raise AssociationAbortedError(
                        f"nothing from the peer in {self._timeout:g} s"
                    ) from None
                except ConnectionResetError:
                    raise AssociationAbortedError("the peer reset the connection") from None
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
                raise AssociationAbortedError(f"association ended: {event!r}")
