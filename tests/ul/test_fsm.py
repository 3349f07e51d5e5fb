"""PS3.8 Table 9-10, cell by cell, on a real Association.

``TABLE`` is Table 9-10 as PS3.8 §9.2.3 prints it, and ``ACTIONS`` what the action texts of
Tables 9-6 to 9-9 prescribe (next state, PDU sent, primitive indicated, ARTIM started or
stopped, transport closed), both written here from the standard, independently of
:mod:`oxidicom.ul.fsm` and :mod:`oxidicom.ul.actions`. Each (state, event) pair is then
played on an :class:`Association` brought into that state by real inputs, in both roles
wherever the role can reach the state, and what it did is checked against the cell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import attrs
import pytest
from pynetdicom.fsm import TRANSITION_TABLE as PYNETDICOM_TABLE

from oxidicom.ul.actions import ACTIONS as ACTION_FUNCTIONS
from oxidicom.ul.actions import Role
from oxidicom.ul.association import Association
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
    ReleaseConfirmed,
    ReleaseRequested,
    UserEvent,
)
from oxidicom.ul.fsm import LOCAL_PRIMITIVES, TRANSITIONS, Action, Event, State
from oxidicom.ul.items import PresentationContextAC, PresentationContextRQ, UserInformation
from oxidicom.ul.pdus import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    Pdu,
    PresentationDataValue,
    decode_pdu,
    encode_pdu,
)

TABLE = """
       Sta1 Sta2 Sta3 Sta4 Sta5 Sta6 Sta7 Sta8 Sta9 Sta10 Sta11 Sta12 Sta13
Evt1   AE-1 .    .    .    .    .    .    .    .    .     .     .     .
Evt2   .    .    .    AE-2 .    .    .    .    .    .     .     .     .
Evt3   .    AA-1 AA-8 .    AE-3 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt4   .    AA-1 AA-8 .    AE-4 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt5   AE-5 .    .    .    .    .    .    .    .    .     .     .     .
Evt6   .    AE-6 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-7
Evt7   .    .    AE-7 .    .    .    .    .    .    .     .     .     .
Evt8   .    .    AE-8 .    .    .    .    .    .    .     .     .     .
Evt9   .    .    .    .    .    DT-1 .    AR-7 .    .     .     .     .
Evt10  .    AA-1 AA-8 .    AA-8 DT-2 AR-6 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt11  .    .    .    .    .    AR-1 .    .    .    .     .     .     .
Evt12  .    AA-1 AA-8 .    AA-8 AR-2 AR-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt13  .    AA-1 AA-8 .    AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3  AA-8  AA-6
Evt14  .    .    .    .    .    .    .    AR-4 AR-9 .     .     AR-4  .
Evt15  .    .    AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1  AA-1  AA-1  .
Evt16  .    AA-2 AA-3 .    AA-3 AA-3 AA-3 AA-3 AA-3 AA-3  AA-3  AA-3  AA-2
Evt17  .    AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4  AA-4  AA-4  AR-5
Evt18  .    AA-2 .    .    .    .    .    .    .    .     .     .     AA-2
Evt19  .    AA-1 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-7
"""


def _parse_table() -> dict[tuple[str, str], str]:
    header, *rows = TABLE.strip().splitlines()
    states = header.split()
    cells: dict[tuple[str, str], str] = {}
    for row in rows:
        event, *actions = row.split()
        assert len(actions) == len(states), row
        for state, action in zip(states, actions, strict=True):
            if action != ".":
                cells[(state, event)] = action
    return cells


CELLS = _parse_table()


@attrs.frozen
class Prescribed:
    """What an action's text says: next state, PDU sent, primitive issued, ARTIM, transport."""

    state: State | None
    """``None``: AR-8, Sta9 for the association-requestor, Sta10 otherwise."""
    sends: type[Pdu] | None = None
    indicates: type[UserEvent] | None = None
    artim: str = "unchanged"
    """"start" (or restart), "stop", or "unchanged" (the action does not mention it)."""
    close: bool = False
    connect: bool = False


S = State
ACTIONS = {
    # Table 9-6
    "AE-1": Prescribed(S.STA4, connect=True),  # issue TRANSPORT CONNECT request
    "AE-2": Prescribed(S.STA5, sends=AAssociateRQ),
    "AE-3": Prescribed(S.STA6, indicates=AssociationAccepted),
    "AE-4": Prescribed(S.STA1, indicates=AssociationRejected, close=True),
    "AE-5": Prescribed(S.STA2, artim="start"),
    # AE-6 when the service-provider accepts the request; see AE_6_REJECTS for the other way
    "AE-6": Prescribed(S.STA3, indicates=AssociationRequested, artim="stop"),
    "AE-7": Prescribed(S.STA6, sends=AAssociateAC),
    "AE-8": Prescribed(S.STA13, sends=AAssociateRJ, artim="start"),
    # Table 9-7
    "DT-1": Prescribed(S.STA6, sends=PDataTF),
    "DT-2": Prescribed(S.STA6, indicates=PDataChunk),
    # Table 9-8
    "AR-1": Prescribed(S.STA7, sends=AReleaseRQ),
    "AR-2": Prescribed(S.STA8, indicates=ReleaseRequested),
    "AR-3": Prescribed(S.STA1, indicates=ReleaseConfirmed, close=True),
    "AR-4": Prescribed(S.STA13, sends=AReleaseRP, artim="start"),
    "AR-5": Prescribed(S.STA1, artim="stop"),
    "AR-6": Prescribed(S.STA7, indicates=PDataChunk),
    "AR-7": Prescribed(S.STA8, sends=PDataTF),
    "AR-8": Prescribed(None, indicates=ReleaseRequested),
    "AR-9": Prescribed(S.STA11, sends=AReleaseRP),
    "AR-10": Prescribed(S.STA12, indicates=ReleaseConfirmed),
    # Table 9-9
    "AA-1": Prescribed(S.STA13, sends=AAbort, artim="start"),  # service-user source
    "AA-2": Prescribed(S.STA1, artim="stop", close=True),
    "AA-3": Prescribed(S.STA1, indicates=Aborted, close=True),  # A-ABORT or A-P-ABORT
    "AA-4": Prescribed(S.STA1, indicates=Aborted),  # A-P-ABORT
    "AA-5": Prescribed(S.STA1, artim="stop"),
    "AA-6": Prescribed(S.STA13),  # ignore PDU
    "AA-7": Prescribed(S.STA13, sends=AAbort),
    "AA-8": Prescribed(S.STA13, sends=AAbort, indicates=Aborted, artim="start"),  # provider
}
AE_6_REJECTS = Prescribed(S.STA13, sends=AAssociateRJ, artim="start")


# --- the table itself -----------------------------------------------------------------------


def test_our_reading_of_the_standard_is_the_fsm_table() -> None:
    ours = {
        (state.value, event.value): action.value for (state, event), action in TRANSITIONS.items()
    }
    assert ours == CELLS


def test_pynetdicom_reads_the_standard_the_same_way() -> None:
    theirs = {(state, event): action for (event, state), action in PYNETDICOM_TABLE.items()}
    assert theirs == CELLS


def test_every_action_has_a_function_and_a_prescription() -> None:
    assert set(ACTION_FUNCTIONS) == set(Action)
    assert {action.value for action in Action} == set(ACTIONS)


def test_local_primitives_are_the_user_events_of_the_table() -> None:
    assert {event.value for event in LOCAL_PRIMITIVES} == {
        "Evt1", "Evt7", "Evt8", "Evt9", "Evt11", "Evt14", "Evt15",
    }  # fmt: skip


# --- bringing an association into each state ------------------------------------------------

ARTIM = 30.0
NOW = 100.0
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT = "1.2.840.10008.1.2"
REQUEST = AAssociateRQ(
    "ACCEPTOR",
    "REQUESTOR",
    (PresentationContextRQ(1, VERIFICATION, (IMPLICIT,)),),
    UserInformation(maximum_length=16384, implementation_class_uid="1.2.3"),
)
ACCEPT = AAssociateAC(
    "ACCEPTOR",
    "REQUESTOR",
    (PresentationContextAC(1, 0, IMPLICIT),),
    UserInformation(maximum_length=16384, implementation_class_uid="1.2.3.4"),
)
REJECT = AAssociateRJ(1, 1, 7)
PDATA = PDataTF((PresentationDataValue(1, True, True, b"\x01\x02"),))


def drain(association: Association) -> list[UserEvent]:
    events: list[UserEvent] = []
    while (event := association.next_event()) is not None:
        if isinstance(event, PDataChunk):
            event = event._replace(data=memoryview(bytes(event.data)))
        events.append(event)
    return events


def receive(association: Association, pdu: Pdu | bytes, now: float) -> None:
    association.receive_data(pdu if isinstance(pdu, bytes) else encode_pdu(pdu), now)


def connect(a: Association, t: float) -> None:
    a.connection_made(t)


def request(a: Association, t: float) -> None:
    a.request_association(REQUEST, t)


def gets(pdu: Pdu) -> Callable[[Association, float], None]:
    return lambda a, t: receive(a, pdu, t)


def accepts(a: Association, t: float) -> None:
    a.accept(ACCEPT, t)


def rejects(a: Association, t: float) -> None:
    a.reject(REJECT, t)


def releases(a: Association, t: float) -> None:
    a.release(t)


def responds(a: Association, t: float) -> None:
    a.release_response(t)


def aborts(a: Association, t: float) -> None:
    a.abort(t)


ACCEPTOR_STA6 = (connect, gets(REQUEST), accepts)
REQUESTOR_STA6 = (request, connect, gets(ACCEPT))

PATHS: dict[str, tuple[Role, State, tuple[Callable[[Association, float], None], ...]]] = {
    "acceptor-Sta1": (Role.ACCEPTOR, S.STA1, ()),
    "acceptor-Sta2": (Role.ACCEPTOR, S.STA2, (connect,)),
    "acceptor-Sta3": (Role.ACCEPTOR, S.STA3, (connect, gets(REQUEST))),
    "acceptor-Sta6": (Role.ACCEPTOR, S.STA6, ACCEPTOR_STA6),
    "acceptor-Sta7": (Role.ACCEPTOR, S.STA7, (*ACCEPTOR_STA6, releases)),
    "acceptor-Sta8": (Role.ACCEPTOR, S.STA8, (*ACCEPTOR_STA6, gets(AReleaseRQ()))),
    "acceptor-Sta10": (Role.ACCEPTOR, S.STA10, (*ACCEPTOR_STA6, releases, gets(AReleaseRQ()))),
    "acceptor-Sta12": (
        Role.ACCEPTOR,
        S.STA12,
        (*ACCEPTOR_STA6, releases, gets(AReleaseRQ()), gets(AReleaseRP())),
    ),
    "acceptor-Sta13-rejected": (Role.ACCEPTOR, S.STA13, (connect, gets(REQUEST), rejects)),
    "acceptor-Sta13-released": (
        Role.ACCEPTOR,
        S.STA13,
        (*ACCEPTOR_STA6, gets(AReleaseRQ()), responds),
    ),
    "requestor-Sta1": (Role.REQUESTOR, S.STA1, ()),
    "requestor-Sta4": (Role.REQUESTOR, S.STA4, (request,)),
    "requestor-Sta5": (Role.REQUESTOR, S.STA5, (request, connect)),
    "requestor-Sta6": (Role.REQUESTOR, S.STA6, REQUESTOR_STA6),
    "requestor-Sta7": (Role.REQUESTOR, S.STA7, (*REQUESTOR_STA6, releases)),
    "requestor-Sta8": (Role.REQUESTOR, S.STA8, (*REQUESTOR_STA6, gets(AReleaseRQ()))),
    "requestor-Sta9": (Role.REQUESTOR, S.STA9, (*REQUESTOR_STA6, releases, gets(AReleaseRQ()))),
    "requestor-Sta11": (
        Role.REQUESTOR,
        S.STA11,
        (*REQUESTOR_STA6, releases, gets(AReleaseRQ()), responds),
    ),
    "requestor-Sta13-aborted": (Role.REQUESTOR, S.STA13, (*REQUESTOR_STA6, aborts)),
    "requestor-Sta13-released": (
        Role.REQUESTOR,
        S.STA13,
        (*REQUESTOR_STA6, gets(AReleaseRQ()), responds),
    ),
}


def bring(path: str) -> Association:
    role, state, steps = PATHS[path]
    association = Association(role, artim_timeout=ARTIM)
    for t, step in enumerate(steps, start=1):
        step(association, float(t))
        drain(association)
        association.data_to_send()
    assert association.state is state
    return association


@pytest.mark.parametrize("path", PATHS)
def test_each_path_reaches_its_state_without_closing(path: str) -> None:
    association = bring(path)
    assert not association.close_requested


# --- the events, as real inputs ---------------------------------------------------------------


@attrs.frozen
class Stimulus:
    event: Event
    apply: Callable[[Association], None]
    roles: frozenset[Role] = frozenset(Role)
    abort_reason: int = AbortReason.UNEXPECTED_PDU
    """The reason of the A-ABORT that AA-7 or AA-8 answers this event with."""
    acceptable: bool = True
    """For Evt6: whether the service-provider accepts the request (AE-6)."""


E = Event
STIMULI = {
    "Evt1": Stimulus(E.EVT1, lambda a: a.request_association(REQUEST, NOW)),
    "Evt2": Stimulus(E.EVT2, lambda a: a.connection_made(NOW), frozenset({Role.REQUESTOR})),
    "Evt3": Stimulus(E.EVT3, lambda a: receive(a, ACCEPT, NOW)),
    "Evt4": Stimulus(E.EVT4, lambda a: receive(a, REJECT, NOW)),
    "Evt5": Stimulus(E.EVT5, lambda a: a.connection_made(NOW), frozenset({Role.ACCEPTOR})),
    "Evt6": Stimulus(E.EVT6, lambda a: receive(a, REQUEST, NOW)),
    "Evt6-version-2": Stimulus(
        E.EVT6,
        lambda a: receive(a, attrs.evolve(REQUEST, protocol_version=2), NOW),
        acceptable=False,
    ),
    "Evt7": Stimulus(E.EVT7, lambda a: a.accept(ACCEPT, NOW)),
    "Evt8": Stimulus(E.EVT8, lambda a: a.reject(REJECT, NOW)),
    "Evt9": Stimulus(E.EVT9, lambda a: a.send_data(1, True, True, b"\x01\x02", NOW)),
    "Evt10": Stimulus(E.EVT10, lambda a: receive(a, PDATA, NOW)),
    "Evt11": Stimulus(E.EVT11, lambda a: a.release(NOW)),
    "Evt12": Stimulus(E.EVT12, lambda a: receive(a, AReleaseRQ(), NOW)),
    "Evt13": Stimulus(E.EVT13, lambda a: receive(a, AReleaseRP(), NOW)),
    "Evt14": Stimulus(E.EVT14, lambda a: a.release_response(NOW)),
    "Evt15": Stimulus(E.EVT15, lambda a: a.abort(NOW)),
    "Evt16": Stimulus(E.EVT16, lambda a: receive(a, AAbort(2, 4), NOW)),
    "Evt17": Stimulus(E.EVT17, lambda a: a.receive_data(b"", NOW)),
    "Evt18": Stimulus(E.EVT18, lambda a: a.handle_timer(NOW)),
    "Evt19-unrecognized-type": Stimulus(
        E.EVT19,
        lambda a: receive(a, bytes.fromhex("080000000004") + bytes(4), NOW),
        abort_reason=AbortReason.UNRECOGNIZED_PDU,
    ),
    "Evt19-bad-fixed-length": Stimulus(
        E.EVT19,
        lambda a: receive(a, bytes.fromhex("050000000006") + bytes(6), NOW),
        abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "Evt19-undecodable": Stimulus(
        E.EVT19,
        lambda a: receive(a, bytes.fromhex("01000000000A") + bytes(10), NOW),
        abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
}

UNREACHABLE_THROUGH_THE_API = {
    # A requestor's transport confirms its own connect (Evt2); an acceptor's indicates one
    # (Evt5): neither event exists for the other role, so neither can reach these states.
    *((state, "Evt2") for state in ("Sta2", "Sta3", "Sta10", "Sta12")),
    *((state, "Evt5") for state in ("Sta4", "Sta5", "Sta9", "Sta11")),
}


def _cases() -> Iterator[tuple[str, str]]:
    for path, (role, _, _) in PATHS.items():
        for name, stimulus in STIMULI.items():
            if role in stimulus.roles:
                yield path, name


CASES = list(_cases())


def test_every_cell_is_played_but_those_no_role_can_reach() -> None:
    played = {(PATHS[path][1].value, STIMULI[name].event.value) for path, name in CASES}
    every = {(state.value, event.value) for state in State for event in Event}
    assert every - played == UNREACHABLE_THROUGH_THE_API
    assert not UNREACHABLE_THROUGH_THE_API & CELLS.keys()  # all of them blank cells


@attrs.frozen
class Observed:
    state: State
    sent: tuple[Pdu, ...]
    events: tuple[UserEvent, ...]
    timer: float | None
    close: bool
    connect: bool


def observe(association: Association) -> Observed:
    events = tuple(drain(association))
    wire = b"".join(bytes(part) for part in association.data_to_send())
    sent: list[Pdu] = []
    while wire:
        length = 6 + int.from_bytes(wire[2:6], "big")
        sent.append(decode_pdu(wire[0], wire[6:length]))
        wire = wire[length:]
    return Observed(
        association.state,
        tuple(sent),
        events,
        association.get_timer(),
        association.close_requested,
        association.connect_requested,
    )


@pytest.mark.parametrize(("path", "stimulus"), CASES, ids=[f"{p}-{s}" for p, s in CASES])
def test_cell(path: str, stimulus: str) -> None:
    association = bring(path)
    role, state, _ = PATHS[path]
    event = STIMULI[stimulus]
    before = observe(association)
    action = CELLS.get((state.value, event.event.value))
    if action is None:
        _check_blank_cell(association, event, before)
        return
    event.apply(association)
    after = observe(association)
    prescribed = ACTIONS[action]
    if action == "AE-6" and not event.acceptable:
        prescribed = AE_6_REJECTS
    _check_prescribed(role, before, after, prescribed)
    _check_details(action, role, event, after)


def _check_blank_cell(association: Association, event: Stimulus, before: Observed) -> None:
    """A blank cell cannot happen: the caller's mistake for a local primitive, nothing at all
    for an event of the transport or the peer."""
    if event.event is Event.EVT15:
        # abort() is documented as doing nothing once (or before) there is an association
        # to abort (Sta1, Sta2, Sta13), so that shutdown code can call it in any state.
        event.apply(association)
    elif event.event in LOCAL_PRIMITIVES:
        with pytest.raises(LocalProtocolError):
            event.apply(association)
    else:
        event.apply(association)
    assert observe(association) == before


def _check_prescribed(role: Role, before: Observed, after: Observed, p: Prescribed) -> None:
    expected_state = p.state or (S.STA9 if role is Role.REQUESTOR else S.STA10)
    assert after.state is expected_state
    assert tuple(type(pdu) for pdu in after.sent) == ((p.sends,) if p.sends else ())
    indicated = [type(event) for event in after.events]
    if expected_state is S.STA1:
        # Leaving for Sta1 ends the association: oxidicom says so last, with ConnectionClosed.
        assert indicated[-1:] == [ConnectionClosed]
        indicated.pop()
    assert indicated == ([p.indicates] if p.indicates else [])
    if p.artim == "start":
        assert after.timer == NOW + ARTIM
    elif p.artim == "stop":
        assert after.timer is None
    elif expected_state is not S.STA1:
        assert after.timer == before.timer
    assert (after.close and not before.close) == p.close
    assert (after.connect and not before.connect) == p.connect


def _check_details(action: str, role: Role, event: Stimulus, after: Observed) -> None:
    """The parameters the action texts fix: abort sources and reasons, collisions, data."""
    if action == "AA-1":
        assert after.sent == (AAbort(AbortSource.SERVICE_USER, 0),)
    elif action in ("AA-7", "AA-8"):
        assert after.sent == (AAbort(AbortSource.SERVICE_PROVIDER, event.abort_reason),)
    if action == "AA-8":
        (aborted,) = after.events
        assert isinstance(aborted, Aborted)
        assert (aborted.cause, aborted.source, aborted.reason) == (
            AbortCause.PROTOCOL_ERROR,
            AbortSource.SERVICE_PROVIDER,
            event.abort_reason,
        )
    elif action == "AA-3":
        assert after.events[0] == Aborted(AbortCause.PEER_ABORT, 2, 4, "peer sent A-ABORT")
    elif action == "AA-4":
        aborted = after.events[0]
        assert isinstance(aborted, Aborted)
        assert aborted.cause is AbortCause.CONNECTION_LOST
        assert aborted.source == AbortSource.SERVICE_PROVIDER
    elif action in ("AR-2", "AR-8"):
        assert after.events == (ReleaseRequested(collision=action == "AR-8"),)
    elif action in ("DT-2", "AR-6"):
        assert after.events == (PDataChunk(1, True, True, memoryview(b"\x01\x02")),)
    elif action in ("DT-1", "AR-7"):
        assert after.sent == (PDATA,)
    elif action == "AE-2":
        assert after.sent == (REQUEST,)
    elif action == "AE-3":
        assert after.events == (AssociationAccepted(ACCEPT),)
    elif action == "AE-4":
        assert after.events[0] == AssociationRejected(REJECT)
    elif action == "AE-6" and event.acceptable:
        assert after.events == (AssociationRequested(REQUEST),)
    elif action == "AE-6":
        assert after.sent == (AAssociateRJ(1, 2, 2),)  # rejected-permanent, ACSE, version
    elif action == "AE-7":
        assert after.sent == (ACCEPT,)
    elif action == "AE-8":
        assert after.sent == (REJECT,)
