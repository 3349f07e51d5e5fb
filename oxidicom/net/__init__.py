"""asyncio networking on the sans-IO core: :class:`DicomServer` (an SCP you extend with an
:class:`Application`, or with :class:`StorageSCP` and :class:`Part10FileSink` when only the
files' places are yours to decide) and :func:`associate` (an SCU). See ``docs/library.md``."""

from oxidicom.net.handlers import (
    Application,
    AssociationContext,
    AssociationEnd,
    AssociationHandler,
    AssociationStats,
    Outcome,
    Peer,
    StoreResult,
    StoreSink,
)
from oxidicom.net.requestor import (
    AssociationAbortedError,
    AssociationError,
    AssociationRejectedError,
    ClientAssociation,
    NoContextError,
    RequestorConfig,
    associate,
    propose,
)
from oxidicom.net.server import DicomServer, ServerConfig
from oxidicom.net.shared_listener import LoadBoard, SharedPort
from oxidicom.net.storage_scp import EndCallback, Part10FileSink, StorageSCP, StoreCallback
from oxidicom.part10 import NotPart10Error, Part10Header, read_part10_header
from oxidicom.storage.writer import FilesRoot, StorageError

__all__ = [
    "Application",
    "AssociationAbortedError",
    "AssociationContext",
    "AssociationEnd",
    "AssociationError",
    "AssociationHandler",
    "AssociationRejectedError",
    "AssociationStats",
    "ClientAssociation",
    "DicomServer",
    "EndCallback",
    "FilesRoot",
    "LoadBoard",
    "NoContextError",
    "NotPart10Error",
    "Outcome",
    "Part10FileSink",
    "Part10Header",
    "Peer",
    "RequestorConfig",
    "ServerConfig",
    "SharedPort",
    "StorageError",
    "StorageSCP",
    "StoreCallback",
    "StoreResult",
    "StoreSink",
    "associate",
    "propose",
    "read_part10_header",
]
