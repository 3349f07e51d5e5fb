"""One DICOM Upper Layer association, sans-IO: bytes and primitives in, events and bytes out.

The shape is h11's: the transport glue calls :meth:`Association.receive_data` with whatever
arrived (``b""`` for end of stream) and then :meth:`Association.next_event` until it returns
``None``; the user answers with primitives (:meth:`accept`, :meth:`send_data`,
:meth:`release_response`...). Whatever must go on the wire is collected by
:meth:`data_to_send`; :meth:`get_timer` is the one deadline to arm and
:meth:`handle_timer` what to call when it passes (aioquic's pattern). Time is always passed in.

Every input goes through the PS3.8 table (:mod:`oxidicom.ul.fsm`). Bad bytes from the peer
never raise: they become Evt19 and the A-ABORT the table prescribes. Calling a primitive in
a state where the table has no action raises :class:`LocalProtocolError`.
"""

from __future__ import annotations

from collections import deque

import attrs

from oxidicom.ul.actions import (
    ACTIONS,
    DeliverPData,
    Indicate,
    Role,
    Send,
    Stimulus,
    Timer,
    Transport,
)
from oxidicom.ul.constants import PDV_HEADER_LENGTH, AbortReason, AbortSource, PduType
from oxidicom.ul.errors import LocalProtocolError, RemoteProtocolError
from oxidicom.ul.events import (
    AbortCause,
    Aborted,
    ConnectionClosed,
    PDataChunk,
    PDataRun,
    UserEvent,
)
from oxidicom.ul.framer import Framer, FramingError, PDataStarted, PduReceived
from oxidicom.ul.fsm import LOCAL_PRIMITIVES, TRANSITIONS, Action, Event, State
from oxidicom.ul.items import PresentationContextRQ
from oxidicom.ul.pdus import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    Pdu,
    decode_pdu,
    pdata_header,
)

_EVENT_OF_PDU_TYPE = {
    PduType.A_ASSOCIATE_RQ: Event.EVT6,
    PduType.A_ASSOCIATE_AC: Event.EVT3,
    PduType.A_ASSOCIATE_RJ: Event.EVT4,
    PduType.A_RELEASE_RQ: Event.EVT12,
    PduType.A_RELEASE_RP: Event.EVT13,
    PduType.A_ABORT: Event.EVT16,
}

_PDATA_INDICATIONS = frozenset({Action.DT_2, Action.AR_6})
"""The actions of Evt10 that indicate P-DATA and leave the state as it is."""

_WAITING_ON_PEER = frozenset({State.STA5, State.STA6, State.STA7, State.STA10, State.STA11})
"""States in which the idle timeout applies: the next move is the peer's."""


@attrs.frozen
class AcceptedContext:
    """A presentation context both sides agreed on."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


class Association:
    """The Upper Layer state machine of one TCP connection, acceptor or requestor.

    ``artim_timeout`` is PS3.8's ARTIM (waiting for A-ASSOCIATE-RQ, and for the peer to close
    after a reject, release or abort). ``idle_timeout``, not part of PS3.8, aborts an
    association whose peer sends nothing for that long while it is the peer's turn,
    counted from the last bytes received or P-DATA sent.
    ``strict_max_length`` aborts on a P-DATA-TF longer than our Maximum Length Received;
    without it such PDUs are accepted up to the framer's hard cap. ``coalesce_data`` hands
    over data set PDVs of consecutive PDUs as :class:`~oxidicom.ul.events.PDataRun` events
    (fewer events for a receiver that streams data sets; see there).
    """

    def __init__(
        self,
        role: Role,
        *,
        artim_timeout: float = 30.0,
        idle_timeout: float | None = None,
        strict_max_length: bool = False,
        coalesce_data: bool = False,
    ) -> None:
        self.role = role
        self.state = State.STA1
        self.request: AAssociateRQ | None = None
        """The A-ASSOCIATE-RQ received (acceptor) or sent (requestor)."""
        self.response: AAssociateAC | None = None
        """The A-ASSOCIATE-AC sent (acceptor) or received (requestor)."""
        self.contexts: dict[int, AcceptedContext] = {}
        """Accepted presentation contexts by ID, once the association is established."""
        self.peer_max_length = 0
        """The peer's Maximum Length Received: our P-DATA-TF PDUs must not exceed it (0: no
        limit)."""
        self.connect_requested = False
        """Set by AE-1: the requestor's transport should open the connection now."""
        self.close_requested = False
        """Set when the table says to close the transport connection."""
        self._artim_timeout = artim_timeout
        self._idle_timeout = idle_timeout
        self._artim_deadline: float | None = None
        self._idle_deadline: float | None = None
        self._now = 0.0
        self._framer = Framer(strict=strict_max_length, coalesce=coalesce_data)
        self._events: deque[UserEvent] = deque()
        self._outgoing: list[bytes | memoryview] = []
        self._deliver = False
        self._eof = False
        self._finished = False
        self._bare = Stimulus(role)

    # --- transport side -------------------------------------------------------------------

    def connection_made(self, now: float) -> None:
        """The transport connection is open: Evt5 (acceptor) or Evt2 (requestor)."""
        self._now = now
        if self._idle_timeout is not None:
            self._idle_deadline = now + self._idle_timeout  # a requestor waits in Sta5 too
        if self.role is Role.ACCEPTOR:
            self._handle(Event.EVT5, self._bare)
        else:
            self._handle(Event.EVT2, Stimulus(self.role, pdu=self.request))

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Bytes from the peer; ``b""`` means the peer closed the connection (Evt17).

        The buffer is read in place and must stay unchanged until :meth:`next_event` has
        returned ``None`` (or until the next call here). Views handed out in
        :class:`PDataChunk` events point into it.
        """
        self._now = now
        if self._finished:
            return
        if not data:
            self._eof = True
            return
        self._framer.feed(data)
        if self._idle_timeout is not None:
            self._idle_deadline = now + self._idle_timeout

    def next_event(self) -> UserEvent | None:
        """The next event for the user, or ``None`` when more bytes (or a timer) are needed."""
        events = self._events
        next_item = self._framer.next_event
        while True:
            if events:
                return events.popleft()
            if self._finished:
                return None
            item = next_item()
            if item is None:
                if self._eof:
                    self._eof = False
                    self._handle(Event.EVT17, self._bare)
                    continue
                return None
            if type(item) is PDataChunk:
                if self._deliver:
                    if item.context_id in self.contexts:
                        return item
                    self._unaccepted_context(item.context_id)
            elif type(item) is PDataStarted:
                # Evt10, by the table. The P-DATA indication (DT-2 in Sta6, AR-6 in Sta7) is
                # taken here without the generic effect loop: it runs once per PDU, and its
                # only effect is to deliver this PDU's chunks (the state does not change).
                if TRANSITIONS.get((self.state, Event.EVT10)) in _PDATA_INDICATIONS:
                    self._deliver = True
                else:
                    self._deliver = False
                    self._handle(Event.EVT10, self._bare)
            elif type(item) is PDataRun:
                # One Evt10 per PDU of the run. DT-2 and AR-6 leave the state as it is, so
                # one look at the table serves them all; in any other state the first one
                # ends the association (to Sta13) and Sta13 ignores the rest (AA-6).
                self._deliver = False
                if TRANSITIONS.get((self.state, Event.EVT10)) not in _PDATA_INDICATIONS:
                    self._handle(Event.EVT10, self._bare)
                elif item.context_id in self.contexts:
                    return item
                else:
                    self._unaccepted_context(item.context_id)
            elif type(item) is PduReceived:
                self._pdu_received(item)
            else:
                assert type(item) is FramingError
                self._remote_error(item.error)

    def _unaccepted_context(self, context_id: int) -> None:
        self._remote_error(
            RemoteProtocolError(
                f"PDV on presentation context {context_id}, which was not accepted",
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        )

    def data_to_send(self) -> list[bytes | memoryview]:
        """Bytes to write, in order, since the last call."""
        out = self._outgoing
        self._outgoing = []
        return out

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should be called next (``None``: no timer running)."""
        artim, idle = self._artim_deadline, self._idle_deadline
        if idle is not None and self.state not in _WAITING_ON_PEER:
            idle = None
        if artim is None:
            return idle
        return artim if idle is None else min(artim, idle)

    def restart_idle_timer(self, now: float) -> None:
        """The peer's silence until ``now`` is not its doing (we had stopped reading, e.g.
        while the disk caught up): the idle timeout counts again from ``now``."""
        self._now = now
        if self._idle_timeout is not None and self._idle_deadline is not None:
            self._idle_deadline = now + self._idle_timeout

    def handle_timer(self, now: float) -> None:
        """Fire whichever timer has expired by ``now`` (ARTIM: Evt18; idle: abort)."""
        self._now = now
        if self._artim_deadline is not None and now >= self._artim_deadline:
            self._artim_deadline = None
            self._handle(Event.EVT18, self._bare)
        elif (
            self._idle_deadline is not None
            and now >= self._idle_deadline
            and self.state in _WAITING_ON_PEER
        ):
            self._idle_deadline = None
            self._events.append(
                Aborted(
                    AbortCause.TIMEOUT,
                    AbortSource.SERVICE_USER,
                    AbortReason.NOT_SPECIFIED,
                    f"nothing received for {self._idle_timeout:g} s",
                )
            )
            self._handle(Event.EVT15, Stimulus(self.role, pdu=AAbort()))

    # --- user primitives ------------------------------------------------------------------

    def request_association(self, request: AAssociateRQ, now: float) -> None:
        """A-ASSOCIATE request (Evt1, requestor): connect, then send ``request``."""
        self._now = now
        self._check(Event.EVT1)
        self.request = request
        self._framer.set_max_pdata_length(request.user_information.maximum_length or 0)
        self._handle(Event.EVT1, self._bare)

    def accept(self, response: AAssociateAC, now: float) -> None:
        """A-ASSOCIATE response, accept (Evt7, acceptor)."""
        self._now = now
        self._check(Event.EVT7)
        assert self.request is not None
        if not response.echo and self.request.echo:
            # Bytes 11-74 of the AC repeat the request's exactly (PS3.8 Table 9-17).
            response = attrs.evolve(response, echo=self.request.echo)
        self.contexts = _agreed_contexts(self.request, response, local_error=True)
        self.response = response
        self.peer_max_length = self.request.user_information.maximum_length or 0
        self._framer.set_max_pdata_length(response.user_information.maximum_length or 0)
        self._handle(Event.EVT7, Stimulus(self.role, pdu=response))

    def reject(self, response: AAssociateRJ, now: float) -> None:
        """A-ASSOCIATE response, reject (Evt8, acceptor)."""
        self._now = now
        self._check(Event.EVT8)
        self._handle(Event.EVT8, Stimulus(self.role, pdu=response))

    @property
    def buffered(self) -> int:
        """Bytes of the incoming stream held as copies (a partial PDU or PDV header, or part
        of a non-P-DATA PDU): bounded by the framer's caps whatever the peer sends."""
        return self._framer.buffered

    @property
    def max_data_length(self) -> int:
        """The most PDV data bytes one P-DATA-TF to the peer may carry (0: no limit).

        A peer announcing a maximum length that leaves no room for data (6 or less) still
        gets 1-byte fragments: the nearest we can come to its limit while making progress.
        """
        if not self.peer_max_length:
            return 0
        return max(self.peer_max_length - PDV_HEADER_LENGTH, 1)

    def send_data(
        self,
        context_id: int,
        is_command: bool,
        is_last: bool,
        data: bytes | memoryview,
        now: float,
    ) -> None:
        """P-DATA request (Evt9): one PDV in one P-DATA-TF, ``data`` sent without a copy."""
        self._now = now
        action = TRANSITIONS.get((self.state, Event.EVT9))
        if action is None:
            self._check(Event.EVT9)  # raises, with the full explanation
        if context_id not in self.contexts:
            raise LocalProtocolError(f"presentation context {context_id} was not accepted")
        limit = self.max_data_length
        if limit and len(data) > limit:
            raise LocalProtocolError(
                f"PDV of {len(data)} bytes exceeds the peer's maximum length "
                f"({self.peer_max_length}); fragment it"
            )
        header = pdata_header(context_id, is_command, is_last, len(data))
        if self._idle_timeout is not None:
            # The peer's silence counts from our last word too: after a response it has
            # the whole idle time for its next request.
            self._idle_deadline = now + self._idle_timeout
        if action is Action.DT_1 or action is Action.AR_7:
            # By the table: send the P-DATA-TF PDU, state unchanged. Taken without the
            # generic effect loop, as on the receiving side: it runs once per PDU sent.
            self._outgoing += (header, data)
        else:
            self._handle(Event.EVT9, Stimulus(self.role, data=(header, data)))

    def release(self, now: float) -> None:
        """A-RELEASE request (Evt11)."""
        self._now = now
        self._check(Event.EVT11)
        self._handle(Event.EVT11, self._bare)

    def release_response(self, now: float) -> None:
        """A-RELEASE response (Evt14), after :class:`ReleaseRequested`."""
        self._now = now
        self._check(Event.EVT14)
        self._handle(Event.EVT14, self._bare)

    def abort(self, now: float, abort: AAbort | None = None) -> None:
        """A-ABORT request (Evt15). Does nothing once the association is already over."""
        self._now = now
        if self.state in (State.STA1, State.STA2, State.STA13):
            return
        self._handle(Event.EVT15, Stimulus(self.role, pdu=abort or AAbort()))

    # --- machinery ------------------------------------------------------------------------

    def _check(self, event: Event) -> None:
        if (self.state, event) not in TRANSITIONS:
            raise LocalProtocolError(
                f"{event.value} ({event.__doc__ or event.name}) is not allowed in "
                f"{self.state.value} ({self.state.__doc__ or ''})"
            )

    def _pdu_received(self, item: PduReceived) -> None:
        try:
            pdu: Pdu = decode_pdu(item.pdu_type, item.body)
        except RemoteProtocolError as error:
            self._remote_error(error)
            return
        event = _EVENT_OF_PDU_TYPE[PduType(item.pdu_type)]
        if event is Event.EVT3 and self.state is State.STA5:
            assert isinstance(pdu, AAssociateAC)
            assert self.request is not None
            try:
                contexts = _agreed_contexts(self.request, pdu, local_error=False)
            except RemoteProtocolError as error:
                self._remote_error(error)
                return
            self.contexts = contexts
            self.response = pdu
            self.peer_max_length = pdu.user_information.maximum_length or 0
        elif event is Event.EVT6 and self.state is State.STA2:
            assert isinstance(pdu, AAssociateRQ)
            self.request = pdu
        self._handle(event, Stimulus(self.role, pdu=pdu))

    def _remote_error(self, error: RemoteProtocolError) -> None:
        self._handle(Event.EVT19, Stimulus(self.role, error=error))

    def _handle(self, event: Event, stimulus: Stimulus) -> None:
        before = self.state
        action = TRANSITIONS.get((before, event))
        if action is None:
            if event in LOCAL_PRIMITIVES:
                raise LocalProtocolError(f"{event.value} is not allowed in {before.value}")
            return  # a blank cell for a transport event: nothing can happen (e.g. Sta1)
        transition = ACTIONS[action](stimulus)
        self.state = transition.next_state
        for effect in transition.effects:
            if effect is DeliverPData.DELIVER:
                self._deliver = True
            elif type(effect) is Send:
                self._outgoing.extend(effect.parts)
            elif type(effect) is Indicate:
                self._events.append(effect.event)
            elif effect is Timer.START_ARTIM:
                self._artim_deadline = self._now + self._artim_timeout
            elif effect is Timer.STOP_ARTIM:
                self._artim_deadline = None
            elif effect is Transport.CLOSE:
                self.close_requested = True
            elif effect is Transport.CONNECT:
                self.connect_requested = True
        if self.state is State.STA13 or self.state is State.STA1:
            self._deliver = False
        if transition.closes is not None:
            self._finished = True
            self._artim_deadline = self._idle_deadline = None
            reason = transition.closes
            if event is Event.EVT18:
                reason = f"ARTIM timer expired in {before.value}"
            elif action is Action.AA_2 and event is Event.EVT16:
                reason = "peer sent A-ABORT"
            self._events.append(ConnectionClosed(reason))


def _agreed_contexts(
    request: AAssociateRQ, response: AAssociateAC, *, local_error: bool
) -> dict[int, AcceptedContext]:
    """The accepted contexts, checking that ``response`` answers what ``request`` proposed."""
    error = LocalProtocolError if local_error else RemoteProtocolError
    proposed: dict[int, PresentationContextRQ] = {}
    for context in request.presentation_contexts:
        # A repeated ID is answered for its first proposal (negotiation.answer_contexts).
        proposed.setdefault(context.context_id, context)
    agreed: dict[int, AcceptedContext] = {}
    for answer in response.presentation_contexts:
        proposal = proposed.get(answer.context_id)
        if proposal is None:
            raise error(f"presentation context {answer.context_id} was never proposed")
        if answer.result != 0:
            continue
        if answer.transfer_syntax not in proposal.transfer_syntaxes:
            raise error(
                f"presentation context {answer.context_id} accepted with transfer syntax "
                f"{answer.transfer_syntax}, which was not proposed for it"
            )
        agreed[answer.context_id] = AcceptedContext(
            answer.context_id, proposal.abstract_syntax, answer.transfer_syntax
        )
    return agreed
