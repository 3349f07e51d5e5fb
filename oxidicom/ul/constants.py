"""Numbers and names fixed by PS3.8: PDU and item types, and the codes of rejects and aborts."""

from __future__ import annotations

import enum
from typing import Final

APPLICATION_CONTEXT_NAME: Final = "1.2.840.10008.3.1.1.1"
"""The DICOM Application Context Name (PS3.7 Annex A.2.1): the only one there is."""

PROTOCOL_VERSION: Final = 0x0001
"""Bit 0 set: the only protocol version PS3.8 defines (§9.3.2)."""

PDU_HEADER_LENGTH: Final = 6
"""Type (1), reserved (1), length (4, big endian)."""

ITEM_HEADER_LENGTH: Final = 4
"""Type (1), reserved (1), length (2, big endian)."""

PDV_HEADER_LENGTH: Final = 6
"""Item length (4), presentation context ID (1), message control header (1)."""

ASSOCIATE_FIXED_LENGTH: Final = 68
"""A-ASSOCIATE-RQ/AC bytes between the PDU header and the first item."""


class PduType(enum.IntEnum):
    """PS3.8 §9.3.1."""

    A_ASSOCIATE_RQ = 0x01
    A_ASSOCIATE_AC = 0x02
    A_ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    A_RELEASE_RQ = 0x05
    A_RELEASE_RP = 0x06
    A_ABORT = 0x07


class ItemType(enum.IntEnum):
    """Variable items of A-ASSOCIATE-RQ/AC (§9.3.2, §9.3.3) and user-information sub-items
    (Annex D)."""

    APPLICATION_CONTEXT = 0x10
    PRESENTATION_CONTEXT_RQ = 0x20
    PRESENTATION_CONTEXT_AC = 0x21
    ABSTRACT_SYNTAX = 0x30
    TRANSFER_SYNTAX = 0x40
    USER_INFORMATION = 0x50
    MAXIMUM_LENGTH = 0x51
    IMPLEMENTATION_CLASS_UID = 0x52
    ASYNCHRONOUS_OPERATIONS_WINDOW = 0x53
    ROLE_SELECTION = 0x54
    IMPLEMENTATION_VERSION_NAME = 0x55
    SOP_CLASS_EXTENDED_NEGOTIATION = 0x56
    SOP_CLASS_COMMON_EXTENDED_NEGOTIATION = 0x57
    USER_IDENTITY_RQ = 0x58
    USER_IDENTITY_AC = 0x59


class RejectResult(enum.IntEnum):
    """A-ASSOCIATE-RJ Result field (§9.3.4)."""

    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class RejectSource(enum.IntEnum):
    """A-ASSOCIATE-RJ Source field (§9.3.4)."""

    SERVICE_USER = 1
    SERVICE_PROVIDER_ACSE = 2
    SERVICE_PROVIDER_PRESENTATION = 3


REJECT_REASONS: Final[dict[tuple[int, int], str]] = {
    # (source, reason) -> PS3.8 §9.3.4 name. The reason codes overlap between sources, so
    # they are named here per source rather than as one enum.
    (RejectSource.SERVICE_USER, 1): "no-reason-given",
    (RejectSource.SERVICE_USER, 2): "application-context-name-not-supported",
    (RejectSource.SERVICE_USER, 3): "calling-AE-title-not-recognized",
    (RejectSource.SERVICE_USER, 7): "called-AE-title-not-recognized",
    (RejectSource.SERVICE_PROVIDER_ACSE, 1): "no-reason-given",
    (RejectSource.SERVICE_PROVIDER_ACSE, 2): "protocol-version-not-supported",
    (RejectSource.SERVICE_PROVIDER_PRESENTATION, 0): "reserved",
    (RejectSource.SERVICE_PROVIDER_PRESENTATION, 1): "temporary-congestion",
    (RejectSource.SERVICE_PROVIDER_PRESENTATION, 2): "local-limit-exceeded",
}

# The reasons this package sends, named for the call sites.
REASON_USER_NO_REASON: Final = 1
REASON_USER_APPLICATION_CONTEXT: Final = 2
REASON_USER_CALLING_AE: Final = 3
REASON_USER_CALLED_AE: Final = 7
REASON_ACSE_PROTOCOL_VERSION: Final = 2
REASON_PRESENTATION_CONGESTION: Final = 1
REASON_PRESENTATION_LOCAL_LIMIT: Final = 2


def describe_reject(result: int, source: int, reason: int) -> str:
    """``rejected-permanent by service-user: calling-AE-title-not-recognized (1,1,3)``."""
    results = {1: "rejected-permanent", 2: "rejected-transient"}
    sources = {
        1: "service-user",
        2: "service-provider (ACSE)",
        3: "service-provider (presentation)",
    }
    return (
        f"{results.get(result, 'unknown result')} by {sources.get(source, 'unknown source')}: "
        f"{REJECT_REASONS.get((source, reason), 'unknown reason')} ({result},{source},{reason})"
    )


class AbortSource(enum.IntEnum):
    """A-ABORT Source field (§9.3.8)."""

    SERVICE_USER = 0
    RESERVED = 1
    SERVICE_PROVIDER = 2


class AbortReason(enum.IntEnum):
    """A-ABORT Reason/Diag. field when the source is the service-provider (Table 9-26)."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    RESERVED = 3
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


class ContextResult(enum.IntEnum):
    """Result/Reason of a presentation context in A-ASSOCIATE-AC (§9.3.3.2)."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4
