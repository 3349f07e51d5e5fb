"""Association: whole conversations between a requestor and an acceptor, timers, and the
checks around the state table (contexts, maximum lengths, what happens after the end)."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import event as event_note
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from oxidicom.ul.actions import Role
from oxidicom.ul.association import AcceptedContext, Association
from oxidicom.ul.constants import AbortReason, AbortSource
from oxidicom.ul.errors import LocalProtocolError
from oxidicom.ul.events import (
    AbortCause,
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    AssociationRequested,
    ConnectionClosed,
    PDataChunk,
    PDataRun,
    ReleaseConfirmed,
    ReleaseRequested,
    UserEvent,
)
from oxidicom.ul.fsm import State
from oxidicom.ul.items import PresentationContextAC, PresentationContextRQ, UserInformation
from oxidicom.ul.negotiation import AcceptorPolicy, negotiate
from oxidicom.ul.pdus import (
    AAbort,
    AAssociateAC,
    AAssociateRQ,
    PDataTF,
    Pdu,
    PresentationDataValue,
    decode_pdu,
    encode_pdu,
)

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
JPEG = "1.2.840.10008.1.2.4.50"
SYNTAXES = (IMPLICIT, EXPLICIT, JPEG)


def drain(association: Association) -> list[UserEvent]:
    events: list[UserEvent] = []
    while (event := association.next_event()) is not None:
        if isinstance(event, PDataChunk):
            event = event._replace(data=memoryview(bytes(event.data)))
        events.append(event)
    return events


def expand(run: PDataRun) -> list[PDataChunk]:
    """The PDataChunk events the run stands for: one whole data set PDV per chunk."""
    last = len(run.chunks) - 1
    return [
        PDataChunk(run.context_id, False, run.is_last and i == last, memoryview(bytes(chunk)))
        for i, chunk in enumerate(run.chunks)
    ]


def sent_pdus(association: Association) -> list[Pdu]:
    wire = b"".join(bytes(part) for part in association.data_to_send())
    pdus: list[Pdu] = []
    while wire:
        end = 6 + int.from_bytes(wire[2:6], "big")
        pdus.append(decode_pdu(wire[0], wire[6:end]))
        wire = wire[end:]
    return pdus


# --- two associations talking ---------------------------------------------------------------


@attrs.define
class Side:
    association: Association
    sent: list[PresentationDataValue] = attrs.Factory(list)
    received: list[PDataChunk] = attrs.Factory(list)
    events: list[UserEvent] = attrs.Factory(list)
    release_pending: bool = False
    """The user owes an A-RELEASE response (Sta8, Sta9, Sta12)."""


REQUESTOR, ACCEPTOR = "requestor", "acceptor"
PEER = {REQUESTOR: ACCEPTOR, ACCEPTOR: REQUESTOR}
QUIESCENT_PAIRS = {
    # (requestor, acceptor) once nothing is in flight: the only ways two conforming
    # implementations can be waiting on each other.
    (State.STA6, State.STA6),
    (State.STA7, State.STA8),
    (State.STA8, State.STA7),
    (State.STA9, State.STA10),  # release collision: the requestor answers first
    (State.STA11, State.STA12),
    (State.STA1, State.STA1),
}

_CONTEXTS = st.lists(
    st.builds(
        PresentationContextRQ,
        st.integers(0, 20).map(lambda n: 2 * n + 1),
        st.sampled_from([VERIFICATION, CT]),
        st.lists(st.sampled_from(SYNTAXES), min_size=1, max_size=3).map(tuple),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda context: context.context_id,
).map(tuple)
_MAX_LENGTHS = st.one_of(st.just(0), st.integers(7, 4096))


def check_prefix(sent: list[PresentationDataValue], received: list[PDataChunk]) -> int:
    """Received pieces, joined per PDV, are the sent PDVs in order (the last one possibly
    still partial); returns how many PDVs arrived whole."""
    pieces = iter(received)
    for whole, pdv in enumerate(sent):
        data = b""
        for piece in pieces:
            assert (piece.context_id, piece.is_command) == (pdv.context_id, pdv.is_command)
            data += bytes(piece.data)
            assert pdv.data.startswith(data)
            if len(data) == len(pdv.data):
                assert piece.is_last == pdv.is_last
                break
            assert not piece.is_last
        else:
            return whole
    assert next(pieces, None) is None
    return len(sent)


class Conversation(RuleBasedStateMachine):
    """A requestor and an acceptor joined by an in-memory TCP connection: bytes are in flight
    until a rule delivers them, in pieces of any size; both users follow PS3.8."""

    coalesce_data = False
    """Whether both sides take data set PDVs of consecutive PDUs as PDataRun events."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.sides = {
            REQUESTOR: Side(Association(Role.REQUESTOR, coalesce_data=self.coalesce_data)),
            ACCEPTOR: Side(Association(Role.ACCEPTOR, coalesce_data=self.coalesce_data)),
        }
        self.in_flight = {REQUESTOR: bytearray(), ACCEPTOR: bytearray()}
        """Bytes on their way *to* each side."""
        self.eof_to: set[str] = set()
        self.closed_by: str | None = None
        self.user_aborted = False
        self.policy: AcceptorPolicy | None = None

    # --- plumbing ------------------------------------------------------------------------

    def tick(self) -> float:
        self.now += 0.01
        return self.now

    def pump(self, name: str) -> None:
        """Hand the side's events to its user (who answers what it must at once), then put
        what it sends in flight."""
        side = self.sides[name]
        association = side.association
        while (event := association.next_event()) is not None:
            if isinstance(event, PDataChunk):
                side.received.append(event._replace(data=memoryview(bytes(event.data))))
                continue
            if isinstance(event, PDataRun):
                assert self.coalesce_data
                side.received += expand(event)
                continue
            side.events.append(event)
            if isinstance(event, AssociationRequested):
                assert self.policy is not None
                answer = negotiate(event.request, self.policy)
                if isinstance(answer, AAssociateAC):
                    association.accept(answer, self.tick())
                else:
                    association.reject(answer, self.tick())
            elif isinstance(event, ReleaseRequested):
                event_note("release collision" if event.collision else f"{PEER[name]} released")
                # In a collision the acceptor (Sta10) answers only after its confirmation.
                side.release_pending = association.state is not State.STA10
                assert event.collision == (association.state in (State.STA9, State.STA10))
            elif isinstance(event, ReleaseConfirmed):
                side.release_pending = association.state is State.STA12
        # An abort from the peer may follow its release request: then nothing is owed.
        side.release_pending &= association.state in (State.STA8, State.STA9, State.STA12)
        peer = PEER[name]
        for part in association.data_to_send():
            if self.closed_by is None:
                self.in_flight[peer] += part
        if association.close_requested and self.closed_by is None:
            self.closed_by = name
            self.in_flight[name].clear()  # what was on its way to the closer is lost
            self.eof_to.add(peer)
            association.receive_data(b"", self.tick())
            assert association.next_event() is None  # already over: nothing more to say

    def deliver(self, name: str, size: int) -> None:
        if self.closed_by == name:
            return
        pipe = self.in_flight[name]
        association = self.sides[name].association
        if pipe:
            piece = bytes(pipe[:size])
            del pipe[:size]
            association.receive_data(piece, self.tick())
        elif name in self.eof_to:
            self.eof_to.discard(name)
            association.receive_data(b"", self.tick())
        self.pump(name)

    def quiet(self) -> bool:
        return not any(self.in_flight.values()) and not self.eof_to

    def settle(self) -> None:
        while not self.quiet():
            for name in (REQUESTOR, ACCEPTOR):
                self.deliver(name, 1 << 20)

    def state(self, name: str) -> State:
        return self.sides[name].association.state

    # --- rules ---------------------------------------------------------------------------

    @initialize(
        contexts=_CONTEXTS,
        accepted=st.lists(st.sampled_from(SYNTAXES), min_size=1, max_size=3),
        requestor_max=_MAX_LENGTHS,
        acceptor_max=_MAX_LENGTHS,
        rejected=st.sampled_from([False, False, False, True]),
    )
    def associate(
        self,
        contexts: tuple[PresentationContextRQ, ...],
        accepted: list[str],
        requestor_max: int,
        acceptor_max: int,
        rejected: bool,
    ) -> None:
        self.policy = AcceptorPolicy(
            ae_title="ACCEPTOR",
            transfer_syntaxes=accepted,
            abstract_syntaxes=None,
            implementation_class_uid="1.2.3.4",
            max_length_received=acceptor_max,
            calling_ae_titles=["SOMEONE-ELSE"] if rejected else None,
        )
        request = AAssociateRQ(
            "ACCEPTOR",
            "REQUESTOR",
            contexts,
            UserInformation(maximum_length=requestor_max, implementation_class_uid="1.2.3"),
        )
        self.sides[REQUESTOR].association.request_association(request, self.tick())
        assert self.sides[REQUESTOR].association.connect_requested
        self.sides[ACCEPTOR].association.connection_made(self.tick())
        self.sides[REQUESTOR].association.connection_made(self.tick())
        self.pump(REQUESTOR)
        self.settle()
        requestor_events = self.sides[REQUESTOR].events
        event_note("rejected" if rejected else "accepted")
        if rejected:
            assert isinstance(requestor_events[0], AssociationRejected)
            assert (self.state(REQUESTOR), self.state(ACCEPTOR)) == (State.STA1, State.STA1)
        else:
            assert isinstance(requestor_events[0], AssociationAccepted)
            agreed = self.sides[ACCEPTOR].association.contexts
            assert self.sides[REQUESTOR].association.contexts == agreed
            assert all(c.transfer_syntax in accepted for c in agreed.values())

    @rule(name=st.sampled_from([REQUESTOR, ACCEPTOR]), size=st.integers(1, 3000))
    def deliver_bytes(self, name: str, size: int) -> None:
        self.deliver(name, size)

    def _sending_context(self, name: str, data: st.DataObject) -> int | None:
        """A context the side may send P-DATA on now, or None."""
        association = self.sides[name].association
        if association.state not in (State.STA6, State.STA8) or not association.contexts:
            return None
        return data.draw(st.sampled_from(sorted(association.contexts)))

    @rule(name=st.sampled_from([REQUESTOR, ACCEPTOR]), data=st.data())
    def send(self, name: str, data: st.DataObject) -> None:
        context_id = self._sending_context(name, data)
        if context_id is None:
            return
        association = self.sides[name].association
        limit = association.max_data_length or 3000
        payload = data.draw(st.binary(max_size=min(limit, 3000)))
        is_command, is_last = data.draw(st.booleans()), data.draw(st.booleans())
        association.send_data(context_id, is_command, is_last, payload, self.tick())
        event_note(f"{name} sent data")
        self.sides[name].sent.append(
            PresentationDataValue(context_id, is_command, is_last, payload)
        )
        self.pump(name)

    @rule(name=st.sampled_from([REQUESTOR, ACCEPTOR]), data=st.data())
    def send_data_set(self, name: str, data: st.DataObject) -> None:
        """Several data set fragments on one context, one PDU each, as DIMSE sends them."""
        context_id = self._sending_context(name, data)
        if context_id is None:
            return
        association = self.sides[name].association
        limit = min(association.max_data_length or 300, 300)
        fragments = data.draw(st.lists(st.binary(max_size=limit), min_size=2, max_size=6))
        ends = data.draw(st.booleans())
        for number, payload in enumerate(fragments, 1):
            is_last = ends and number == len(fragments)
            association.send_data(context_id, False, is_last, payload, self.tick())
            self.sides[name].sent.append(PresentationDataValue(context_id, False, is_last, payload))
        event_note(f"{name} sent a data set")
        self.pump(name)

    @rule(name=st.sampled_from([REQUESTOR, ACCEPTOR]), roll=st.integers(0, 2))
    def release(self, name: str, roll: int = 0) -> None:
        association = self.sides[name].association
        if roll == 0 and association.state is State.STA6:
            association.release(self.tick())
            self.pump(name)

    @rule(name=st.sampled_from([REQUESTOR, ACCEPTOR]))
    def respond_to_release(self, name: str) -> None:
        side = self.sides[name]
        if side.release_pending:
            side.release_pending = False
            side.association.release_response(self.tick())
            self.pump(name)

    @rule(name=st.sampled_from([REQUESTOR, ACCEPTOR]), roll=st.integers(0, 7))
    def abort(self, name: str, roll: int) -> None:
        association = self.sides[name].association
        if (
            roll == 0
            and not self.user_aborted
            and association.state
            not in (
                State.STA1,
                State.STA13,
            )
        ):
            event_note(f"{name} aborted")
            self.user_aborted = True
            association.abort(self.tick())
            self.pump(name)

    # --- what must always hold -----------------------------------------------------------

    @invariant()
    def nothing_goes_wrong_between_conforming_peers(self) -> None:
        for side in self.sides.values():
            for event in side.events:
                if isinstance(event, Aborted):
                    assert self.user_aborted
                    assert event.cause is AbortCause.PEER_ABORT

    @invariant()
    def data_arrives_in_order_and_intact(self) -> None:
        check_prefix(self.sides[REQUESTOR].sent, self.sides[ACCEPTOR].received)
        check_prefix(self.sides[ACCEPTOR].sent, self.sides[REQUESTOR].received)

    @invariant()
    def both_sides_agree_once_nothing_is_in_flight(self) -> None:
        if self.quiet():
            assert (self.state(REQUESTOR), self.state(ACCEPTOR)) in QUIESCENT_PAIRS

    def teardown(self) -> None:
        """Finish the conversation as conforming users would; it must end cleanly."""
        if self.policy is None:
            return
        for _ in range(10):
            self.settle()
            for name, side in self.sides.items():
                if side.release_pending:
                    self.respond_to_release(name)
            if self.state(REQUESTOR) is State.STA6:
                self.release(REQUESTOR)
            if self.quiet() and not any(s.release_pending for s in self.sides.values()):
                break
        for side in self.sides.values():
            assert side.association.state is State.STA1
            assert isinstance(side.events[-1], ConnectionClosed)
            assert side.association.next_event() is None
        if not self.user_aborted:
            for name, side in self.sides.items():
                peer = self.sides[PEER[name]]
                assert check_prefix(side.sent, peer.received) == len(side.sent)


TestConversation = Conversation.TestCase
TestConversation.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)


class CoalescedConversation(Conversation):
    coalesce_data = True


TestCoalescedConversation = CoalescedConversation.TestCase
TestCoalescedConversation.settings = TestConversation.settings


# --- timers ---------------------------------------------------------------------------------

REQUEST = AAssociateRQ(
    "ACCEPTOR",
    "REQUESTOR",
    (PresentationContextRQ(1, VERIFICATION, (IMPLICIT,)), PresentationContextRQ(3, CT, (JPEG,))),
    UserInformation(maximum_length=100, implementation_class_uid="1.2.3"),
)
ACCEPT = AAssociateAC(
    "ACCEPTOR",
    "REQUESTOR",
    (PresentationContextAC(1, 0, IMPLICIT), PresentationContextAC(3, 3, "")),
    UserInformation(maximum_length=200, implementation_class_uid="1.2.3.4"),
)


def established_acceptor(
    *,
    idle_timeout: float | None = None,
    artim_timeout: float = 30.0,
    strict: bool = False,
    coalesce_data: bool = False,
) -> Association:
    association = Association(
        Role.ACCEPTOR,
        idle_timeout=idle_timeout,
        artim_timeout=artim_timeout,
        strict_max_length=strict,
        coalesce_data=coalesce_data,
    )
    association.connection_made(0.0)
    association.receive_data(encode_pdu(REQUEST), 1.0)
    drain(association)
    association.accept(ACCEPT, 2.0)
    association.data_to_send()
    return association


def test_artim_closes_a_connection_that_never_requests() -> None:
    association = Association(Role.ACCEPTOR, artim_timeout=5.0)
    association.connection_made(10.0)
    assert association.get_timer() == 15.0
    association.handle_timer(14.9)
    assert association.state is State.STA2
    association.handle_timer(15.0)
    assert association.close_requested
    assert drain(association) == [ConnectionClosed("ARTIM timer expired in Sta2")]
    assert association.data_to_send() == []
    assert association.get_timer() is None


def test_the_idle_timeout_aborts_when_the_peer_says_nothing() -> None:
    association = established_acceptor(idle_timeout=60.0, artim_timeout=5.0)
    assert association.get_timer() == 61.0  # from the last bytes received, at 1.0
    association.handle_timer(61.0)
    events = drain(association)
    assert events[0] == Aborted(
        AbortCause.TIMEOUT, AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED,
        "nothing received for 60 s",
    )  # fmt: skip
    assert sent_pdus(association) == [AAbort(0, 0)]
    assert association.state is State.STA13
    assert association.get_timer() == 66.0  # ARTIM, waiting for the peer to close
    association.handle_timer(66.0)
    assert association.close_requested
    assert isinstance(drain(association)[-1], ConnectionClosed)


def test_the_idle_timeout_restarts_with_every_read() -> None:
    association = established_acceptor(idle_timeout=60.0)
    association.receive_data(encode_pdu(PDataTF((PresentationDataValue(1, True, False, b""),))), 50)
    drain(association)
    assert association.get_timer() == 110.0


def test_the_idle_timeout_counts_from_our_last_pdata_too() -> None:
    # The peer waits for our response: its silence until then is not idleness.
    association = established_acceptor(idle_timeout=60.0)
    association.send_data(1, True, True, b"response", 100.0)
    assert association.get_timer() == 160.0


def test_restarting_the_idle_timer_forgives_the_silence_so_far() -> None:
    # The receiver had stopped reading (its disk lagged): nothing came because we did not ask.
    association = established_acceptor(idle_timeout=60.0)
    association.restart_idle_timer(61.0)
    assert association.get_timer() == 121.0
    association.handle_timer(61.0)
    assert association.state is State.STA6


def test_the_idle_timeout_does_not_run_while_it_is_our_turn() -> None:
    association = Association(Role.ACCEPTOR, idle_timeout=60.0)
    association.connection_made(0.0)
    association.receive_data(encode_pdu(REQUEST), 1.0)
    drain(association)
    assert association.state is State.STA3  # our user has to answer
    assert association.get_timer() is None
    association.handle_timer(1000.0)
    assert association.state is State.STA3


# --- contexts and lengths -------------------------------------------------------------------


def test_accepting_records_the_agreed_contexts_and_lengths() -> None:
    association = established_acceptor()
    assert association.contexts == {1: AcceptedContext(1, VERIFICATION, IMPLICIT)}
    assert association.peer_max_length == 100
    assert association.max_data_length == 94


@pytest.mark.parametrize(
    "answer",
    [
        PresentationContextAC(5, 0, IMPLICIT),  # never proposed
        PresentationContextAC(1, 0, EXPLICIT),  # transfer syntax not proposed for it
    ],
)
def test_accepting_what_was_not_proposed_is_a_local_error(answer: PresentationContextAC) -> None:
    association = Association(Role.ACCEPTOR)
    association.connection_made(0.0)
    association.receive_data(encode_pdu(REQUEST), 1.0)
    drain(association)
    with pytest.raises(LocalProtocolError):
        association.accept(attrs.evolve(ACCEPT, presentation_contexts=(answer,)), 2.0)
    assert association.state is State.STA3


@pytest.mark.parametrize(
    "answer",
    [PresentationContextAC(5, 0, IMPLICIT), PresentationContextAC(1, 0, EXPLICIT)],
)
def test_an_accept_answering_what_was_not_proposed_is_aborted(
    answer: PresentationContextAC,
) -> None:
    association = Association(Role.REQUESTOR)
    association.request_association(REQUEST, 0.0)
    association.connection_made(0.0)
    association.data_to_send()
    accept = attrs.evolve(ACCEPT, presentation_contexts=(answer,))
    association.receive_data(encode_pdu(accept), 1.0)
    (aborted, *_) = drain(association)
    assert isinstance(aborted, Aborted)
    assert aborted.cause is AbortCause.PROTOCOL_ERROR
    assert sent_pdus(association) == [AAbort(2, AbortReason.INVALID_PDU_PARAMETER_VALUE)]
    assert association.contexts == {}


def test_data_on_a_context_not_accepted_aborts_and_drops_the_rest() -> None:
    association = established_acceptor()
    pdata = PDataTF(
        (PresentationDataValue(3, True, True, b"xx"), PresentationDataValue(1, True, True, b"y"))
    )
    association.receive_data(encode_pdu(pdata), 3.0)
    events = drain(association)
    assert len(events) == 1
    assert isinstance(events[0], Aborted)
    assert events[0].reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    assert sent_pdus(association) == [AAbort(2, AbortReason.INVALID_PDU_PARAMETER_VALUE)]


def test_sending_on_a_context_not_accepted_is_a_local_error() -> None:
    association = established_acceptor()
    with pytest.raises(LocalProtocolError, match="not accepted"):
        association.send_data(3, True, True, b"", 3.0)


def test_a_pdv_must_fit_the_peers_maximum_length() -> None:
    association = established_acceptor()
    association.send_data(1, False, True, bytes(94), 3.0)
    with pytest.raises(LocalProtocolError, match="fragment it"):
        association.send_data(1, False, True, bytes(95), 3.0)


def test_data_is_sent_without_a_copy() -> None:
    association = established_acceptor()
    payload = memoryview(b"abc")
    association.send_data(1, False, True, payload, 3.0)
    header, body = association.data_to_send()
    assert body is payload
    assert bytes(header) + body == encode_pdu(
        PDataTF((PresentationDataValue(1, False, True, b"abc"),))
    )


@pytest.mark.parametrize("peer_max", [1, 6, 7])
def test_a_peer_maximum_leaving_no_room_still_allows_one_byte(peer_max: int) -> None:
    association = Association(Role.ACCEPTOR)
    association.connection_made(0.0)
    request = attrs.evolve(REQUEST, user_information=UserInformation(maximum_length=peer_max))
    association.receive_data(encode_pdu(request), 1.0)
    drain(association)
    association.accept(ACCEPT, 2.0)
    assert association.max_data_length == 1
    association.send_data(1, True, True, b"x", 3.0)


def test_strict_mode_aborts_on_pdata_beyond_our_maximum() -> None:
    association = established_acceptor(strict=True)
    too_long = PDataTF((PresentationDataValue(1, False, True, bytes(195)),))
    association.receive_data(encode_pdu(too_long), 3.0)
    (aborted,) = drain(association)
    assert isinstance(aborted, Aborted)
    assert sent_pdus(association) == [AAbort(2, AbortReason.INVALID_PDU_PARAMETER_VALUE)]


def test_lenient_mode_accepts_pdata_beyond_our_maximum() -> None:
    association = established_acceptor()
    too_long = PDataTF((PresentationDataValue(1, False, True, bytes(195)),))
    association.receive_data(encode_pdu(too_long), 3.0)
    (chunk,) = drain(association)
    assert isinstance(chunk, PDataChunk)
    assert len(chunk.data) == 195


# --- the end --------------------------------------------------------------------------------


def test_nothing_happens_after_the_connection_closed() -> None:
    association = established_acceptor()
    association.receive_data(b"", 3.0)
    assert isinstance(drain(association)[-1], ConnectionClosed)
    association.receive_data(encode_pdu(REQUEST), 4.0)
    association.receive_data(b"", 5.0)
    association.handle_timer(1e9)
    assert association.next_event() is None
    assert association.data_to_send() == []
    assert association.state is State.STA1


def test_abort_is_a_no_op_once_the_association_is_over() -> None:
    association = established_acceptor()
    association.abort(3.0)
    sent_pdus(association)
    association.abort(4.0)
    assert association.data_to_send() == []
    assert association.state is State.STA13


def test_end_of_stream_inside_a_pdu_is_a_lost_connection() -> None:
    association = established_acceptor()
    association.receive_data(
        encode_pdu(PDataTF((PresentationDataValue(1, True, True, b"ab"),)))[:9], 3.0
    )
    assert drain(association) == []
    assert association.buffered == 3  # of the PDV header
    association.receive_data(b"", 4.0)
    events = drain(association)
    assert isinstance(events[0], Aborted)
    assert events[0].cause is AbortCause.CONNECTION_LOST
    assert isinstance(events[-1], ConnectionClosed)


def test_buffered_counts_a_partial_pdu_and_nothing_of_streamed_data() -> None:
    association = established_acceptor()
    association.receive_data(encode_pdu(REQUEST)[:40], 3.0)
    drain(association)
    assert association.buffered == 34  # 6 header bytes taken, 34 of the body held
    fresh = established_acceptor()
    fresh.receive_data(
        encode_pdu(PDataTF((PresentationDataValue(1, True, False, bytes(50)),)))[:40], 3
    )
    drain(fresh)
    assert fresh.buffered == 0


# --- data set PDVs of several PDUs at once (coalesce_data) ---------------------------------


def data_pdus(*pdvs: tuple[int, bool, bytes]) -> bytes:
    """One P-DATA-TF per (context, is_last, data): a data set PDV filling it."""
    return b"".join(
        encode_pdu(PDataTF((PresentationDataValue(context, False, last, data),)))
        for context, last, data in pdvs
    )


def test_whole_data_pdus_in_one_read_come_as_one_run() -> None:
    association = established_acceptor(coalesce_data=True)
    wire = data_pdus((1, False, b"ab"), (1, False, b"cd"), (1, True, b"ef"))
    association.receive_data(wire, 3.0)
    (run,) = [association.next_event()]
    assert isinstance(run, PDataRun)
    assert (run.context_id, run.is_last) == (1, True)
    assert [bytes(chunk) for chunk in run.chunks] == [b"ab", b"cd", b"ef"]
    assert all(chunk.obj is wire for chunk in run.chunks)  # views, no copies
    assert association.next_event() is None
    assert association.state is State.STA6


def test_a_run_on_a_context_not_accepted_aborts() -> None:
    association = established_acceptor(coalesce_data=True)
    association.receive_data(data_pdus((3, False, b"ab"), (3, True, b"cd")), 3.0)
    events = drain(association)
    assert isinstance(events[0], Aborted)
    assert events[0].reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    assert sent_pdus(association) == [AAbort(2, AbortReason.INVALID_PDU_PARAMETER_VALUE)]


def test_a_run_before_the_association_is_accepted_aborts_like_any_pdata() -> None:
    association = Association(Role.ACCEPTOR, coalesce_data=True)
    association.connection_made(0.0)
    association.receive_data(encode_pdu(REQUEST), 1.0)
    drain(association)  # Sta3: the user has not answered yet
    association.receive_data(data_pdus((1, False, b"ab"), (1, True, b"cd")), 2.0)
    events = drain(association)
    assert isinstance(events[0], Aborted)  # Evt10 in Sta3: AA-8
    assert association.state is State.STA13
