"""DICOM Part 10 files, for library users: read one's header to send it as it is, or
write one's header in front of a received data set. See ``docs/library.md``.

Only the preamble, ``DICM`` and the File Meta Information group are read: the data set is
then streamed from ``data_set_offset`` without being parsed, in its own transfer syntax.
"""

from __future__ import annotations

import os
import struct

import attrs

from oxidicom.storage.filemeta import encode_part10_header

__all__ = [
    "NotPart10Error",
    "Part10Header",
    "encode_part10_header",
    "read_part10_header",
    "standard_transfer_syntaxes",
]

_PREAMBLE = 128
_EXPLICIT_HEADER = struct.Struct("<HH2s")
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})  # fmt: skip
_META_LIMIT = 64 * 1024
"""A file meta group bigger than this is not a file we want to send."""


class NotPart10Error(ValueError):
    """The file is not a DICOM Part 10 file we can send."""


@attrs.frozen
class Part10Header:
    """A file as :meth:`oxidicom.net.ClientAssociation.store_file` sends it: its UIDs, and
    where its data set starts."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    data_set_offset: int
    file_size: int

    @property
    def data_set_size(self) -> int:
        return self.file_size - self.data_set_offset


def read_part10_header(path: str | os.PathLike[str]) -> Part10Header:
    """Parse preamble and file meta of ``path``; raise :class:`NotPart10Error` if it has none."""
    name = os.fspath(path)
    with open(name, "rb") as file:
        head = file.read(_PREAMBLE + 4 + _META_LIMIT)
        size = os.fstat(file.fileno()).st_size
    if len(head) < _PREAMBLE + 4 or head[_PREAMBLE : _PREAMBLE + 4] != b"DICM":
        raise NotPart10Error(f"{name}: no DICM prefix (not a DICOM Part 10 file)")
    pos = _PREAMBLE + 4
    values: dict[int, bytes] = {}
    while pos + 8 <= len(head):
        group, element, vr = _EXPLICIT_HEADER.unpack_from(head, pos)
        if group != 0x0002:
            break
        if vr in _LONG_VRS:
            if pos + 12 > len(head):
                break
            (length,) = struct.unpack_from("<I", head, pos + 8)
            pos += 12
        else:
            (length,) = struct.unpack_from("<H", head, pos + 6)
            pos += 8
        if length == 0xFFFFFFFF or pos + length > len(head):
            raise NotPart10Error(f"{name}: malformed file meta element (0002,{element:04X})")
        values[element] = head[pos : pos + length]
        pos += length
    else:
        if size > len(head):
            raise NotPart10Error(f"{name}: file meta group larger than {_META_LIMIT} bytes")

    def uid(element: int, keyword: str) -> str:
        raw = values.get(element)
        if raw is None:
            raise NotPart10Error(f"{name}: file meta lacks {keyword}")
        return raw.rstrip(b"\x00 ").decode("ascii", "replace")

    return Part10Header(
        path=name,
        sop_class_uid=uid(0x0002, "MediaStorageSOPClassUID"),
        sop_instance_uid=uid(0x0003, "MediaStorageSOPInstanceUID"),
        transfer_syntax_uid=uid(0x0010, "TransferSyntaxUID"),
        data_set_offset=pos,
        file_size=size,
    )


def standard_transfer_syntaxes() -> frozenset[str]:
    """The standard transfer syntaxes whose data set can follow a Part 10 header as it came:
    what a storage SCP that writes files can accept. Imported on first call: the table comes
    from pydicom, which an SCU that only reads headers does not need to load."""
    from oxidicom.storage import transfer_syntax  # noqa: PLC0415 - see above

    return transfer_syntax.standard_transfer_syntaxes()
