"""The DICOM Part 10 file header we put in front of each received data set.

A stored instance is the 128-byte preamble, ``DICM``, the File Meta Information group
(always Explicit VR Little Endian, PS3.10 §7.1) and then the data set bytes exactly as
they arrived. The meta group names the transfer syntax of the presentation context, so
readers know how to parse what follows.
"""

from __future__ import annotations

import struct

# One identity on the wire (A-ASSOCIATE) and in the files we write (PS3.10 7.1).
from oxidicom.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from oxidicom.storage.small_key_cache import small_key_cache

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "PREAMBLE_LENGTH",
    "encode_part10_header",
]

PREAMBLE_LENGTH = 128

_META_VERSION = b"\x00\x01"
_FILE_START = bytes(PREAMBLE_LENGTH) + b"DICM"
_SHORT_HEADER = struct.Struct("<HH2sH")
_LONG_HEADER = struct.Struct("<HH2s2xI")
_GROUP_LENGTH_HEADER = _SHORT_HEADER.pack(0x0002, 0x0000, b"UL", 4)
_U32 = struct.Struct("<I")


def encode_part10_header(
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax_uid: str,
    source_ae_title: str | None = None,
) -> bytes:
    """Return preamble, ``DICM`` and the File Meta Information group.

    ``sop_class_uid`` and ``sop_instance_uid`` become MediaStorageSOPClassUID and
    MediaStorageSOPInstanceUID (from the C-STORE request); ``source_ae_title`` becomes
    SourceApplicationEntityTitle, left out when it is not a valid AE value (empty, longer
    than 16, or outside the default repertoire: the element is optional, and a PACS with an
    odd AE title must not have every instance refused for it). Raises :class:`ValueError`
    for a UID that is not ASCII or is too long for its element.
    """
    before, after = _fixed_elements(sop_class_uid, transfer_syntax_uid, source_ae_title)
    uid = _uid(sop_instance_uid)
    instance = _SHORT_HEADER.pack(0x0002, 0x0003, b"UI", len(uid))
    length = _U32.pack(len(before) + len(instance) + len(uid) + len(after))
    return b"".join((_FILE_START, _GROUP_LENGTH_HEADER, length, before, instance, uid, after))


@small_key_cache(maxsize=256, max_chars=144)  # two UIDs of 64 and an AE title of 16
def _fixed_elements(
    sop_class_uid: str, transfer_syntax_uid: str, source_ae_title: str | None
) -> tuple[bytes, bytes]:
    """The meta elements before and after MediaStorageSOPInstanceUID: the same for every
    instance of an association's presentation context, so encoded once."""
    before = _element(0x0001, "OB", _META_VERSION) + _element(0x0002, "UI", _uid(sop_class_uid))
    after = [
        _element(0x0010, "UI", _uid(transfer_syntax_uid)),
        _element(0x0012, "UI", _uid(IMPLEMENTATION_CLASS_UID)),
        _element(0x0013, "SH", _text(IMPLEMENTATION_VERSION_NAME, 16)),
    ]
    if source_ae_title is not None and (ae_title := _ae_value(source_ae_title)):
        after.append(_element(0x0016, "AE", ae_title))
    return before, b"".join(after)


def _ae_value(title: str) -> bytes | None:
    """An AE value (PS3.5 §6.2: up to 16 characters of the default repertoire, no
    backslash or control characters), space-padded; ``None`` when ``title`` is not one."""
    title = title.strip()
    if not title or len(title) > 16 or not title.isascii() or not title.isprintable():
        return None
    if "\\" in title:
        return None
    return _text(title, 16)


def _uid(value: str) -> bytes:
    """A UI value, NUL-padded to even length (trailing padding of the input is dropped)."""
    encoded = _ascii(value.rstrip("\0 "), "UID")
    return encoded + b"\0" if len(encoded) % 2 else encoded


def _text(value: str, max_length: int) -> bytes:
    """An SH or AE value, space-padded to even length."""
    encoded = _ascii(value, "text")
    if len(encoded) > max_length:
        raise ValueError(f"{value!r} is longer than {max_length} characters")
    return encoded + b" " if len(encoded) % 2 else encoded


def _ascii(value: str, what: str) -> bytes:
    try:
        encoded = value.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {value!r} is not ASCII") from None
    if len(encoded) > 0xFFFE:
        raise ValueError(f"{what} of {len(encoded)} bytes is too long for the file meta group")
    return encoded


def _element(element: int, vr: str, value: bytes) -> bytes:
    if vr == "OB":
        return _LONG_HEADER.pack(0x0002, element, vr.encode(), len(value)) + value
    return _SHORT_HEADER.pack(0x0002, element, vr.encode(), len(value)) + value
