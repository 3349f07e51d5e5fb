"""The DICOM Upper Layer (PS3.8), sans-IO: PDUs and items, negotiation, the state machine.

Nothing here does I/O, reads a clock or imports asyncio: :class:`Association` takes bytes
and time in, and hands out events and bytes to send (see ``docs/library.md``).
"""

from oxidicom.ul.actions import Role
from oxidicom.ul.association import AcceptedContext, Association
from oxidicom.ul.constants import (
    APPLICATION_CONTEXT_NAME,
    AbortReason,
    AbortSource,
    ContextResult,
    ItemType,
    PduType,
    RejectResult,
    RejectSource,
    describe_reject,
)
from oxidicom.ul.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
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
from oxidicom.ul.fsm import Event, State
from oxidicom.ul.items import (
    AsyncOperationsWindow,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SopClassCommonExtendedNegotiation,
    SopClassExtendedNegotiation,
    UnknownItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from oxidicom.ul.negotiation import AcceptorPolicy, answer_contexts, check_request, negotiate
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

__all__ = [
    "APPLICATION_CONTEXT_NAME",
    "AAbort",
    "AAssociateAC",
    "AAssociateRJ",
    "AAssociateRQ",
    "AReleaseRP",
    "AReleaseRQ",
    "AbortCause",
    "AbortReason",
    "AbortSource",
    "Aborted",
    "AcceptedContext",
    "AcceptorPolicy",
    "Association",
    "AssociationAccepted",
    "AssociationRejected",
    "AssociationRequested",
    "AsyncOperationsWindow",
    "ConnectionClosed",
    "ContextResult",
    "Event",
    "ItemType",
    "LocalProtocolError",
    "PDataChunk",
    "PDataTF",
    "Pdu",
    "PduType",
    "PresentationContextAC",
    "PresentationContextRQ",
    "PresentationDataValue",
    "ProtocolError",
    "RejectResult",
    "RejectSource",
    "ReleaseConfirmed",
    "ReleaseRequested",
    "RemoteProtocolError",
    "Role",
    "RoleSelection",
    "SopClassCommonExtendedNegotiation",
    "SopClassExtendedNegotiation",
    "State",
    "UnknownItem",
    "UserEvent",
    "UserIdentityAC",
    "UserIdentityRQ",
    "UserInformation",
    "answer_contexts",
    "check_request",
    "decode_pdu",
    "describe_reject",
    "encode_pdu",
    "negotiate",
]
