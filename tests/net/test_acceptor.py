"""The acceptor's glue through a real server on loopback: timers while we wait, handlers
that fail, and requests that are not what they claim to be.

The peer is :class:`~oxidicom.testing.scu.BlockingScu`, which says exactly what goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TypeVar, cast

import pytest

from oxidicom.dimse.command import NO_DATA_SET, Tag, encode_command
from oxidicom.dimse.messages import (
    DATA_SET_PRESENT,
    CEchoRQ,
    CEchoRSP,
    CommandField,
    CStoreRQ,
    CStoreRSP,
)
from oxidicom.dimse.writer import send_message
from oxidicom.net import AssociationAbortedError
from oxidicom.net.acceptor import AcceptorProtocol
from oxidicom.net.handlers import (
    AssociationContext,
    AssociationEnd,
    AssociationHandler,
    Peer,
    StoreResult,
    StoreSink,
)
from oxidicom.net.requestor import propose
from oxidicom.net.server import DicomServer, ServerConfig
from oxidicom.testing.scu import BlockingScu
from oxidicom.testing.transport import MemoryTransport
from oxidicom.ul.actions import Role
from oxidicom.ul.association import AcceptedContext, Association
from oxidicom.ul.events import AssociationAccepted
from oxidicom.ul.negotiation import AcceptorPolicy, negotiate
from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"
POLICY = AcceptorPolicy("TEST-SCP", (IMPLICIT,), None, "2.25.1")
CONTEXTS = ((VERIFICATION, (IMPLICIT,)), (CT_IMAGE, (IMPLICIT,)))
T = TypeVar("T")


class SlowSink:
    """A sink whose every write takes ``delay`` seconds (a disk that lags)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received = 0

    def write(self, chunks: Sequence[memoryview]) -> Awaitable[None]:
        self.received += sum(map(len, chunks))
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(self.delay, future.set_result, None)
        return future

    def finish(self) -> StoreResult:
        return StoreResult()

    def abort(self) -> None:
        pass


class StuckSink(SlowSink):
    """A sink whose first write never completes (a hung network file system)."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.aborted = False

    def write(self, chunks: Sequence[memoryview]) -> Awaitable[None]:
        self.received += sum(map(len, chunks))
        return asyncio.get_running_loop().create_future()

    def abort(self) -> None:
        self.aborted = True


class App:
    """Accepts everything; what a handler does is up to the test."""

    def __init__(
        self,
        sink: Callable[[], StoreSink] = lambda: SlowSink(0.0),
        *,
        open_fails: bool = False,
        allowed_fails: bool = False,
        release_settles: Callable[[], Awaitable[None] | None] = lambda: None,
    ) -> None:
        self.sink = sink
        self.open_fails = open_fails
        self.allowed_fails = allowed_fails
        self.release_settles = release_settles
        self.releases = 0
        self.ends: list[AssociationEnd] = []

    def connection_allowed(self, peer: Peer) -> bool:
        if self.allowed_fails:
            raise RuntimeError("allow list unavailable")
        return True

    def negotiate(self, request: AAssociateRQ, peer: Peer) -> AAssociateAC | AAssociateRJ:
        return negotiate(request, POLICY)

    def open(self, association: AssociationContext) -> AssociationHandler:
        if self.open_fails:
            raise RuntimeError("no handler today")
        return Handler(self)


class Handler:
    def __init__(self, app: App) -> None:
        self.app = app

    def on_echo(self, request: CEchoRQ) -> int:
        return 0x0000

    def on_store(self, request: CStoreRQ, context: AcceptedContext) -> StoreSink | StoreResult:
        return self.app.sink()

    def on_release(self) -> Awaitable[None] | None:
        self.app.releases += 1
        return self.app.release_settles()

    def on_end(self, end: AssociationEnd) -> None:
        self.app.ends.append(end)


@contextlib.asynccontextmanager
async def serving(app: App, **config: float) -> AsyncIterator[DicomServer]:
    server = DicomServer(app, ServerConfig(host="127.0.0.1", port=0, **config))  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.close(grace=5)


def scu(server: DicomServer) -> BlockingScu:
    return BlockingScu("127.0.0.1", server.port, contexts=CONTEXTS, timeout=10)


def send_raw_command(
    peer: BlockingScu, abstract_syntax: str, elements: Mapping[Tag, object]
) -> None:
    """A command set as given, however wrong (the DIMSE encoder would refuse it)."""
    raw = encode_command(elements)  # type: ignore[arg-type]
    context_id = peer.context_for(abstract_syntax)
    peer.association.send_data(context_id, True, True, raw, time.monotonic())
    peer.flush()


async def after_raw_command(
    app: App,
    abstract_syntax: str,
    elements: Mapping[Tag, object],
    then: Callable[[BlockingScu], T],
) -> T:
    """Serve ``app``; on a new association send one raw command set, then ``then(peer)``."""
    async with serving(app) as server:

        def exchange() -> T:
            with scu(server) as peer:
                send_raw_command(peer, abstract_syntax, elements)
                return then(peer)

        return await asyncio.to_thread(exchange)


async def test_a_lagging_disk_is_not_the_peers_idleness() -> None:
    # Each write of the data set takes longer than the idle timeout: we stopped reading,
    # so the peer's silence meanwhile is ours, and the instance is stored.
    app = App(lambda: SlowSink(0.4))
    async with serving(app, idle_timeout=0.25) as server:

        def push() -> int:
            with scu(server) as peer:
                status = peer.store(CT_IMAGE, "1.2.3", bytes(200_000)).status
                peer.release()
                return status

        assert await asyncio.to_thread(push) == 0x0000
    assert [end.outcome.value for end in app.ends] == ["released"]


async def test_a_peer_silent_past_the_idle_timeout_is_aborted() -> None:
    # The counterpart of the test above: the timer does run when the silence is the peer's.
    app = App()
    async with serving(app, idle_timeout=0.2) as server:

        def wait_silently() -> None:
            with scu(server) as peer, pytest.raises(AssociationAbortedError):
                peer.response()  # nothing asked, nothing to answer: only the A-ABORT comes

        await asyncio.to_thread(wait_silently)
    assert [end.outcome.value for end in app.ends] == ["timeout"]


def answer_then_echo(peer: BlockingScu) -> tuple[object, int]:
    """The answer to what was sent, then an echo's status: the association goes on."""
    response = peer.response()
    status = peer.echo()
    peer.release()
    return response, status


async def test_a_store_request_without_a_data_set_is_answered_at_once() -> None:
    # Both sides would otherwise wait for each other until the idle timeout.
    command = {
        Tag.AffectedSOPClassUID: CT_IMAGE,
        Tag.CommandField: CommandField.C_STORE_RQ,
        Tag.MessageID: 7,
        Tag.Priority: 0,
        Tag.CommandDataSetType: NO_DATA_SET,
        Tag.AffectedSOPInstanceUID: "1.2.3",
    }
    response, echo_status = await after_raw_command(App(), CT_IMAGE, command, answer_then_echo)
    assert isinstance(response, CStoreRSP)
    assert (response.message_id_being_responded_to, response.status) == (7, 0xC000)
    assert echo_status == 0x0000


async def test_an_echo_request_that_announces_a_data_set_is_answered_all_the_same() -> None:
    # A sloppy peer's CommandDataSetType on an echo: the echo needs nothing more to be served.
    command = {
        Tag.AffectedSOPClassUID: VERIFICATION,
        Tag.CommandField: CommandField.C_ECHO_RQ,
        Tag.MessageID: 9,
        Tag.CommandDataSetType: DATA_SET_PRESENT,
    }
    response, _ = await after_raw_command(App(), VERIFICATION, command, answer_then_echo)
    assert isinstance(response, CEchoRSP)
    assert (response.message_id_being_responded_to, response.status) == (9, 0x0000)


async def test_a_cancel_request_gets_no_response_of_its_own() -> None:
    # PS3.7 §9.3.2.3: C-CANCEL-RQ has no response; the next one the peer reads answers its echo.
    command = {
        Tag.CommandField: CommandField.C_CANCEL_RQ,
        Tag.MessageIDBeingRespondedTo: 1,
        Tag.CommandDataSetType: NO_DATA_SET,
    }

    def echo_answered(peer: BlockingScu) -> object:
        peer.send_command(peer.context_for(VERIFICATION), CEchoRQ(peer.new_message_id()))
        response = peer.response()
        peer.release()
        return response

    response = await after_raw_command(App(), VERIFICATION, command, echo_answered)
    assert isinstance(response, CEchoRSP)
    assert response.status == 0x0000


async def test_a_request_without_a_message_id_aborts() -> None:
    app = App()
    command = {
        Tag.AffectedSOPClassUID: VERIFICATION,
        Tag.CommandField: CommandField.C_FIND_RQ,
        Tag.CommandDataSetType: NO_DATA_SET,
    }

    def aborted(peer: BlockingScu) -> None:
        with pytest.raises(AssociationAbortedError):
            peer.response()

    await after_raw_command(app, VERIFICATION, command, aborted)
    assert [end.outcome.value for end in app.ends] == ["aborted"]


async def test_a_failing_open_aborts_the_association_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving(App(open_fails=True)) as server:

        def exchange() -> None:
            with scu(server) as peer, pytest.raises(AssociationAbortedError):
                peer.echo()

        with caplog.at_level(logging.ERROR, logger="oxidicom.net"):
            await asyncio.to_thread(exchange)
    assert any("open() failed" in record.getMessage() for record in caplog.records)


async def test_a_failing_allow_list_drops_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving(App(allowed_fails=True)) as server:

        def connect() -> None:
            with pytest.raises(AssociationAbortedError):
                scu(server)

        with caplog.at_level(logging.ERROR, logger="oxidicom.net"):
            await asyncio.to_thread(connect)
    assert any("connection_allowed() failed" in record.getMessage() for record in caplog.records)


async def test_closing_the_server_ends_an_association_stuck_on_its_sink() -> None:
    # The grace period ends: on_end is told, and close() returns, whatever the sink does.
    sinks: list[StuckSink] = []

    def stuck() -> StuckSink:
        sinks.append(StuckSink())
        return sinks[-1]

    app = App(stuck)
    server = DicomServer(app, ServerConfig(host="127.0.0.1", port=0))
    await server.start()

    def push() -> None:
        with scu(server) as peer, pytest.raises(AssociationAbortedError):
            peer.store(CT_IMAGE, "1.2.3", bytes(1000))

    pushing = asyncio.ensure_future(asyncio.to_thread(push))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not (sinks and sinks[0].received):
        assert loop.time() < deadline, "the data set never reached the sink"
        await asyncio.sleep(0.01)
    started = loop.time()
    await server.close(grace=0.2)
    assert loop.time() - started < 3
    assert [end.outcome.value for end in app.ends] == ["shutdown"]
    assert sinks[0].aborted
    assert server.connection_count == 0
    await pushing


def never() -> Awaitable[None]:
    return asyncio.get_running_loop().create_future()


async def test_an_association_whose_release_never_settles_ends_in_shutdown() -> None:
    # The A-RELEASE-RP never went out: the association was not released, whatever the
    # peer asked for.
    app = App(release_settles=never)
    server = DicomServer(app, ServerConfig(host="127.0.0.1", port=0))
    await server.start()

    def release() -> None:
        with scu(server) as peer, pytest.raises(AssociationAbortedError):
            peer.release()

    releasing = asyncio.ensure_future(asyncio.to_thread(release))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not app.releases:
        assert loop.time() < deadline, "on_release never called"
        await asyncio.sleep(0.01)
    await server.close(grace=0.2)
    await releasing
    assert [end.outcome.value for end in app.ends] == ["shutdown"]


def feed(protocol: AcceptorProtocol, data: bytes) -> None:
    buffer = protocol.get_buffer(len(data))
    buffer[: len(data)] = data
    protocol.buffer_updated(len(data))


async def test_a_connection_lost_while_waiting_drops_what_came_after() -> None:
    # A data set and an A-RELEASE-RQ arrive in one read; the sink's write makes us wait,
    # and the connection is lost meanwhile (a TLS peer that vanished, our own close): the
    # release is of a connection that is gone, and must not be served.
    sinks: list[StuckSink] = []

    def stuck() -> StuckSink:
        sinks.append(StuckSink())
        return sinks[-1]

    app = App(stuck)
    protocol = AcceptorProtocol(DicomServer(app, ServerConfig(host="127.0.0.1", port=0)))
    transport = MemoryTransport()
    protocol.connection_made(cast(asyncio.Transport, transport))
    requestor = Association(Role.REQUESTOR)
    requestor.request_association(
        AAssociateRQ("TEST-SCP", "TEST-SCU", propose([(CT_IMAGE, [IMPLICIT])])), 0.0
    )
    requestor.connection_made(0.0)
    feed(protocol, b"".join(requestor.data_to_send()))
    requestor.receive_data(bytes(transport.sent), 0.0)
    assert isinstance(requestor.next_event(), AssociationAccepted)
    send_message(requestor, 1, CStoreRQ(1, CT_IMAGE, "1.2.3"), 0.0)
    requestor.send_data(1, False, True, bytes(100), 0.0)
    requestor.release(0.0)
    feed(protocol, b"".join(requestor.data_to_send()))
    assert [sink.received for sink in sinks] == [100]

    protocol.connection_lost(None)
    await asyncio.wait_for(protocol.finished, 5)
    assert app.releases == 0
    assert [end.outcome.value for end in app.ends] == ["connection-lost"]
    assert sinks[0].aborted
