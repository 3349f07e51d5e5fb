"""The extension points of :class:`~oxidicom.net.server.DicomServer`.

An embedding application implements :class:`Application` (one per server) and returns an
:class:`AssociationHandler` for each association it accepts. Everything is called on the
event loop thread, in protocol order, one operation at a time per association (we answer
the asynchronous operations window with 1/1).

Back-pressure: :meth:`StoreSink.write` and :meth:`StoreSink.finish` may return an awaitable
instead of a value; the server then stops reading from that peer until it completes (the
bytes handed to ``write`` stay valid until then). Returning plain values keeps the fast path:
no task, no future, just a call per received buffer.

Errors: a handler that raises is a bug in the handler; the server logs it, answers the
operation with a failure status where it can (0x0110 processing failure) and carries on with
the association. Refusals are not errors: return a status.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Sequence
from typing import Protocol

import attrs

from oxidicom.dimse.messages import CEchoRQ, CStoreRQ
from oxidicom.ul.association import AcceptedContext
from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ


@attrs.frozen
class Peer:
    """The remote end of a TCP connection."""

    host: str
    port: int


@attrs.frozen
class AssociationContext:
    """What a handler knows of its association once it is established."""

    association_id: str
    """A ULID, unique per TCP connection; also the OpenTelemetry span's ``association_ulid``."""
    peer: Peer
    request: AAssociateRQ
    response: AAssociateAC
    contexts: dict[int, AcceptedContext]

    @property
    def calling_ae_title(self) -> str:
        return self.request.calling_ae_title

    @property
    def called_ae_title(self) -> str:
        return self.request.called_ae_title


class Outcome(enum.Enum):
    """How an association ended."""

    RELEASED = "released"
    ABORTED = "aborted"
    """By the peer (A-ABORT) or by us after a protocol error."""
    TIMEOUT = "timeout"
    """Idle or ARTIM timeout."""
    CONNECTION_LOST = "connection-lost"
    SHUTDOWN = "shutdown"
    """The server was stopping and the grace period ran out."""


@attrs.define
class AssociationStats:
    """Counts of one association, kept by the server and handed to ``on_end``."""

    started: float
    """``time.monotonic()`` when the connection was accepted."""
    instances_stored: int = 0
    instances_failed: int = 0
    data_set_bytes: int = 0
    echoes: int = 0


@attrs.frozen
class AssociationEnd:
    outcome: Outcome
    detail: str
    """Human-readable: why it ended (e.g. the protocol error, or "released")."""
    stats: AssociationStats


@attrs.frozen
class StoreResult:
    """The answer to one C-STORE: a status (PS3.4 B.2.3) and an optional error comment."""

    status: int = 0x0000
    error_comment: str | None = None


class StoreSink(Protocol):
    """Receives one instance's data set, as it arrives.

    ``write`` gets the chunks of one received buffer at a time (views that are valid only
    during the call, or until its awaitable completes); ``finish`` is called once after the
    last chunk and its result is the C-STORE-RSP status; ``abort`` instead of ``finish`` when
    the association ends before the data set is complete, possibly while the awaitable of
    a ``write`` is still pending (the connection was lost, or the server's grace period ran
    out): the sink must then discard the instance once that write is done. After ``finish``
    or ``abort`` nothing else is called.
    """

    def write(self, chunks: Sequence[memoryview]) -> Awaitable[None] | None: ...

    def finish(self) -> StoreResult | Awaitable[StoreResult]: ...

    def abort(self) -> None: ...


class AssociationHandler(Protocol):
    """Serves the operations of one established association.

    Optionally it also has ``on_release() -> Awaitable[None] | None``, called when the peer
    asks to release (every operation answered): the A-RELEASE-RP waits for the returned
    awaitable, so it is the place to make durable what the peer will count as delivered.
    If it raises (or its awaitable fails) the association is aborted instead. ``on_end``
    follows as for any association.
    """

    def on_echo(self, request: CEchoRQ) -> int:
        """Status of the C-ECHO-RSP (0x0000 for success)."""
        ...

    def on_store(self, request: CStoreRQ, context: AcceptedContext) -> StoreSink | StoreResult:
        """A sink for the data set that follows, or a result to refuse it at once (the data
        set is then read and dropped)."""
        ...

    def on_end(self, end: AssociationEnd) -> Awaitable[None] | None:
        """The association is over (after every sink is finished or aborted). The server
        waits for the returned awaitable before it counts the connection as finished."""
        ...


class Application(Protocol):
    """What a :class:`~oxidicom.net.server.DicomServer` serves."""

    def connection_allowed(self, peer: Peer) -> bool:
        """Whether to talk to this peer at all; ``False`` drops the connection at once,
        before any DICOM is exchanged (an IP allow list)."""
        ...

    def negotiate(self, request: AAssociateRQ, peer: Peer) -> AAssociateAC | AAssociateRJ:
        """Accept (with the answer for each presentation context) or reject the request.

        :func:`oxidicom.ul.negotiation.negotiate` does the standard work for a policy.
        """
        ...

    def open(self, association: AssociationContext) -> AssociationHandler:
        """A handler for an association just accepted."""
        ...
