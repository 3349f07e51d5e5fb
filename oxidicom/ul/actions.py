"""The actions of PS3.8 Tables 9-6 to 9-9, as pure functions.

An action gets a :class:`Stimulus` (the event's PDU or error, and our role) and returns a
:class:`Transition`: the next state and the effects for the association to carry out, in
order. Nothing here performs I/O or reads a clock; ``ACTIONS`` maps each
:class:`~oxidicom.ul.fsm.Action` of the table to its function.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Final, TypeAlias

import attrs

from oxidicom.ul.constants import (
    REASON_ACSE_PROTOCOL_VERSION,
    AbortReason,
    AbortSource,
    RejectResult,
    RejectSource,
)
from oxidicom.ul.errors import RemoteProtocolError
from oxidicom.ul.events import (
    AbortCause,
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    AssociationRequested,
    ReleaseConfirmed,
    ReleaseRequested,
    UserEvent,
)
from oxidicom.ul.fsm import Action, State
from oxidicom.ul.pdus import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    Pdu,
    encode_pdu,
)


class Role(enum.Enum):
    REQUESTOR = "requestor"
    """Opens the connection and proposes the association (an SCU, usually)."""
    ACCEPTOR = "acceptor"
    """Listens and answers (the receiver)."""


# --- effects ----------------------------------------------------------------------------


@attrs.frozen
class Send:
    """Put these bytes on the transport, in order."""

    parts: tuple[bytes | memoryview, ...]


@attrs.frozen
class Indicate:
    """Hand this event to the local user."""

    event: UserEvent


class Timer(enum.Enum):
    START_ARTIM = "start ARTIM"
    """Start, or restart, the Association Request/Reject/Release timer."""
    STOP_ARTIM = "stop ARTIM"


class Transport(enum.Enum):
    CONNECT = "connect"
    """Issue the TRANSPORT CONNECT request (requestor, AE-1)."""
    CLOSE = "close"
    """Close the transport connection."""


class DeliverPData(enum.Enum):
    """Hand the P-DATA-TF being received to the user, chunk by chunk (DT-2, AR-6).

    Without this effect its PDVs are read and dropped (AA-6, or after an abort).
    """

    DELIVER = "deliver"


Effect: TypeAlias = Send | Indicate | Timer | Transport | DeliverPData


@attrs.frozen
class Transition:
    next_state: State
    effects: tuple[Effect, ...] = ()
    closes: str | None = None
    """Set by actions that end in Sta1: how the connection ended, for the user's log."""


@attrs.frozen
class Stimulus:
    """What an action may look at, besides the event itself."""

    role: Role
    pdu: Pdu | None = None
    """The PDU received (Evt3, 4, 6, 12, 13, 16) or to send (Evt2, 7, 8, 15)."""
    data: tuple[bytes | memoryview, ...] = ()
    """Encoded P-DATA-TF parts to send (Evt9)."""
    error: RemoteProtocolError | None = None
    """Why the PDU was unrecognized or invalid (Evt19), or unexpected (set by the caller)."""


ActionFunction: TypeAlias = Callable[[Stimulus], Transition]


def _send(pdu: Pdu) -> Send:
    return Send((encode_pdu(pdu),))


def _provider_abort_reason(stimulus: Stimulus) -> tuple[int, str]:
    """A-ABORT reason and detail when the provider aborts because of a received PDU."""
    if stimulus.error is not None:
        return stimulus.error.reason, str(stimulus.error)
    pdu_name = type(stimulus.pdu).__name__ if stimulus.pdu is not None else "PDU"
    return AbortReason.UNEXPECTED_PDU, f"unexpected {pdu_name} in this state"


# --- association establishment (Table 9-6) ----------------------------------------------


def ae_1(stimulus: Stimulus) -> Transition:
    """Issue TRANSPORT CONNECT request primitive to local transport service."""
    return Transition(State.STA4, (Transport.CONNECT,))


def ae_2(stimulus: Stimulus) -> Transition:
    """Send A-ASSOCIATE-RQ PDU."""
    assert isinstance(stimulus.pdu, AAssociateRQ)
    return Transition(State.STA5, (_send(stimulus.pdu),))


def ae_3(stimulus: Stimulus) -> Transition:
    """Issue A-ASSOCIATE confirmation (accept) primitive."""
    assert isinstance(stimulus.pdu, AAssociateAC)
    return Transition(State.STA6, (Indicate(AssociationAccepted(stimulus.pdu)),))


def ae_4(stimulus: Stimulus) -> Transition:
    """Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection."""
    assert isinstance(stimulus.pdu, AAssociateRJ)
    return Transition(
        State.STA1,
        (Indicate(AssociationRejected(stimulus.pdu)), Transport.CLOSE),
        closes="association rejected by the peer",
    )


def ae_5(stimulus: Stimulus) -> Transition:
    """Issue transport connection response primitive; start ARTIM timer."""
    return Transition(State.STA2, (Timer.START_ARTIM,))


def ae_6(stimulus: Stimulus) -> Transition:
    """Stop ARTIM; indicate A-ASSOCIATE if the service-provider accepts the request, else send
    A-ASSOCIATE-RJ and start ARTIM.

    The only provider-level condition PS3.8 names is the protocol version (§9.3.2: bit 0).
    """
    request = stimulus.pdu
    assert isinstance(request, AAssociateRQ)
    if request.protocol_version & 1:
        return Transition(State.STA3, (Timer.STOP_ARTIM, Indicate(AssociationRequested(request))))
    reject = AAssociateRJ(
        RejectResult.REJECTED_PERMANENT,
        RejectSource.SERVICE_PROVIDER_ACSE,
        REASON_ACSE_PROTOCOL_VERSION,
    )
    return Transition(State.STA13, (Timer.STOP_ARTIM, _send(reject), Timer.START_ARTIM))


def ae_7(stimulus: Stimulus) -> Transition:
    """Send A-ASSOCIATE-AC PDU."""
    assert isinstance(stimulus.pdu, AAssociateAC)
    return Transition(State.STA6, (_send(stimulus.pdu),))


def ae_8(stimulus: Stimulus) -> Transition:
    """Send A-ASSOCIATE-RJ PDU and start ARTIM timer."""
    assert isinstance(stimulus.pdu, AAssociateRJ)
    return Transition(State.STA13, (_send(stimulus.pdu), Timer.START_ARTIM))


# --- data transfer (Table 9-7) -----------------------------------------------------------

_DT_2: Final = Transition(State.STA6, (DeliverPData.DELIVER,))
_AR_6: Final = Transition(State.STA7, (DeliverPData.DELIVER,))


def dt_1(stimulus: Stimulus) -> Transition:
    """Send P-DATA-TF PDU."""
    return Transition(State.STA6, (Send(stimulus.data),))


def dt_2(stimulus: Stimulus) -> Transition:
    """Send P-DATA indication primitive."""
    return _DT_2


# --- association release (Table 9-8) ----------------------------------------------------


def ar_1(stimulus: Stimulus) -> Transition:
    """Send A-RELEASE-RQ PDU."""
    return Transition(State.STA7, (_send(AReleaseRQ()),))


def ar_2(stimulus: Stimulus) -> Transition:
    """Issue A-RELEASE indication primitive."""
    return Transition(State.STA8, (Indicate(ReleaseRequested()),))


def ar_3(stimulus: Stimulus) -> Transition:
    """Issue A-RELEASE confirmation primitive, and close transport connection."""
    return Transition(
        State.STA1, (Indicate(ReleaseConfirmed()), Transport.CLOSE), closes="released"
    )


def ar_4(stimulus: Stimulus) -> Transition:
    """Issue A-RELEASE-RP PDU and start ARTIM timer."""
    return Transition(State.STA13, (_send(AReleaseRP()), Timer.START_ARTIM))


def ar_5(stimulus: Stimulus) -> Transition:
    """Stop ARTIM timer."""
    return Transition(State.STA1, (Timer.STOP_ARTIM,), closes="connection closed")


def ar_6(stimulus: Stimulus) -> Transition:
    """Issue P-DATA indication."""
    return _AR_6


def ar_7(stimulus: Stimulus) -> Transition:
    """Issue P-DATA-TF PDU."""
    return Transition(State.STA8, (Send(stimulus.data),))


def ar_8(stimulus: Stimulus) -> Transition:
    """Issue A-RELEASE indication (release collision): Sta9 for the requestor, else Sta10."""
    next_state = State.STA9 if stimulus.role is Role.REQUESTOR else State.STA10
    return Transition(next_state, (Indicate(ReleaseRequested(collision=True)),))


def ar_9(stimulus: Stimulus) -> Transition:
    """Send A-RELEASE-RP PDU."""
    return Transition(State.STA11, (_send(AReleaseRP()),))


def ar_10(stimulus: Stimulus) -> Transition:
    """Issue A-RELEASE confirmation primitive."""
    return Transition(State.STA12, (Indicate(ReleaseConfirmed()),))


# --- association abort (Table 9-9) ------------------------------------------------------


def aa_1(stimulus: Stimulus) -> Transition:
    """Send A-ABORT PDU (service-user source) and start (or restart) ARTIM timer.

    For Evt15 the user's own A-ABORT is sent; for a bad PDU in Sta2, where there is no
    association yet, PS3.8 still names the service-user as source, with no reason.
    """
    # A received A-ABORT never leads here (Evt16 has its own actions): an AAbort is the user's.
    if isinstance(stimulus.pdu, AAbort):
        abort = stimulus.pdu
    else:
        abort = AAbort(AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED)
    return Transition(State.STA13, (_send(abort), Timer.START_ARTIM))


def aa_2(stimulus: Stimulus) -> Transition:
    """Stop ARTIM timer if running. Close transport connection."""
    return Transition(
        State.STA1, (Timer.STOP_ARTIM, Transport.CLOSE), closes="transport closed by us"
    )


def aa_3(stimulus: Stimulus) -> Transition:
    """Issue A-ABORT (service-user source) or A-P-ABORT indication; close transport."""
    abort = stimulus.pdu
    assert isinstance(abort, AAbort)
    event = Aborted(AbortCause.PEER_ABORT, abort.source, abort.reason, "peer sent A-ABORT")
    return Transition(State.STA1, (Indicate(event), Transport.CLOSE), closes="aborted by the peer")


def aa_4(stimulus: Stimulus) -> Transition:
    """Issue A-P-ABORT indication primitive (the transport closed under us)."""
    event = Aborted(
        AbortCause.CONNECTION_LOST,
        AbortSource.SERVICE_PROVIDER,
        AbortReason.NOT_SPECIFIED,
        "connection closed before the association ended",
    )
    return Transition(State.STA1, (Indicate(event),), closes="connection lost")


def aa_5(stimulus: Stimulus) -> Transition:
    """Stop ARTIM timer."""
    return Transition(
        State.STA1, (Timer.STOP_ARTIM,), closes="connection closed before any request"
    )


def aa_6(stimulus: Stimulus) -> Transition:
    """Ignore PDU."""
    return Transition(State.STA13)


def aa_7(stimulus: Stimulus) -> Transition:
    """Send A-ABORT PDU."""
    reason, _ = _provider_abort_reason(stimulus)
    return Transition(State.STA13, (_send(AAbort(AbortSource.SERVICE_PROVIDER, reason)),))


def aa_8(stimulus: Stimulus) -> Transition:
    """Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, and start
    ARTIM timer."""
    reason, detail = _provider_abort_reason(stimulus)
    event = Aborted(AbortCause.PROTOCOL_ERROR, AbortSource.SERVICE_PROVIDER, reason, detail)
    return Transition(
        State.STA13,
        (_send(AAbort(AbortSource.SERVICE_PROVIDER, reason)), Indicate(event), Timer.START_ARTIM),
    )


ACTIONS: Final[Mapping[Action, ActionFunction]] = {
    Action.AE_1: ae_1,
    Action.AE_2: ae_2,
    Action.AE_3: ae_3,
    Action.AE_4: ae_4,
    Action.AE_5: ae_5,
    Action.AE_6: ae_6,
    Action.AE_7: ae_7,
    Action.AE_8: ae_8,
    Action.DT_1: dt_1,
    Action.DT_2: dt_2,
    Action.AR_1: ar_1,
    Action.AR_2: ar_2,
    Action.AR_3: ar_3,
    Action.AR_4: ar_4,
    Action.AR_5: ar_5,
    Action.AR_6: ar_6,
    Action.AR_7: ar_7,
    Action.AR_8: ar_8,
    Action.AR_9: ar_9,
    Action.AR_10: ar_10,
    Action.AA_1: aa_1,
    Action.AA_2: aa_2,
    Action.AA_3: aa_3,
    Action.AA_4: aa_4,
    Action.AA_5: aa_5,
    Action.AA_6: aa_6,
    Action.AA_7: aa_7,
    Action.AA_8: aa_8,
}
