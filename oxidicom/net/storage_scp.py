"""A ready-made storage SCP for the common case: an :class:`Application` built from two
functions, and a :class:`Part10FileSink` that writes each instance as a Part 10 file.

The protocols of :mod:`oxidicom.net.handlers` remain the full extension points; this is the
short way when an application only decides where instances go (see ``docs/library.md``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable, Sequence

from oxidicom.dimse import status as dimse_status
from oxidicom.dimse.messages import CEchoRQ, CStoreRQ
from oxidicom.net.handlers import (
    AssociationContext,
    AssociationEnd,
    AssociationHandler,
    Peer,
    StoreResult,
    StoreSink,
)
from oxidicom.storage.filemeta import encode_part10_header
from oxidicom.storage.writer import FilesRoot, PendingFile, StorageError
from oxidicom.ul.association import AcceptedContext
from oxidicom.ul.negotiation import AcceptorPolicy, negotiate
from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ

__all__ = ["EndCallback", "Part10FileSink", "StorageSCP", "StoreCallback"]

StoreCallback = Callable[[AssociationContext, CStoreRQ, AcceptedContext], StoreSink | StoreResult]
"""Called for each C-STORE-RQ: a sink for its data set, or a result that refuses it."""
EndCallback = Callable[[AssociationContext, AssociationEnd], Awaitable[None] | None]
"""Called once when an association is over, as :meth:`AssociationHandler.on_end`."""


class Part10FileSink:
    """A :class:`StoreSink` that writes one instance as a Part 10 file under a
    :class:`~oxidicom.storage.writer.FilesRoot`: preamble and file meta (from the C-STORE-RQ,
    the context's transfer syntax and ``source_ae_title``), then the data set exactly as it
    arrives.

    The file has no name (or a hidden temporary one) until :meth:`finish` gives it
    ``relative_path``, replacing any earlier file there; :meth:`abort` leaves nothing, and an
    earlier complete copy untouched. Writes are plain ``writev`` calls on the event loop's
    thread (fast on a local disk); a full or failing disk becomes status 0xA700 with the
    error as comment, not an exception. ``relative_path`` must be plain: no ``..``, ``.``,
    empty or absolute parts (0xA700 otherwise); map untrusted names to safe ones first.
    """

    def __init__(
        self,
        root: FilesRoot,
        relative_path: str,
        request: CStoreRQ,
        context: AcceptedContext,
        source_ae_title: str,
    ) -> None:
        self._relative_path = relative_path
        self._error: str | None = None
        self._file: PendingFile | None = None
        header = encode_part10_header(
            sop_class_uid=request.affected_sop_class_uid,
            sop_instance_uid=request.affected_sop_instance_uid,
            transfer_syntax_uid=context.transfer_syntax,
            source_ae_title=source_ae_title,
        )
        try:
            # Created in its final directory: the last step is then a same-directory link.
            self._file = root.open(near=posixpath.dirname(relative_path) or None)
            self._file.write([header])
        except StorageError as error:
            self._fail(str(error))

    def write(self, chunks: Sequence[memoryview]) -> None:
        if self._file is None:
            return  # failed already: the rest of the data set is read and dropped
        try:
            self._file.write(chunks)
        except StorageError as error:
            self._fail(str(error))

    def finish(self) -> StoreResult:
        if self._file is None:
            return StoreResult(dimse_status.OUT_OF_RESOURCES, self._error)
        file, self._file = self._file, None
        try:
            file.commit(self._relative_path)  # on failure, it discards the file itself
        except (StorageError, ValueError) as error:
            return StoreResult(dimse_status.OUT_OF_RESOURCES, str(error))
        return StoreResult()

    def abort(self) -> None:
        if self._file is not None:
            self._file.discard()
            self._file = None

    def _fail(self, error: str) -> None:
        self._error = error
        self.abort()


class StorageSCP:
    """An :class:`Application` that answers C-ECHO and hands each C-STORE to ``store``.

    ``policy`` decides what is accepted (:func:`oxidicom.ul.negotiate`); ``allow`` (default:
    everyone) filters peers before any PDU; ``on_end`` hears how each association ended.
    The callbacks run on the event loop's thread, with the same contracts as the protocol
    methods they stand for (``AssociationHandler.on_store`` and ``on_end``).
    """

    def __init__(
        self,
        policy: AcceptorPolicy,
        store: StoreCallback,
        *,
        allow: Callable[[Peer], bool] | None = None,
        on_end: EndCallback | None = None,
    ) -> None:
        self.policy = policy
        self._store = store
        self._allow = allow
        self._on_end = on_end

    def connection_allowed(self, peer: Peer) -> bool:
        return self._allow is None or self._allow(peer)

    def negotiate(self, request: AAssociateRQ, peer: Peer) -> AAssociateAC | AAssociateRJ:
        return negotiate(request, self.policy)

    def open(self, association: AssociationContext) -> AssociationHandler:
        return _StorageHandler(association, self._store, self._on_end)


class _StorageHandler:
    """The :class:`AssociationHandler` of one association of a :class:`StorageSCP`."""

    def __init__(
        self, association: AssociationContext, store: StoreCallback, on_end: EndCallback | None
    ) -> None:
        self._association = association
        self._store = store
        self._on_end = on_end

    def on_echo(self, request: CEchoRQ) -> int:
        return dimse_status.SUCCESS

    def on_store(self, request: CStoreRQ, context: AcceptedContext) -> StoreSink | StoreResult:
        return self._store(self._association, request, context)

    def on_end(self, end: AssociationEnd) -> Awaitable[None] | None:
        return None if self._on_end is None else self._on_end(self._association, end)
