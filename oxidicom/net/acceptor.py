"""The asyncio glue of one accepted connection: bytes to the sans-IO core, effects back out.

A :class:`asyncio.BufferedProtocol` receives straight into one reusable buffer (no per-read
allocation or copy), hands it to the :class:`~oxidicom.ul.association.Association`, and
routes the events: P-DATA chunks through the DIMSE :class:`~oxidicom.dimse.reader.MessageReader`,
data set chunks to the current :class:`~oxidicom.net.handlers.StoreSink` in one batch per
received buffer, everything else to the handler. When a sink or the slot pool makes us wait,
reading pauses (asyncpg's pattern) and resumes where it stopped: the unread rest of the
buffer stays in the framer, untouched, because nothing is read into the buffer meanwhile.

One timer per connection, re-armed from ``Association.get_timer()`` (aioquic's pattern).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import mmap
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

import attrs

from oxidicom.dimse import status as dimse_status
from oxidicom.dimse.command import CommandError
from oxidicom.dimse.messages import (
    CEchoRQ,
    CEchoRSP,
    CommandField,
    CStoreRQ,
    CStoreRSP,
    Message,
    OtherCommand,
    unrecognized_operation_response,
)
from oxidicom.dimse.reader import (
    CommandReceived,
    CommandUndecodable,
    DimseEvent,
    MessageReader,
    ProtocolViolation,
)
from oxidicom.dimse.writer import send_message
from oxidicom.net.handlers import (
    AssociationContext,
    AssociationEnd,
    AssociationHandler,
    AssociationStats,
    Outcome,
    Peer,
    StoreResult,
    StoreSink,
)
from oxidicom.net.tracing import AssociationSpan
from oxidicom.ul.actions import Role
from oxidicom.ul.association import Association
from oxidicom.ul.constants import (
    REASON_PRESENTATION_LOCAL_LIMIT,
    REASON_USER_NO_REASON,
    RejectResult,
    RejectSource,
)
from oxidicom.ul.events import (
    AbortCause,
    Aborted,
    AssociationRequested,
    ConnectionClosed,
    PDataChunk,
    PDataRun,
    ReleaseConfirmed,
    ReleaseRequested,
    UserEvent,
)
from oxidicom.ul.fsm import State
from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ
from oxidicom.ulid import new_ulid

if TYPE_CHECKING:
    from oxidicom.net.server import DicomServer

log = logging.getLogger("oxidicom.net")
T = TypeVar("T")

_FLUSH_BYTES = 256 * 1024
"""Data set bytes gathered (over one or several reads) before they go to the sink at once."""
_MIN_READ = 64 * 1024
"""Below this much free space after the batch, flush it and read into the buffer's start."""

_ABORT_OUTCOMES = {
    AbortCause.PEER_ABORT: Outcome.ABORTED,
    AbortCause.PROTOCOL_ERROR: Outcome.ABORTED,
    AbortCause.CONNECTION_LOST: Outcome.CONNECTION_LOST,
    AbortCause.TIMEOUT: Outcome.TIMEOUT,
}


@attrs.define
class _Operation:
    """The request being served: answered once its data set (if any) is complete."""

    context_id: int
    respond: Callable[[StoreResult], Message]
    sink: StoreSink | None
    refusal: StoreResult | None
    """Set when the data set is to be read and dropped, answering with this."""
    is_store: bool = False


class AcceptorProtocol(asyncio.BufferedProtocol):
    """One accepted TCP connection: at most one association."""

    def __init__(self, server: DicomServer) -> None:
        config = server.config
        self._server = server
        self._loop = asyncio.get_running_loop()
        # An anonymous mapping, not a bytearray: it goes back to the system when the
        # connection ends. 256 KiB heap blocks churned by every connection fragment the heap,
        # which then grows with the number of connections served (3x under fuzzing).
        self._buffer = memoryview(mmap.mmap(-1, config.receive_buffer_size))
        self._fill = 0
        """Where the next read goes: data set chunks still in ``_batch`` live before it."""
        self._batch_bytes = 0
        self._association = Association(
            Role.ACCEPTOR,
            artim_timeout=config.artim_timeout,
            idle_timeout=config.idle_timeout,
            strict_max_length=config.strict_max_length,
            coalesce_data=True,
        )
        self._reader = MessageReader()
        self._transport: asyncio.Transport | None = None
        self._peer = Peer("", 0)
        self.association_id = new_ulid()
        self._context: AssociationContext | None = None
        self._handler: AssociationHandler | None = None
        self._operation: _Operation | None = None
        self._batch: list[memoryview] = []
        self._blocked = False
        self._write_paused = False
        """The peer does not read our answers: neither do we read its requests."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._holds_slot = False
        self._admitted = False
        self._closed = False
        """Set once the association's end has been handled (exactly once)."""
        self._outcome: Outcome | None = None
        self._detail = ""
        self._stats = AssociationStats(time.monotonic())
        self._span: AssociationSpan | None = None
        self.finished: asyncio.Future[None] = self._loop.create_future()
        """Done once the connection is closed and the handler has been told."""

    # --- asyncio.BufferedProtocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its interface.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple) and len(peername) >= 2:
            self._peer = Peer(str(peername[0]), int(peername[1]))
        # One span per TCP connection (contract §6), refused ones included.
        self._span = AssociationSpan(self.association_id, self._peer.host, self._peer.port)
        if not self._server.connection_opened(self, self._peer):
            self._outcome = Outcome.ABORTED
            self._detail = "too many connections"
            self._transport.abort()
            return
        if not self._allowed():
            self._outcome = Outcome.ABORTED
            self._detail = "peer not allowed"
            self._transport.abort()
            return
        self._association.connection_made(self._loop.time())
        self._after_input()

    def _allowed(self) -> bool:
        try:
            allowed = self._server.app.connection_allowed(self._peer)
        except Exception:
            log.exception("association %s: connection_allowed() failed", self.association_id)
            return False
        if not allowed:
            log.warning("connection from %s refused: not an allowed peer", self._peer.host)
        return allowed

    def get_buffer(self, sizehint: int) -> memoryview:
        # Reads go after the chunks still waiting in the batch, so several reads can be
        # written to disk with one writev; _process() empties the batch before space runs low.
        return self._buffer[self._fill :]

    def buffer_updated(self, nbytes: int) -> None:
        start = self._fill
        self._fill = start + nbytes
        self._association.receive_data(self._buffer[start : self._fill], self._loop.time())
        self._process()

    def eof_received(self) -> bool:
        self._association.receive_data(b"", self._loop.time())
        self._process()
        return False

    def pause_writing(self) -> None:
        # Back-pressure both ways: a peer that sends requests but never reads the answers
        # would otherwise make us buffer answers without limit.
        self._write_paused = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._blocked and self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._blocked:
            # What we were waiting for (a write, a slot, a release to settle) may never
            # come, and what the peer sent after it is of a connection that is gone: the
            # association ends now, unread input and all. The continuation, when it comes,
            # finds it over.
            self._blocked = False
            self._connection_closed("connection lost")
            return
        self._association.receive_data(b"", self._loop.time())
        self._process()
        self._cancel_timer()
        if not self._closed:  # refused before any association
            self._connection_closed("connection refused")

    # --- the event loop of the association ------------------------------------------------

    def _process(self) -> None:
        """Handle every event the association has, unless something makes us wait."""
        association = self._association
        reader = self._reader
        while not self._blocked:
            event = association.next_event()
            if event is None:
                break
            if type(event) is PDataChunk:
                result = reader.feed(event)
                if result is event:
                    self._data_set_bytes((event.data,), event.is_last)
                elif result is not None:
                    self._flush_batch()
                    self._dimse_event(result)
            elif type(event) is PDataRun:
                run = reader.feed_run(event)
                if type(run) is ProtocolViolation:
                    self._flush_batch()
                    self._dimse_event(run)
                else:
                    self._data_set_bytes(event.chunks, event.is_last)
            else:
                self._flush_batch()
                self._ul_event(event)
        if not self._blocked:
            if self._batch_bytes >= _FLUSH_BYTES or len(self._buffer) - self._fill < _MIN_READ:
                self._flush_batch()
            if not self._batch:
                self._fill = 0  # nothing points into the buffer any more
        self._after_input()

    def _data_set_bytes(self, chunks: Sequence[memoryview], is_last: bool) -> None:
        """Gather data set chunks for the sink (in one batch per read)."""
        operation = self._operation
        if operation is not None and operation.sink is not None:
            size = sum(map(len, chunks))
            self._batch += chunks
            self._batch_bytes += size
            self._stats.data_set_bytes += size
        if is_last:
            # finish() only once the sink has every chunk: an asynchronous write may still
            # be running when this returns.
            self._flush_batch(then=self._finish_operation)

    def _after_input(self) -> None:
        """Carry out the association's pending effects: bytes, timer, close."""
        transport = self._transport
        association = self._association
        if transport is None:
            return
        data = association.data_to_send()
        if data and not transport.is_closing():
            transport.writelines(data)
        if association.close_requested:
            self._close_transport()
        self._arm_timer()

    def _close_transport(self) -> None:
        """Close once what we sent is out, but within ARTIM: a closing transport waits for
        its buffer to drain, and a peer that never reads would keep it (and the socket)
        forever."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.close()
        if transport.get_write_buffer_size():
            self._loop.call_later(self._server.config.artim_timeout, transport.abort)

    def _block_on(
        self, awaitable: Awaitable[T], then: Callable[[T], None], *, when_closed: bool = False
    ) -> None:
        """Stop reading until ``awaitable`` is done, then call ``then`` and go on. If the
        connection ended meanwhile, ``then`` is called only ``when_closed``."""
        self._blocked = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()
        future = asyncio.ensure_future(awaitable)

        def resume(done: asyncio.Future[T]) -> None:
            if self._closed:
                # The connection ended while we waited: nothing is to be done, nor read,
                # but for what must be handed back (a slot granted meanwhile).
                if when_closed and not done.cancelled() and done.exception() is None:
                    then(done.result())
                return
            self._blocked = False
            try:
                then(done.result())
            except Exception:
                log.exception("association %s: handler failed", self.association_id)
                self._abort_association("internal error")
            self._process()
            if (
                not self._blocked
                and not self._write_paused
                and self._transport is not None
                and not self._transport.is_closing()
            ):
                self._transport.resume_reading()

        future.add_done_callback(resume)

    # --- timer ----------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        deadline = self._association.get_timer()
        if deadline is None:
            self._cancel_timer()
        elif self._timer_at is None or deadline < self._timer_at:
            # A later deadline (the idle timer moves on every read) keeps the current
            # handle: when it fires early we simply re-arm.
            self._cancel_timer()
            self._timer = self._loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self._loop.time()
        if self._blocked:
            # We are not reading (waiting on the disk or for a slot): the silence is ours.
            self._association.restart_idle_timer(now)
        deadline = self._association.get_timer()
        if deadline is not None and deadline <= now:
            self._association.handle_timer(now)
            self._process()
        else:
            self._arm_timer()

    # --- Upper Layer events ---------------------------------------------------------------

    def _ul_event(self, event: UserEvent) -> None:
        if type(event) is AssociationRequested:
            self._association_requested(event.request)
        elif type(event) is ReleaseRequested or type(event) is ReleaseConfirmed:
            # After a release collision (PS3.8 §7.2.2) the acceptor answers only once its own
            # request is confirmed (Sta10 -> Sta12); otherwise at once.
            self._abandon_operation("association released in the middle of a data set")
            if isinstance(event, ReleaseConfirmed) or not event.collision:
                self._answer_release()
        elif type(event) is Aborted:
            self._outcome = _ABORT_OUTCOMES[event.cause]
            self._detail = event.detail
            self._abandon_operation(event.detail)
        elif type(event) is ConnectionClosed:
            self._connection_closed(event.reason)

    def _answer_release(self) -> None:
        """A-RELEASE-RP, once the handler's ``on_release`` (optional) has settled."""
        on_release = getattr(self._handler, "on_release", None)
        settled = None
        if on_release is not None:
            try:
                settled = on_release()
            except Exception:
                log.exception("association %s: on_release() failed", self.association_id)
                self._abort_association("internal error")
                return
        if settled is None:
            self._release_settled()
        else:
            self._block_on(settled, lambda _: self._release_settled())

    def _release_settled(self) -> None:
        """The A-RELEASE-RP goes out: only now is the association released (a shutdown or
        a lost connection while the handler settled ends it otherwise)."""
        if self._association.state in (State.STA8, State.STA12):  # not aborted meanwhile
            self._outcome = Outcome.RELEASED
            self._detail = "released"
            self._association.release_response(self._loop.time())

    def _association_requested(self, request: AAssociateRQ) -> None:
        if self._span is not None:
            self._span.set_calling_aet(request.calling_ae_title)
        try:
            answer = self._server.app.negotiate(request, self._peer)
        except Exception:
            log.exception("association %s: negotiate() failed", self.association_id)
            answer = AAssociateRJ(
                RejectResult.REJECTED_TRANSIENT, RejectSource.SERVICE_USER, REASON_USER_NO_REASON
            )
        if isinstance(answer, AAssociateRJ):
            self._reject(answer, "rejected by policy")
            return
        rejection = self._server.admission_check(self._peer)
        if rejection is not None:
            self._reject(rejection, "per-peer association limit reached")
            return
        self._admitted = True
        if self._server.slots.try_acquire():
            self._holds_slot = True
            self._establish(answer)
            return
        config = self._server.config
        log.info(
            "association %s from %s waits for a free slot (%d in use, %d waiting)",
            self.association_id,
            self._peer.host,
            self._server.slots.in_use,
            self._server.slots.waiting,
        )

        def slot_decided(granted: bool) -> None:
            if self._closed:  # the peer gave up while it waited
                if granted:
                    self._server.slots.release()
                return
            if not granted:
                self._reject(
                    AAssociateRJ(
                        RejectResult.REJECTED_TRANSIENT,
                        RejectSource.SERVICE_PROVIDER_PRESENTATION,
                        REASON_PRESENTATION_LOCAL_LIMIT,
                    ),
                    "no free association slot",
                )
                return
            self._holds_slot = True
            if self._association.state is not State.STA3:  # the peer gave up meanwhile
                self._release_slot()
                return
            self._establish(answer)

        self._block_on(
            self._server.slots.acquire(config.slot_wait_timeout), slot_decided, when_closed=True
        )

    def _reject(self, rejection: AAssociateRJ, why: str) -> None:
        self._outcome = Outcome.ABORTED
        self._detail = why
        self._association.reject(rejection, self._loop.time())

    def _establish(self, answer: AAssociateAC) -> None:
        association = self._association
        association.accept(answer, self._loop.time())
        assert association.request is not None
        self._context = AssociationContext(
            association_id=self.association_id,
            peer=self._peer,
            request=association.request,
            response=answer,
            contexts=dict(association.contexts),
        )
        try:
            self._handler = self._server.app.open(self._context)
        except Exception:
            log.exception("association %s: open() failed", self.association_id)
            self._abort_association("internal error")

    def _connection_closed(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._abandon_operation(reason)
        self._release_slot()
        if self._outcome is None:
            self._outcome = Outcome.RELEASED if reason == "released" else Outcome.CONNECTION_LOST
        if not self._detail:
            self._detail = reason
        self._close_transport()
        self._cancel_timer()
        handler, self._handler = self._handler, None
        ended: Awaitable[None] | None = None
        if handler is not None:
            end = AssociationEnd(self._outcome, self._detail, self._stats)
            try:
                ended = handler.on_end(end)
            except Exception:
                log.exception("association %s: on_end() failed", self.association_id)
        if ended is not None and inspect.isawaitable(ended):
            task = asyncio.ensure_future(ended)
            task.add_done_callback(lambda _: self._done())
        else:
            self._done()

    def _done(self) -> None:
        if self._span is not None:
            if self._outcome is not Outcome.RELEASED:  # rejected, refused and lost too
                self._span.fail(self._detail or "connection closed")
            self._span.end()
            self._span = None
        self._server.connection_finished(self, self._context, self._outcome, self._detail)
        if not self.finished.done():
            self.finished.set_result(None)

    def _release_slot(self) -> None:
        if self._holds_slot:
            self._holds_slot = False
            self._server.slots.release()
        if self._admitted:
            self._admitted = False
            self._server.admission_done(self._peer)

    # --- DIMSE ----------------------------------------------------------------------------

    def _dimse_event(self, event: DimseEvent) -> None:
        if type(event) is ProtocolViolation:
            self._abort_association(event.detail)
        elif type(event) is CommandUndecodable:
            self._command_undecodable(event.context_id, event.error)
        elif type(event) is CommandReceived:
            self._command(event.context_id, event.message)

    def _command(self, context_id: int, message: Message) -> None:
        handler = self._handler
        assert handler is not None
        if type(message) is CStoreRQ:
            self._store_requested(context_id, message, handler)
        elif type(message) is CEchoRQ:
            self._stats.echoes += 1
            try:
                status = handler.on_echo(message)
            except Exception:
                log.exception("association %s: on_echo() failed", self.association_id)
                status = dimse_status.PROCESSING_FAILURE
            self._send(context_id, CEchoRSP(message.message_id, status))
        elif type(message) is OtherCommand and message.command_field == CommandField.C_CANCEL_RQ:
            pass  # PS3.7 §9.3.2.3: answered by the cancelled operation's response, if any
        elif type(message) is OtherCommand and message.message_id is None:
            self._abort_association(f"command 0x{message.command_field:04X} has no MessageID")
        elif type(message) is OtherCommand and message.is_request:
            response = unrecognized_operation_response(message)
            if message.has_data_set:
                self._operation = _Operation(
                    context_id, lambda _: response, None, StoreResult(response.status or 0)
                )
            else:
                self._send(context_id, response)
        else:
            self._abort_association(f"unexpected {type(message).__name__} from the requestor")

    def _store_requested(
        self, context_id: int, request: CStoreRQ, handler: AssociationHandler
    ) -> None:
        def respond(result: StoreResult) -> Message:
            return CStoreRSP(
                request.message_id,
                request.affected_sop_class_uid,
                request.affected_sop_instance_uid,
                result.status,
                result.error_comment,
            )

        context = self._association.contexts[context_id]
        if request.affected_sop_class_uid != context.abstract_syntax:
            refusal = StoreResult(
                dimse_status.SOP_CLASS_NOT_SUPPORTED,
                f"SOP class differs from context {context_id}'s abstract syntax",
            )
            self._operation = _Operation(context_id, respond, None, refusal, is_store=True)
            return
        try:
            sink = handler.on_store(request, context)
        except Exception:
            log.exception("association %s: on_store() failed", self.association_id)
            sink = StoreResult(dimse_status.PROCESSING_FAILURE, "internal error")
        if isinstance(sink, StoreResult):
            self._operation = _Operation(context_id, respond, None, sink, is_store=True)
        else:
            self._operation = _Operation(context_id, respond, sink, None, is_store=True)

    def _command_undecodable(self, context_id: int, error: CommandError) -> None:
        field, message_id = error.command_field, error.message_id
        if field is None or message_id is None or field & 0x8000:
            self._abort_association(f"undecodable command set: {error}")
            return
        request = OtherCommand(field, message_id, None, bool(error.has_data_set))
        response = attrs.evolve(
            unrecognized_operation_response(request), status=dimse_status.CANNOT_UNDERSTAND
        )
        if error.has_data_set:
            self._operation = _Operation(
                context_id, lambda _: response, None, StoreResult(dimse_status.CANNOT_UNDERSTAND)
            )
        else:
            self._send(context_id, response)

    def _flush_batch(self, then: Callable[[], None] | None = None) -> None:
        """Hand the gathered chunks to the sink; call ``then`` once it has them all (after
        its write completes, if the write is asynchronous)."""
        batch = self._batch
        pending = None
        if batch:
            self._batch = []
            self._batch_bytes = 0
            operation = self._operation
            if operation is not None and operation.sink is not None:
                try:
                    pending = operation.sink.write(batch)
                except Exception as error:
                    self._sink_failed(operation, error)
        if pending is not None:
            self._block_on(pending, lambda _: then() if then is not None else None)
        elif then is not None:
            then()

    def _sink_failed(self, operation: _Operation, error: BaseException) -> None:
        log.error("association %s: storing failed: %s", self.association_id, error, exc_info=error)
        sink, operation.sink = operation.sink, None
        operation.refusal = StoreResult(dimse_status.OUT_OF_RESOURCES, str(error)[:64])
        if sink is not None:
            try:
                sink.abort()
            except Exception:
                log.exception("association %s: abort() failed", self.association_id)

    def _finish_operation(self) -> None:
        operation = self._operation
        if operation is None:
            return
        self._operation = None
        if operation.sink is None:
            self._respond(operation, operation.refusal or StoreResult())
            return
        try:
            result = operation.sink.finish()
        except Exception as error:
            self._sink_failed(operation, error)
            self._respond(operation, operation.refusal or StoreResult())
            return
        if isinstance(result, StoreResult):
            self._respond(operation, result)
        else:
            self._block_on(result, lambda done: self._respond(operation, done))

    def _respond(self, operation: _Operation, result: StoreResult) -> None:
        if operation.is_store:
            if result.status == dimse_status.SUCCESS:
                self._stats.instances_stored += 1
            else:
                self._stats.instances_failed += 1
        if self._association.state in (State.STA6, State.STA8):
            self._send(operation.context_id, operation.respond(result))

    def _abandon_operation(self, why: str) -> None:
        """The association ends with a data set incomplete: nothing of it may remain."""
        operation, self._operation = self._operation, None
        self._batch = []
        self._batch_bytes = 0
        if operation is not None and operation.sink is not None:
            log.info("association %s: instance discarded: %s", self.association_id, why)
            try:
                operation.sink.abort()
            except Exception:
                log.exception("association %s: abort() failed", self.association_id)

    def _abort_association(self, why: str) -> None:
        log.warning("association %s from %s aborted: %s", self.association_id, self._peer, why)
        self._outcome = Outcome.ABORTED
        self._detail = why
        self._abandon_operation(why)
        self._association.abort(self._loop.time())

    def _send(self, context_id: int, message: Message) -> None:
        send_message(self._association, context_id, message, self._loop.time())

    # --- server control -------------------------------------------------------------------

    def shutdown(self) -> None:
        """The grace period is over: abort whatever is still going on."""
        if self._outcome is None:
            self._outcome = Outcome.SHUTDOWN
            self._detail = "receiver shutting down"
        self._abandon_operation("receiver shutting down")
        self._association.abort(self._loop.time())
        self._after_input()
        self._close_transport()

    @property
    def peer(self) -> Peer:
        return self._peer

    @property
    def established(self) -> bool:
        return self._context is not None

    def __repr__(self) -> str:
        return f"<AcceptorProtocol {self.association_id} {self._peer} {self._association.state}>"
