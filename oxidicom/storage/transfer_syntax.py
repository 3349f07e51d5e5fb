"""How the data set of each standard transfer syntax is encoded.

A transfer syntax fixes two things: how the data set's elements are encoded (VR
implicit or explicit, byte order, deflated or not) and how Pixel Data is compressed. We
store data as it arrives, so only the first matters: it is what the header reader must
walk. Compressed transfer syntaxes all encode their data set as Explicit VR Little
Endian; only the pixel data differs.

The list of standard transfer syntaxes comes from pydicom's UID dictionary, plus the
few the standard added after the pydicom release we depend on.
"""

from __future__ import annotations

import enum

from pydicom._uid_dict import UID_dictionary

__all__ = ["DatasetEncoding", "dataset_encoding", "standard_transfer_syntaxes"]


class DatasetEncoding(enum.Enum):
    IMPLICIT_VR_LITTLE_ENDIAN = "implicit VR little endian"
    EXPLICIT_VR_LITTLE_ENDIAN = "explicit VR little endian"
    EXPLICIT_VR_BIG_ENDIAN = "explicit VR big endian"
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "deflated explicit VR little endian"

    @property
    def implicit_vr(self) -> bool:
        return self is DatasetEncoding.IMPLICIT_VR_LITTLE_ENDIAN

    @property
    def little_endian(self) -> bool:
        return self is not DatasetEncoding.EXPLICIT_VR_BIG_ENDIAN

    @property
    def deflated(self) -> bool:
        return self is DatasetEncoding.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN


_IMPLICIT = {
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.20",  # Papyrus 3 Implicit VR Little Endian (retired)
}
_BIG_ENDIAN = {"1.2.840.10008.1.2.2"}
# PS3.5 A.5, A.7 and A.12: the data set after the file meta group is deflated.
_DEFLATED = {
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.95",  # JPIP Referenced Deflate
    "1.2.840.10008.1.2.4.205",  # JPIP HTJ2K Referenced Deflate
}
# Retired encodings whose "data set" is MIME or XML, not DICOM binary encoding.
_NOT_BINARY = {
    "1.2.840.10008.1.2.6.1",  # RFC 2557 MIME encapsulation
    "1.2.840.10008.1.2.6.2",  # XML Encoding
}
# Standard transfer syntaxes newer than pydicom 3.0's dictionary; Explicit VR Little Endian.
_NEWER_THAN_PYDICOM = {
    "1.2.840.10008.1.2.4.110",  # JPEG XL Lossless
    "1.2.840.10008.1.2.4.111",  # JPEG XL JPEG Recompression
    "1.2.840.10008.1.2.4.112",  # JPEG XL
    "1.2.840.10008.1.2.8.1",  # Deflated Image Frame Compression (frames, not the data set)
}


def _build_table() -> dict[str, DatasetEncoding]:
    uids = {uid for uid, entry in UID_dictionary.items() if entry[1] == "Transfer Syntax"}
    table = {}
    for uid in (uids | _NEWER_THAN_PYDICOM) - _NOT_BINARY:
        if uid in _IMPLICIT:
            table[uid] = DatasetEncoding.IMPLICIT_VR_LITTLE_ENDIAN
        elif uid in _BIG_ENDIAN:
            table[uid] = DatasetEncoding.EXPLICIT_VR_BIG_ENDIAN
        elif uid in _DEFLATED:
            table[uid] = DatasetEncoding.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
        else:
            table[uid] = DatasetEncoding.EXPLICIT_VR_LITTLE_ENDIAN
    return table


_TABLE = _build_table()


def dataset_encoding(transfer_syntax_uid: str) -> DatasetEncoding | None:
    """How the data set of ``transfer_syntax_uid`` is encoded; ``None`` if we cannot walk it.

    ``None`` means a private or unknown transfer syntax (or a retired non-binary one): a
    presentation context proposing it must be rejected. Trailing NUL or space padding of
    the UID is ignored.
    """
    return _TABLE.get(transfer_syntax_uid.rstrip("\0 "))


def standard_transfer_syntaxes() -> frozenset[str]:
    """Every transfer syntax UID for which :func:`dataset_encoding` is not ``None``."""
    return frozenset(_TABLE)
