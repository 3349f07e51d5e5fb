"""PS3.8 §9.2: the DICOM Upper Layer state machine, as one literal table.

``TRANSITIONS[(state, event)]`` is the action of Table 9-10; a pair absent from the table is a
blank cell (the event cannot happen in that state: for a local primitive that is the caller's
:class:`~oxidicom.ul.errors.LocalProtocolError`). The actions themselves, pure functions that
return the next state and the effects to carry out, are in :mod:`oxidicom.ul.actions`.
Names follow the standard so each cell can be checked against it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final


class State(enum.Enum):
    """Tables 9-1 to 9-5."""

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is slow Python

    STA1 = "Sta1"
    """Idle."""
    STA2 = "Sta2"
    """Transport connection open (awaiting A-ASSOCIATE-RQ PDU)."""
    STA3 = "Sta3"
    """Awaiting local A-ASSOCIATE response primitive (from local user)."""
    STA4 = "Sta4"
    """Awaiting transport connection opening to complete (from local transport service)."""
    STA5 = "Sta5"
    """Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU."""
    STA6 = "Sta6"
    """Association established and ready for data transfer."""
    STA7 = "Sta7"
    """Awaiting A-RELEASE-RP PDU."""
    STA8 = "Sta8"
    """Awaiting local A-RELEASE response primitive (from local user)."""
    STA9 = "Sta9"
    """Release collision requestor side; awaiting A-RELEASE response (from local user)."""
    STA10 = "Sta10"
    """Release collision acceptor side; awaiting A-RELEASE-RP PDU."""
    STA11 = "Sta11"
    """Release collision requestor side; awaiting A-RELEASE-RP PDU."""
    STA12 = "Sta12"
    """Release collision acceptor side; awaiting A-RELEASE response primitive (local user)."""
    STA13 = "Sta13"
    """Awaiting transport connection close indication (association no longer exists)."""


class Event(enum.Enum):
    """Table 9-10, first column."""

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is slow Python

    EVT1 = "Evt1"
    """A-ASSOCIATE request (local user)."""
    EVT2 = "Evt2"
    """Transport connect confirmation (local transport service)."""
    EVT3 = "Evt3"
    """A-ASSOCIATE-AC PDU received."""
    EVT4 = "Evt4"
    """A-ASSOCIATE-RJ PDU received."""
    EVT5 = "Evt5"
    """Transport connection indication (local transport service)."""
    EVT6 = "Evt6"
    """A-ASSOCIATE-RQ PDU received."""
    EVT7 = "Evt7"
    """A-ASSOCIATE response primitive (accept)."""
    EVT8 = "Evt8"
    """A-ASSOCIATE response primitive (reject)."""
    EVT9 = "Evt9"
    """P-DATA request primitive."""
    EVT10 = "Evt10"
    """P-DATA-TF PDU received."""
    EVT11 = "Evt11"
    """A-RELEASE request primitive."""
    EVT12 = "Evt12"
    """A-RELEASE-RQ PDU received."""
    EVT13 = "Evt13"
    """A-RELEASE-RP PDU received."""
    EVT14 = "Evt14"
    """A-RELEASE response primitive."""
    EVT15 = "Evt15"
    """A-ABORT request primitive."""
    EVT16 = "Evt16"
    """A-ABORT PDU received."""
    EVT17 = "Evt17"
    """Transport connection closed indication."""
    EVT18 = "Evt18"
    """ARTIM timer expired."""
    EVT19 = "Evt19"
    """Unrecognized or invalid PDU received."""


class Action(enum.Enum):
    """Tables 9-6 to 9-9."""

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is slow Python

    AE_1 = "AE-1"
    AE_2 = "AE-2"
    AE_3 = "AE-3"
    AE_4 = "AE-4"
    AE_5 = "AE-5"
    AE_6 = "AE-6"
    AE_7 = "AE-7"
    AE_8 = "AE-8"
    DT_1 = "DT-1"
    DT_2 = "DT-2"
    AR_1 = "AR-1"
    AR_2 = "AR-2"
    AR_3 = "AR-3"
    AR_4 = "AR-4"
    AR_5 = "AR-5"
    AR_6 = "AR-6"
    AR_7 = "AR-7"
    AR_8 = "AR-8"
    AR_9 = "AR-9"
    AR_10 = "AR-10"
    AA_1 = "AA-1"
    AA_2 = "AA-2"
    AA_3 = "AA-3"
    AA_4 = "AA-4"
    AA_5 = "AA-5"
    AA_6 = "AA-6"
    AA_7 = "AA-7"
    AA_8 = "AA-8"


S = State
E = Event
A = Action

# Table 9-10, one line per event (the table's rows), states in the standard's column order.
TRANSITIONS: Final[Mapping[tuple[State, Event], Action]] = {
    # Evt1 A-ASSOCIATE request (local user)
    (S.STA1, E.EVT1): A.AE_1,
    # Evt2 Transport connect confirmation
    (S.STA4, E.EVT2): A.AE_2,
    # Evt3 A-ASSOCIATE-AC PDU
    (S.STA2, E.EVT3): A.AA_1, (S.STA3, E.EVT3): A.AA_8, (S.STA5, E.EVT3): A.AE_3,
    (S.STA6, E.EVT3): A.AA_8, (S.STA7, E.EVT3): A.AA_8, (S.STA8, E.EVT3): A.AA_8,
    (S.STA9, E.EVT3): A.AA_8, (S.STA10, E.EVT3): A.AA_8, (S.STA11, E.EVT3): A.AA_8,
    (S.STA12, E.EVT3): A.AA_8, (S.STA13, E.EVT3): A.AA_6,
    # Evt4 A-ASSOCIATE-RJ PDU
    (S.STA2, E.EVT4): A.AA_1, (S.STA3, E.EVT4): A.AA_8, (S.STA5, E.EVT4): A.AE_4,
    (S.STA6, E.EVT4): A.AA_8, (S.STA7, E.EVT4): A.AA_8, (S.STA8, E.EVT4): A.AA_8,
    (S.STA9, E.EVT4): A.AA_8, (S.STA10, E.EVT4): A.AA_8, (S.STA11, E.EVT4): A.AA_8,
    (S.STA12, E.EVT4): A.AA_8, (S.STA13, E.EVT4): A.AA_6,
    # Evt5 Transport connection indication
    (S.STA1, E.EVT5): A.AE_5,
    # Evt6 A-ASSOCIATE-RQ PDU
    (S.STA2, E.EVT6): A.AE_6, (S.STA3, E.EVT6): A.AA_8, (S.STA5, E.EVT6): A.AA_8,
    (S.STA6, E.EVT6): A.AA_8, (S.STA7, E.EVT6): A.AA_8, (S.STA8, E.EVT6): A.AA_8,
    (S.STA9, E.EVT6): A.AA_8, (S.STA10, E.EVT6): A.AA_8, (S.STA11, E.EVT6): A.AA_8,
    (S.STA12, E.EVT6): A.AA_8, (S.STA13, E.EVT6): A.AA_7,
    # Evt7 A-ASSOCIATE response primitive (accept)
    (S.STA3, E.EVT7): A.AE_7,
    # Evt8 A-ASSOCIATE response primitive (reject)
    (S.STA3, E.EVT8): A.AE_8,
    # Evt9 P-DATA request primitive
    (S.STA6, E.EVT9): A.DT_1, (S.STA8, E.EVT9): A.AR_7,
    # Evt10 P-DATA-TF PDU
    (S.STA2, E.EVT10): A.AA_1, (S.STA3, E.EVT10): A.AA_8, (S.STA5, E.EVT10): A.AA_8,
    (S.STA6, E.EVT10): A.DT_2, (S.STA7, E.EVT10): A.AR_6, (S.STA8, E.EVT10): A.AA_8,
    (S.STA9, E.EVT10): A.AA_8, (S.STA10, E.EVT10): A.AA_8, (S.STA11, E.EVT10): A.AA_8,
    (S.STA12, E.EVT10): A.AA_8, (S.STA13, E.EVT10): A.AA_6,
    # Evt11 A-RELEASE request primitive
    (S.STA6, E.EVT11): A.AR_1,
    # Evt12 A-RELEASE-RQ PDU
    (S.STA2, E.EVT12): A.AA_1, (S.STA3, E.EVT12): A.AA_8, (S.STA5, E.EVT12): A.AA_8,
    (S.STA6, E.EVT12): A.AR_2, (S.STA7, E.EVT12): A.AR_8, (S.STA8, E.EVT12): A.AA_8,
    (S.STA9, E.EVT12): A.AA_8, (S.STA10, E.EVT12): A.AA_8, (S.STA11, E.EVT12): A.AA_8,
    (S.STA12, E.EVT12): A.AA_8, (S.STA13, E.EVT12): A.AA_6,
    # Evt13 A-RELEASE-RP PDU
    (S.STA2, E.EVT13): A.AA_1, (S.STA3, E.EVT13): A.AA_8, (S.STA5, E.EVT13): A.AA_8,
    (S.STA6, E.EVT13): A.AA_8, (S.STA7, E.EVT13): A.AR_3, (S.STA8, E.EVT13): A.AA_8,
    (S.STA9, E.EVT13): A.AA_8, (S.STA10, E.EVT13): A.AR_10, (S.STA11, E.EVT13): A.AR_3,
    (S.STA12, E.EVT13): A.AA_8, (S.STA13, E.EVT13): A.AA_6,
    # Evt14 A-RELEASE response primitive
    (S.STA8, E.EVT14): A.AR_4, (S.STA9, E.EVT14): A.AR_9, (S.STA12, E.EVT14): A.AR_4,
    # Evt15 A-ABORT request primitive
    (S.STA3, E.EVT15): A.AA_1, (S.STA4, E.EVT15): A.AA_2, (S.STA5, E.EVT15): A.AA_1,
    (S.STA6, E.EVT15): A.AA_1, (S.STA7, E.EVT15): A.AA_1, (S.STA8, E.EVT15): A.AA_1,
    (S.STA9, E.EVT15): A.AA_1, (S.STA10, E.EVT15): A.AA_1, (S.STA11, E.EVT15): A.AA_1,
    (S.STA12, E.EVT15): A.AA_1,
    # Evt16 A-ABORT PDU
    (S.STA2, E.EVT16): A.AA_2, (S.STA3, E.EVT16): A.AA_3, (S.STA5, E.EVT16): A.AA_3,
    (S.STA6, E.EVT16): A.AA_3, (S.STA7, E.EVT16): A.AA_3, (S.STA8, E.EVT16): A.AA_3,
    (S.STA9, E.EVT16): A.AA_3, (S.STA10, E.EVT16): A.AA_3, (S.STA11, E.EVT16): A.AA_3,
    (S.STA12, E.EVT16): A.AA_3, (S.STA13, E.EVT16): A.AA_2,
    # Evt17 Transport connection closed indication
    (S.STA2, E.EVT17): A.AA_5, (S.STA3, E.EVT17): A.AA_4, (S.STA4, E.EVT17): A.AA_4,
    (S.STA5, E.EVT17): A.AA_4, (S.STA6, E.EVT17): A.AA_4, (S.STA7, E.EVT17): A.AA_4,
    (S.STA8, E.EVT17): A.AA_4, (S.STA9, E.EVT17): A.AA_4, (S.STA10, E.EVT17): A.AA_4,
    (S.STA11, E.EVT17): A.AA_4, (S.STA12, E.EVT17): A.AA_4, (S.STA13, E.EVT17): A.AR_5,
    # Evt18 ARTIM timer expired
    (S.STA2, E.EVT18): A.AA_2, (S.STA13, E.EVT18): A.AA_2,
    # Evt19 Unrecognized or invalid PDU received
    (S.STA2, E.EVT19): A.AA_1, (S.STA3, E.EVT19): A.AA_8, (S.STA5, E.EVT19): A.AA_8,
    (S.STA6, E.EVT19): A.AA_8, (S.STA7, E.EVT19): A.AA_8, (S.STA8, E.EVT19): A.AA_8,
    (S.STA9, E.EVT19): A.AA_8, (S.STA10, E.EVT19): A.AA_8, (S.STA11, E.EVT19): A.AA_8,
    (S.STA12, E.EVT19): A.AA_8, (S.STA13, E.EVT19): A.AA_7,
}  # fmt: skip

LOCAL_PRIMITIVES: Final = frozenset({E.EVT1, E.EVT7, E.EVT8, E.EVT9, E.EVT11, E.EVT14, E.EVT15})
"""Events raised by the local user: a blank cell for one of these is a LocalProtocolError."""
