"""Receiving one C-STORE data set: write it, read its header, store it where CUBE wants it.

:class:`InstanceReceiver` is what the DIMSE layer drives for each C-STORE request: it
passes the data set fragments to :meth:`~InstanceReceiver.data` as they arrive and calls
:meth:`~InstanceReceiver.complete` after the last one (or :meth:`~InstanceReceiver.abort`
if the association dies first). The outcome is the event for the storage observer, and
its ``status`` is the C-STORE-RSP status to answer with.

The bytes go to disk as they arrive (behind the Part 10 header) while the header reader
picks out the tags, and then walks on to check that the data set is whole (one cut short by
the peer is refused, not stored); only at the end does the file get its final name. The
file itself is created once the header has been read (its first few KB, held until then,
at most 256 KiB), unnamed, in the directory where it will appear: that is where creating
it is cheapest, and an instance refused for its tags never touches the disk. Nothing here
blocks on anything but local file system calls, and nothing here knows about asyncio.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

from oxidicom.storage.events import (
    AssociationInfo,
    InstanceRejected,
    InstanceStored,
    InstanceTags,
)
from oxidicom.storage.filemeta import encode_part10_header
from oxidicom.storage.header import HeaderError, HeaderReader
from oxidicom.storage.layout import PACS_FOLDER, InstancePath, LayoutError, instance_path, trim
from oxidicom.storage.writer import FilesRoot, PendingFile, StorageError

__all__ = [
    "STATUS_CANNOT_UNDERSTAND",
    "STATUS_INVALID_DATA_SET",
    "STATUS_OUT_OF_RESOURCES",
    "STATUS_SUCCESS",
    "InstanceReceiver",
    "Store",
]

_PREFIX_CAP: Final = 256 * 1024
"""Bytes held in memory while waiting for the header; past it the file is created anyway."""

STATUS_SUCCESS: Final = 0x0000
STATUS_OUT_OF_RESOURCES: Final = 0xA700
"""The file could not be written (disk full, permissions...)."""
STATUS_CANNOT_UNDERSTAND: Final = 0xC000
"""A required tag is missing or StudyDate is invalid."""
STATUS_INVALID_DATA_SET: Final = 0xC001
"""The data set (or the request's UIDs) could not be parsed."""


class Store:
    """Per-process storage configuration; makes one :class:`InstanceReceiver` per C-STORE."""

    def __init__(self, files_root: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.files = FilesRoot(files_root, fsync=fsync)

    def receiver(
        self,
        association: AssociationInfo,
        *,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
    ) -> InstanceReceiver:
        return InstanceReceiver(
            self.files,
            association,
            sop_class_uid=sop_class_uid,
            sop_instance_uid=sop_instance_uid,
            transfer_syntax_uid=transfer_syntax_uid,
        )

    def prepare(self, series_folder: str) -> None:
        """More instances of this series are likely: create the next file now, while the
        peer is busy sending it (see :meth:`FilesRoot.prepare`)."""
        self.files.prepare(series_folder)

    def series_finished(self, series_folder: str) -> None:
        """No more instances of this series are expected from this association."""
        self.files.drop_spare(series_folder)

    def close(self) -> None:
        """Release what was opened ahead of time (at shutdown)."""
        self.files.close()


class InstanceReceiver:
    """One C-STORE data set on its way to storage.

    ``sop_class_uid`` and ``sop_instance_uid`` are the request's Affected SOP Class and
    Instance UIDs (they go into the file meta group); ``transfer_syntax_uid`` is the
    presentation context's, and must be one the association accepted (else
    :class:`ValueError`). :meth:`data` and :meth:`complete` never raise for bad data or
    storage failures: those become an :class:`InstanceRejected` outcome.
    """

    def __init__(
        self,
        files: FilesRoot,
        association: AssociationInfo,
        *,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
    ) -> None:
        self._files = files
        self._association = association
        self._reader = HeaderReader(transfer_syntax_uid)
        self._file: PendingFile | None = None
        self._opened_in: str | None = None
        """The series folder the file was opened in (made for it, perhaps)."""
        self._prefix: list[bytes] = []
        """The data set's first bytes, held until the header says where the file goes."""
        self._prefix_size = 0
        self._where: InstancePath | None = None
        self._finished = False
        # The first thing that went wrong: (status, reason). Writing stops there, reading
        # goes on so the rejection can still name the series.
        self._failure: tuple[int, str] | None = None
        self._part10_header = b""
        try:
            self._part10_header = encode_part10_header(
                sop_class_uid=sop_class_uid,
                sop_instance_uid=sop_instance_uid,
                transfer_syntax_uid=transfer_syntax_uid,
                source_ae_title=association.calling_aet,
            )
        except ValueError as error:
            self._failure = (STATUS_INVALID_DATA_SET, f"invalid C-STORE request: {error}")

    def data(self, chunks: Sequence[bytes | memoryview]) -> None:
        """Take the next fragments of the data set; they are not used after the call."""
        if self._finished:
            raise RuntimeError("the instance was already completed or aborted")
        reader = self._reader
        if reader.walking:
            reader.feed_all(chunks)
        if self._failure is not None:
            return
        if self._file is not None:
            self._write(chunks)
            return
        if not reader.done and self._prefix_size + sum(map(len, chunks)) <= _PREFIX_CAP:
            # Where the file goes is not known yet (its tags are still to come): hold the
            # first bytes, usually a few KB, rather than create the file in the wrong place.
            for chunk in chunks:
                self._prefix.append(bytes(chunk))
                self._prefix_size += len(chunk)
            return
        self._open(chunks)

    def _destination(self) -> InstancePath | None:
        """The file's path, once the header is read; None if it cannot be stored."""
        if self._where is None and self._reader.done:
            try:
                self._where = instance_path(self._association.calling_aet, self._reader.result())
            except (HeaderError, LayoutError):
                return None
        return self._where

    def _open(self, chunks: Sequence[bytes | memoryview]) -> None:
        where = self._destination()
        try:
            self._file = self._files.open(where.series_folder if where else None)
            self._opened_in = where.series_folder if where else None
        except StorageError as error:
            self._failure = (STATUS_OUT_OF_RESOURCES, str(error))
            return
        prefix, self._prefix = self._prefix, []
        self._write([self._part10_header, *prefix, *chunks])

    def _write(self, chunks: Sequence[bytes | memoryview]) -> None:
        assert self._file is not None
        try:
            self._file.write(chunks)
        except StorageError as error:
            self._file = None  # already discarded
            self._failure = (STATUS_OUT_OF_RESOURCES, str(error))

    def complete(self) -> InstanceStored | InstanceRejected:
        """The data set is complete: store the file under its final path, or give up."""
        if self._finished:
            raise RuntimeError("the instance was already completed or aborted")
        self._finished = True
        try:
            tags = self._reader.end()
        except HeaderError as error:
            return self._reject(
                STATUS_INVALID_DATA_SET, f"cannot read data set: {error}", error.tags
            )
        if self._failure is not None:
            return self._reject(*self._failure, tags)
        try:
            where = self._where or instance_path(self._association.calling_aet, tags)
        except LayoutError as error:
            return self._reject(STATUS_CANNOT_UNDERSTAND, str(error), tags)
        self._where = where
        if self._file is None:
            if not self._prefix:  # an empty data set cannot have passed validation
                return self._reject(STATUS_INVALID_DATA_SET, "empty data set", tags)
            self._open(())
        pending = self._file
        if pending is None:  # it could not be created
            return self._reject(*(self._failure or (STATUS_OUT_OF_RESOURCES, "")), tags)
        try:
            pending.commit(where.file_path)
        except StorageError as error:
            self._file = None
            return self._reject(STATUS_OUT_OF_RESOURCES, str(error), tags)
        self._file = None
        return InstanceStored(
            association=self._association,
            tags=tags,
            study_date=where.study_date,
            series_folder=where.series_folder,
            file_path=where.file_path,
            size=pending.size,
        )

    def abort(self) -> None:
        """The association ended before the data set did: leave nothing behind."""
        self._finished = True
        self._discard()

    def _reject(self, status: int, reason: str, tags: InstanceTags) -> InstanceRejected:
        self._discard()
        uid = tags.SeriesInstanceUID
        return InstanceRejected(
            association=self._association,
            series_instance_uid=None if uid is None else trim(uid.replace("\0", "")),
            reason=reason,
            status=status,
        )

    def _discard(self) -> None:
        self._prefix = []
        if self._file is not None:
            self._file.discard()
            self._file = None
        if self._opened_in is not None:
            # Nothing of a failed or aborted instance stays, its new folders included.
            self._files.remove_empty_directories(self._opened_in, below=PACS_FOLDER)
            self._opened_in = None
