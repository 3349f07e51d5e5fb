"""What the storage SCP tells the rest of the receiver.

The storage code knows nothing of NATS or AMQP: it reports each instance it stored or
refused, and the start and end of each association, to a :class:`StorageObserver`. The CUBE
notifier (``oxidicom.cube``) is one observer; tests and embedders can plug in their own.

All observer methods are called on the event loop thread, in order, and must not block:
an observer that needs I/O queues the work and returns. ``association_ended`` is called
only after every write of that association has finished, so an observer may treat the
counts it has seen by then as final.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable
from typing import Protocol

import attrs


@attrs.frozen
class InstanceTags:
    """The data set values the CUBE contract needs, as decoded text (or ``None`` if absent).

    Values are decoded with the data set's Specific Character Set but otherwise untouched:
    not trimmed, NULs kept. Trimming and sanitizing are the consumer's business, because the
    path rules (contract §3) and the registration kwargs (§5) treat them differently.
    """

    PatientID: str | None = None
    PatientName: str | None = None
    PatientBirthDate: str | None = None
    PatientAge: str | None = None
    PatientSex: str | None = None
    StudyDate: str | None = None
    StudyDescription: str | None = None
    AccessionNumber: str | None = None
    Modality: str | None = None
    ProtocolName: str | None = None
    StudyInstanceUID: str | None = None
    SeriesInstanceUID: str | None = None
    SeriesDescription: str | None = None
    SeriesNumber: str | None = None
    InstanceNumber: str | None = None
    SOPInstanceUID: str | None = None


@attrs.frozen
class AssociationInfo:
    """Who is sending: fixed for the life of one association."""

    association_id: str
    """ULID of the association (one per TCP connection)."""
    calling_aet: str
    """Calling AE title as received, trimmed of spaces."""
    called_aet: str
    peer_host: str
    peer_port: int


@attrs.frozen
class InstanceStored:
    """One instance is complete at its final path."""

    association: AssociationInfo
    tags: InstanceTags
    study_date: datetime.date
    series_folder: str
    """Folder of the instance relative to FILES_ROOT, no trailing slash (contract §5 ``path``)."""
    file_path: str
    """The file relative to FILES_ROOT."""
    size: int
    """Bytes written, preamble and file meta included."""


@attrs.frozen
class InstanceRejected:
    """One instance was not stored (missing tags, bad StudyDate, storage error...)."""

    association: AssociationInfo
    series_instance_uid: str | None
    """From the data set when it could be read; ``None`` when absent."""
    reason: str
    """Human-readable, also the text of the LONK error message."""
    status: int
    """The C-STORE-RSP status we answered with."""


@attrs.frozen
class AssociationEnded:
    association: AssociationInfo
    outcome: str
    """``released``, ``aborted``, ``timeout`` or ``error``."""
    error: str | None = None


class StorageObserver(Protocol):
    def association_started(self, info: AssociationInfo) -> None: ...

    def instance_stored(self, event: InstanceStored) -> None: ...

    def instance_rejected(self, event: InstanceRejected) -> None: ...

    def association_ended(self, event: AssociationEnded) -> Awaitable[None] | None:
        """The association is over. Do the work in this call; return an awaitable only to
        say when it has become durable: a released association's A-RELEASE-RP waits for
        it (the PACS counts its instances delivered once it has that answer). It may be
        ignored (after an abort nobody waits), so it must not be a bare coroutine that
        does the work."""
        ...
