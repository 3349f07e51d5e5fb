"""The asyncio SCU: open an association, C-ECHO, C-STORE files as they are on disk, release.

Files are streamed: the data set is read from its offset in the Part 10 file in fragments
of the peer's maximum length and sent with the transfer syntax it already has, so nothing is
loaded whole and nothing is transcoded. Writes respect the transport's flow control.

    async with await associate("pacs", 104, proposals) as association:
        await association.echo()
        result = await association.store_file(read_part10_header(path))
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl as ssl_module
from collections.abc import Sequence
from typing import Any, Final, cast

import attrs

from oxidicom.dimse.messages import (
    CEchoRQ,
    CEchoRSP,
    CStoreRQ,
    CStoreRSP,
    Message,
)
from oxidicom.dimse.reader import CommandReceived, MessageReader
from oxidicom.dimse.writer import fragment_length, send_message
from oxidicom.net.handlers import StoreResult
from oxidicom.part10 import Part10Header
from oxidicom.ul.actions import Role
from oxidicom.ul.association import Association
from oxidicom.ul.constants import describe_reject
from oxidicom.ul.events import (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    ConnectionClosed,
    PDataChunk,
    ReleaseConfirmed,
    ReleaseRequested,
)
from oxidicom.ul.fsm import State
from oxidicom.ul.items import PresentationContextRQ, UserInformation
from oxidicom.ul.pdus import AAssociateRJ, AAssociateRQ

VERIFICATION: Final = "1.2.840.10008.1.1"
IMPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1"


class AssociationError(Exception):
    """The association could not be established or ended abnormally."""


class AssociationRejectedError(AssociationError):
    def __init__(self, rejection: AAssociateRJ) -> None:
        super().__init__(
            "association rejected: "
            + describe_reject(rejection.result, rejection.source, rejection.reason)
        )
        self.rejection = rejection

    @property
    def triple(self) -> tuple[int, int, int]:
        """(result, source, reason), as PS3.8 Table 9-21 lists them."""
        return (self.rejection.result, self.rejection.source, self.rejection.reason)


class AssociationAbortedError(AssociationError):
    pass


class NoContextError(AssociationError):
    """No accepted presentation context fits what was to be sent."""


@attrs.frozen
class RequestorConfig:
    calling_ae_title: str = "OXIDICOM"
    called_ae_title: str = "ANY-SCP"
    max_length_received: int = 16384
    implementation_class_uid: str = "2.25.1"
    implementation_version_name: str | None = None
    connect_timeout: float = 30.0
    acse_timeout: float = 30.0
    """Waiting for A-ASSOCIATE-AC/RJ and A-RELEASE-RP (also the ARTIM)."""
    dimse_timeout: float | None = 60.0
    """Waiting for a response, or for the peer to read our data set; the association is
    aborted when it runs out."""
    ssl: ssl_module.SSLContext | None = None


class _RequestorProtocol(asyncio.BufferedProtocol):
    def __init__(self, association: Association) -> None:
        self.association = association
        self.loop = asyncio.get_running_loop()
        self.reader = MessageReader()
        self.transport: asyncio.Transport | None = None
        self.buffer = memoryview(bytearray(64 * 1024))
        self.established: asyncio.Future[None] = self.loop.create_future()
        self.released: asyncio.Future[None] = self.loop.create_future()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.responses: dict[int, asyncio.Future[Message]] = {}
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.failure: AssociationError | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its interface.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.association.connection_made(self.loop.time())
        self.flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.association.receive_data(self.buffer[:nbytes], self.loop.time())
        self.process()

    def eof_received(self) -> bool:
        self.association.receive_data(b"", self.loop.time())
        self.process()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.association.receive_data(b"", self.loop.time())
        self.process()
        self.can_write.set()
        self._fail(AssociationAbortedError("connection closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def flush(self) -> None:
        data = self.association.data_to_send()
        if self.transport is not None and not self.transport.is_closing():
            if data:
                self.transport.writelines(data)
            if self.association.close_requested:
                self.transport.close()
        self.arm_timer()

    def arm_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        deadline = self.association.get_timer()
        if deadline is not None:
            self.timer = self.loop.call_at(deadline, self.on_timer)

    def on_timer(self) -> None:
        self.timer = None
        self.association.handle_timer(self.loop.time())
        self.process()

    def process(self) -> None:
        association = self.association
        while (event := association.next_event()) is not None:
            if type(event) is PDataChunk:
                result = self.reader.feed(event)
                if type(result) is CommandReceived:
                    self._response(result.message)
                elif result is not None and type(result) is not PDataChunk:
                    self.association.abort(self.loop.time())
                    self._fail(AssociationAbortedError(f"bad response from the SCP: {result}"))
            elif type(event) is AssociationAccepted:
                if not self.established.done():
                    self.established.set_result(None)
            elif type(event) is AssociationRejected:
                self._fail(AssociationRejectedError(event.response))
            elif type(event) is ReleaseRequested:
                association.release_response(self.loop.time())
            elif type(event) is ReleaseConfirmed:
                if not self.released.done():
                    self.released.set_result(None)
            elif type(event) is Aborted:
                self._fail(AssociationAbortedError(f"association aborted: {event.detail}"))
            elif type(event) is ConnectionClosed and not self.closed.done():
                self._fail(AssociationAbortedError(f"connection closed: {event.reason}"))
                self.closed.set_result(None)
        self.flush()

    def _response(self, message: Message) -> None:
        message_id = getattr(message, "message_id_being_responded_to", None)
        future = self.responses.pop(message_id, None) if isinstance(message_id, int) else None
        if future is None:
            self.association.abort(self.loop.time())
            self._fail(AssociationAbortedError(f"unexpected message from the SCP: {message}"))
        elif not future.done():
            future.set_result(message)

    def _fail(self, error: AssociationError) -> None:
        if self.failure is None:
            self.failure = error
        pending: list[asyncio.Future[Any]] = [
            self.established,
            self.released,
            *self.responses.values(),
        ]
        for future in pending:
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: whoever awaits gets it, nobody else warns
        self.responses.clear()


class ClientAssociation:
    """An established association, used by one task at a time (one operation at a time)."""

    def __init__(self, protocol: _RequestorProtocol, config: RequestorConfig) -> None:
        self._protocol = protocol
        self._config = config
        self._next_message_id = 1

    @property
    def association(self) -> Association:
        return self._protocol.association

    def context_for(self, abstract_syntax: str, transfer_syntax: str | None = None) -> int:
        """An accepted context for ``abstract_syntax`` (with that transfer syntax, if given)."""
        for context in self.association.contexts.values():
            if context.abstract_syntax == abstract_syntax and (
                transfer_syntax is None or context.transfer_syntax == transfer_syntax
            ):
                return context.context_id
        wanted = abstract_syntax + (f" in {transfer_syntax}" if transfer_syntax else "")
        raise NoContextError(f"the SCP accepted no presentation context for {wanted}")

    def _message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id = message_id % 0xFFFF + 1
        return message_id

    async def _request(
        self, context_id: int, message: CEchoRQ | CStoreRQ
    ) -> asyncio.Future[Message]:
        protocol = self._protocol
        if protocol.failure is not None:
            raise protocol.failure
        future: asyncio.Future[Message] = protocol.loop.create_future()
        protocol.responses[message.message_id] = future
        send_message(self.association, context_id, message, protocol.loop.time())
        protocol.flush()
        return future

    async def _writable(self) -> None:
        """Wait until the peer reads what we sent, for at most ``dimse_timeout``."""
        if self._protocol.can_write.is_set():
            return
        try:
            async with asyncio.timeout(self._config.dimse_timeout):
                await self._protocol.can_write.wait()
        except TimeoutError:
            self.abort()
            raise AssociationAbortedError(
                f"the peer read nothing of the data set for {self._config.dimse_timeout:g} s"
            ) from None

    async def _await_response(self, future: asyncio.Future[Message]) -> Message:
        try:
            async with asyncio.timeout(self._config.dimse_timeout):
                return await future
        except TimeoutError:
            self.abort()
            raise AssociationAbortedError(
                f"no response within {self._config.dimse_timeout:g} s"
            ) from None

    async def echo(self) -> int:
        """C-ECHO; the response status."""
        message_id = self._message_id()
        future = await self._request(self.context_for(VERIFICATION), CEchoRQ(message_id))
        response = await self._await_response(future)
        assert isinstance(response, CEchoRSP)
        return response.status

    async def store_file(self, header: Part10Header) -> StoreResult:
        """C-STORE the data set of a Part 10 file, streamed from disk as it is."""
        context_id = self.context_for(header.sop_class_uid, header.transfer_syntax_uid)
        request = CStoreRQ(self._message_id(), header.sop_class_uid, header.sop_instance_uid)
        future = await self._request(context_id, request)
        protocol = self._protocol
        association = self.association
        size = fragment_length(association)
        buffer = memoryview(bytearray(min(size, max(header.data_set_size, 1))))
        fd = os.open(header.path, os.O_RDONLY)
        try:
            offset, end = header.data_set_offset, header.file_size
            while True:
                count = os.preadv(fd, [buffer], offset)
                if count == 0 and offset < end:
                    raise OSError(f"{header.path} shrank while it was being sent")
                offset += count
                last = offset >= end
                if protocol.failure is not None:
                    raise protocol.failure
                association.send_data(context_id, False, last, buffer[:count], protocol.loop.time())
                protocol.flush()
                if last:
                    break
                await self._writable()
        finally:
            os.close(fd)
        response = await self._await_response(future)
        assert isinstance(response, CStoreRSP)
        return StoreResult(response.status, response.error_comment)

    async def store_data_set(
        self,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
        data_set: bytes,
    ) -> StoreResult:
        """C-STORE a data set already encoded in ``transfer_syntax_uid`` (held in memory)."""
        context_id = self.context_for(sop_class_uid, transfer_syntax_uid)
        request = CStoreRQ(self._message_id(), sop_class_uid, sop_instance_uid)
        future = await self._request(context_id, request)
        protocol = self._protocol
        size = fragment_length(self.association)
        view = memoryview(data_set)
        start = 0
        while True:
            piece = view[start : start + size]
            start += len(piece)
            last = start >= len(data_set)
            if protocol.failure is not None:
                raise protocol.failure
            self.association.send_data(context_id, False, last, piece, protocol.loop.time())
            protocol.flush()
            if last:
                break
            await self._writable()
        response = await self._await_response(future)
        assert isinstance(response, CStoreRSP)
        return StoreResult(response.status, response.error_comment)

    async def release(self) -> None:
        """A-RELEASE, then wait for the peer to close."""
        protocol = self._protocol
        if self.association.state is State.STA6:
            self.association.release(protocol.loop.time())
            protocol.flush()
            try:
                async with asyncio.timeout(self._config.acse_timeout):
                    await protocol.released
            except TimeoutError:
                self.abort()
        if protocol.transport is not None:
            protocol.transport.close()
        await protocol.closed

    def abort(self) -> None:
        protocol = self._protocol
        self.association.abort(protocol.loop.time())
        protocol.flush()
        transport = protocol.transport
        if transport is not None:
            # A peer that reads nothing would keep a closing transport (and the A-ABORT
            # behind the data set it did not read) open for ever: drop it at once.
            if transport.get_write_buffer_size():
                transport.abort()
            else:
                transport.close()

    async def __aenter__(self) -> ClientAssociation:
        return self

    async def __aexit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            await self.release()
        else:
            self.abort()


def propose(
    abstract_syntaxes: Sequence[tuple[str, Sequence[str]]],
) -> tuple[PresentationContextRQ, ...]:
    """Presentation contexts with IDs 1, 3, 5... (at most 128, PS3.8 §9.3.2.2)."""
    if len(abstract_syntaxes) > 128:
        raise ValueError("at most 128 presentation contexts fit in one association")
    return tuple(
        PresentationContextRQ(2 * index + 1, abstract_syntax, tuple(transfer_syntaxes))
        for index, (abstract_syntax, transfer_syntaxes) in enumerate(abstract_syntaxes)
    )


async def associate(
    host: str,
    port: int,
    contexts: Sequence[PresentationContextRQ],
    config: RequestorConfig | None = None,
) -> ClientAssociation:
    """Connect and negotiate; raise :class:`AssociationError` if that fails."""
    config = config or RequestorConfig()
    request = AAssociateRQ(
        called_ae_title=config.called_ae_title,
        calling_ae_title=config.calling_ae_title,
        presentation_contexts=tuple(contexts),
        user_information=UserInformation(
            maximum_length=config.max_length_received,
            implementation_class_uid=config.implementation_class_uid,
            implementation_version_name=config.implementation_version_name,
        ),
    )
    loop = asyncio.get_running_loop()
    # No idle timeout in the Upper Layer: between operations the requestor's user decides,
    # and a response is waited for with dimse_timeout from the moment the request is sent.
    association = Association(Role.REQUESTOR, artim_timeout=config.acse_timeout)
    association.request_association(request, loop.time())
    try:
        async with asyncio.timeout(config.connect_timeout):
            _, protocol = await loop.create_connection(
                lambda: _RequestorProtocol(association), host, port, ssl=config.ssl
            )
    except (OSError, TimeoutError) as error:
        raise AssociationError(f"cannot connect to {host}:{port}: {error}") from error
    try:
        async with asyncio.timeout(config.acse_timeout):
            await asyncio.shield(protocol.established)
    except TimeoutError:
        association.abort(loop.time())
        protocol.flush()
        if protocol.transport is not None:
            protocol.transport.close()
        raise AssociationError(
            f"no answer to A-ASSOCIATE-RQ within {config.acse_timeout:g} s"
        ) from None
    return ClientAssociation(protocol, config)
