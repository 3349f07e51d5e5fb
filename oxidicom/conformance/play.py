"""Play a :class:`~oxidicom.conformance.script.Script` against the peer and record what
happened: a :class:`Transcript`.

The connection is driven by our *requestor* state machine
(:class:`~oxidicom.ul.association.Association` in :attr:`Role.REQUESTOR`), fed with
everything the peer sends: it interprets the peer's PDUs by PS3.8 Table 9-10 (an AC that
answers contexts never proposed, a PDU unexpected in its state, a P-DATA-TF longer than our
Maximum Length Received all become protocol errors, reported by the judges), and the DIMSE
:class:`~oxidicom.dimse.reader.MessageReader` turns P-DATA into responses. Injected steps go
on the wire behind its back; what the peer does about them is recorded all the same.
"""

from __future__ import annotations

import socket
import time
from typing import Final

import attrs

from oxidicom.conformance.script import Act, Script, Step
from oxidicom.conformance.target import Target
from oxidicom.dimse.messages import CEchoRQ, Message
from oxidicom.dimse.reader import CommandReceived, MessageReader
from oxidicom.dimse.writer import send_message
from oxidicom.ul.actions import Role
from oxidicom.ul.association import Association
from oxidicom.ul.constants import PDU_HEADER_LENGTH
from oxidicom.ul.errors import LocalProtocolError
from oxidicom.ul.events import (
    AbortCause,
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    ConnectionClosed,
    PDataChunk,
    ReleaseConfirmed,
    ReleaseRequested,
    UserEvent,
)
from oxidicom.ul.fsm import State

PIECE_GAP: Final = 0.001
"""Between the pieces of a cut step, so that each leaves as a TCP segment of its own."""
SETTLE: Final = 0.25
"""After an answer that does not end the step, how long to wait for more (a close)."""


@attrs.frozen
class Reaction:
    """What the peer did in answer to one step."""

    received: tuple[bytes, ...]
    """The PDUs it sent meanwhile, whole (a trailing incomplete one as it came)."""
    closed: bool
    """It closed (or reset) the connection."""
    reset: bool
    silent: bool
    """Nothing that ends the step came before the timeout, and the connection is open."""
    seconds: float
    responses: tuple[Message, ...] = ()
    """DIMSE messages decoded from its P-DATA."""
    protocol_error: str | None = None
    """Our requestor state machine found what the peer sent invalid or unexpected."""
    sent_abort: bool = False
    """Our requestor answered that protocol error with an A-ABORT of its own."""
    skipped: str | None = None
    """Why the step was not sent although the connection was open (e.g. the context of a
    C-ECHO was not accepted)."""

    @property
    def pdu_types(self) -> tuple[int, ...]:
        return tuple(pdu[0] for pdu in self.received if len(pdu) >= PDU_HEADER_LENGTH)

    def first(self, pdu_type: int) -> bytes | None:
        for pdu in self.received:
            if len(pdu) >= PDU_HEADER_LENGTH and pdu[0] == pdu_type:
                return pdu
        return None


@attrs.frozen
class Exchange:
    step: Step
    sent: bool
    """False when the connection was already over and the step was skipped."""
    reaction: Reaction | None


@attrs.frozen
class Transcript:
    script: Script
    refused: bool
    """The connection could not be opened at all (the peer is down)."""
    exchanges: tuple[Exchange, ...]
    accepted_contexts: tuple[int, ...] = ()
    peer_max_length: int | None = None

    def reactions(self, act: Act | None = None) -> list[Reaction]:
        return [
            exchange.reaction
            for exchange in self.exchanges
            if exchange.reaction is not None and (act is None or exchange.step.act is act)
        ]

    def reaction(self, index: int) -> Reaction | None:
        if index < len(self.exchanges):
            return self.exchanges[index].reaction
        return None


class _Connection:
    """One socket, the requestor state machine, and what the peer sent."""

    def __init__(self, sock: socket.socket, association: Association) -> None:
        self.sock = sock
        self.association = association
        self.reader = MessageReader()
        self.pending = bytearray()
        """Received bytes not yet cut into whole PDUs."""
        self.closed = False
        self.reset = False
        self.message_id = 0

    def send(self, data: bytes | memoryview) -> bool:
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True
            return False
        return True

    def send_pieces(self, data: bytes, cuts: tuple[int, ...]) -> None:
        """Send ``data``, as one write or cut at ``cuts`` into separate TCP segments."""
        start = 0
        for cut in (*cuts, len(data)):
            if cut > start:
                if not self.send(data[start:cut]):
                    return
                if cut < len(data):
                    time.sleep(PIECE_GAP)
                start = cut

    def flush(self) -> None:
        """Send what our requestor state machine wants sent."""
        for part in self.association.data_to_send():
            if not self.send(part):
                return

    def play(self, step: Step, timeout: float) -> Reaction:
        started = time.monotonic()
        received: list[bytes] = []
        responses: list[Message] = []
        error: str | None = None
        sent_abort = False
        finished = False
        association = self.association
        now = time.monotonic()
        if step.act is Act.ASSOCIATE:
            assert step.request is not None
            association.request_association(step.request, now)
            association.connection_made(now)
            association.data_to_send()  # the wire bytes of the step go instead
            self.send_pieces(step.wire, step.cuts)
        elif step.act is Act.ECHO:
            self.message_id += 1
            try:
                send_message(association, step.context_id, CEchoRQ(self.message_id), now)
            except LocalProtocolError as refused:
                return Reaction((), self.closed, self.reset, False, 0.0, skipped=str(refused))
            self.flush()
        elif step.act is Act.RELEASE:
            if association.state is not State.STA6:
                skipped = f"no association to release ({association.state.value})"
                return Reaction((), self.closed, self.reset, False, 0.0, skipped=skipped)
            association.release(now)
            self.flush()
        else:
            self.send_pieces(step.wire, step.cuts)
        wait = step.seconds if step.act is Act.IDLE and step.seconds is not None else timeout
        deadline = started + wait
        settle_at: float | None = None
        while not finished and not self.closed:
            limit = deadline if settle_at is None else min(deadline, settle_at)
            remaining = limit - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                data = b""
                self.reset = True
            except OSError:
                data = b""
            if not data:
                self.closed = True
            else:
                self.pending += data
                received += self._whole_pdus()
            association.receive_data(data, time.monotonic())
            while (event := association.next_event()) is not None:
                done, message = self._event(event, step.act)
                finished = finished or done
                if message is not None:
                    responses.append(message)
                if type(event) is Aborted and event.cause is AbortCause.PROTOCOL_ERROR:
                    error = event.detail
                    sent_abort = True
            self.flush()
            if received and settle_at is None and step.act in (Act.INJECT, Act.IDLE):
                # Something came back to an injection: give the peer a moment to close.
                settle_at = time.monotonic() + SETTLE
        if self.closed and self.pending:
            received.append(bytes(self.pending))
            self.pending.clear()
        silent = not (finished or self.closed or received or error)
        return Reaction(
            tuple(received),
            self.closed,
            self.reset,
            silent,
            time.monotonic() - started,
            tuple(responses),
            error,
            sent_abort,
        )

    def _whole_pdus(self) -> list[bytes]:
        pdus = []
        buffer = self.pending
        while len(buffer) >= PDU_HEADER_LENGTH:
            end = PDU_HEADER_LENGTH + int.from_bytes(buffer[2:6], "big")
            if len(buffer) < end:
                break
            pdus.append(bytes(buffer[:end]))
            del buffer[:end]
        return pdus

    def _event(self, event: UserEvent, act: Act) -> tuple[bool, Message | None]:
        """Whether ``event`` ends the step, and the DIMSE message it completed, if any."""
        if type(event) is PDataChunk:
            result = self.reader.feed(event)
            if type(result) is CommandReceived:
                return act in (Act.ECHO, Act.INJECT), result.message
            return False, None
        if type(event) is ReleaseRequested:
            self.association.release_response(time.monotonic())
            return False, None
        if type(event) is AssociationAccepted or type(event) is AssociationRejected:
            return act is Act.ASSOCIATE, None
        if type(event) is ReleaseConfirmed:
            return act is Act.RELEASE, None
        return type(event) is Aborted or type(event) is ConnectionClosed, None


def play(target: Target, script: Script, *, timeout: float) -> Transcript:
    """Open a connection, play every step, close; what the peer did, step by step.

    A connection that cannot be opened gives a transcript with ``refused`` set. Steps after
    the peer closed are not sent.
    """
    association = Association(Role.REQUESTOR, artim_timeout=timeout, strict_max_length=True)
    try:
        sock = target.connect(timeout)
    except OSError:
        return Transcript(script, True, ())
    exchanges: list[Exchange] = []
    connection = _Connection(sock, association)
    begins_with_association = bool(script.steps) and script.steps[0].act is Act.ASSOCIATE
    try:
        for index, step in enumerate(script.steps):
            over = begins_with_association and index and association.state is not State.STA6
            if connection.closed or over:
                # Nothing more to say: the peer closed, or the association did not come to be.
                exchanges.append(Exchange(step, False, None))
                continue
            exchanges.append(Exchange(step, True, connection.play(step, timeout)))
    finally:
        sock.close()
    response = association.response
    return Transcript(
        script,
        False,
        tuple(exchanges),
        tuple(sorted(association.contexts)),
        response.user_information.maximum_length if response is not None else None,
    )
