"""What an :class:`~oxidicom.ul.association.Association` tells its user.

These are the PS3.8 indication and confirmation primitives (A-ASSOCIATE indication, A-RELEASE
confirmation, A-P-ABORT...), plus :class:`PDataChunk`, the streaming form of the P-DATA
indication: a P-DATA-TF's PDVs are handed over piece by piece as bytes arrive, never
reassembled, so that an instance of any size flows through in constant memory
(:class:`PDataRun`, when asked for, hands over the data PDVs of many PDUs at once).
"""

from __future__ import annotations

import enum
from typing import NamedTuple, TypeAlias

import attrs

from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ


@attrs.frozen
class AssociationRequested:
    """A-ASSOCIATE indication (acceptor, Sta3): answer with ``accept`` or ``reject``."""

    request: AAssociateRQ


@attrs.frozen
class AssociationAccepted:
    """A-ASSOCIATE confirmation, accepted (requestor, now in Sta6)."""

    response: AAssociateAC


@attrs.frozen
class AssociationRejected:
    """A-ASSOCIATE confirmation, rejected (requestor); the connection closes."""

    response: AAssociateRJ


class PDataChunk(NamedTuple):
    """A piece of one PDV (a fragment of a DIMSE command or data set), as it arrived.

    ``data`` is a view into the buffer given to ``receive_data`` and is valid only until the
    next call to it: consume or copy it before feeding more bytes. ``is_last`` is true on the
    final piece of the PDV that ends its message (control header bit 1).
    """

    context_id: int
    is_command: bool
    is_last: bool
    data: memoryview


class PDataRun(NamedTuple):
    """Data set fragments of several whole P-DATA-TF PDUs that were in one buffer, in order.

    Given only by an :class:`~oxidicom.ul.association.Association` made with
    ``coalesce_data=True``, in place of the :class:`PDataChunk` events of PDUs that each
    carry one data set PDV filling them, all on the same presentation context, one after the
    other: a large data set sent in small PDUs then costs one event per read rather than one
    per PDU. Anything else (commands, PDUs with several PDVs, partial PDUs) still comes as
    :class:`PDataChunk`. ``chunks`` are views into the buffer given to ``receive_data``, with
    the same lifetime as :attr:`PDataChunk.data`; ``is_last`` is the last PDV's bit 1 (no
    earlier PDV of the run has it).
    """

    context_id: int
    is_last: bool
    chunks: list[memoryview]


@attrs.frozen
class ReleaseRequested:
    """A-RELEASE indication: answer with ``release_response`` once all work is done.

    ``collision`` is set when both sides asked to release at once (PS3.8 §7.2.2).
    """

    collision: bool = False


@attrs.frozen
class ReleaseConfirmed:
    """A-RELEASE confirmation: the association ended normally."""


class AbortCause(enum.Enum):
    PEER_ABORT = "peer-abort"
    """The peer sent an A-ABORT PDU (A-ABORT or A-P-ABORT indication, by its source)."""
    PROTOCOL_ERROR = "protocol-error"
    """The peer sent a PDU that was invalid or unexpected; we sent A-ABORT (A-P-ABORT)."""
    CONNECTION_LOST = "connection-lost"
    """The transport closed before the association ended (A-P-ABORT)."""
    TIMEOUT = "timeout"
    """The peer sent nothing within the idle timeout; we sent A-ABORT."""


@attrs.frozen
class Aborted:
    """The association ended abnormally: A-ABORT or A-P-ABORT indication.

    ``source`` and ``reason`` are those of the A-ABORT PDU received (``PEER_ABORT``) or sent
    (``PROTOCOL_ERROR``); for ``CONNECTION_LOST`` they are service-provider / not specified.
    """

    cause: AbortCause
    source: int
    reason: int
    detail: str = ""


@attrs.frozen
class ConnectionClosed:
    """Always the last event: the transport is (to be) closed and nothing more will happen."""

    reason: str


UserEvent: TypeAlias = (
    AssociationRequested
    | AssociationAccepted
    | AssociationRejected
    | PDataChunk
    | PDataRun
    | ReleaseRequested
    | ReleaseConfirmed
    | Aborted
    | ConnectionClosed
)
