"""LONK ("Light Oxidicom NotifiKations"): the progress messages the ChRIS UI reads from NATS.

A payload is one tag byte and an optional body (contract §4):

========  ====================================================
done      ``0x00``
progress  ``0x01`` then the instance count, u32 little-endian
error     ``0x02`` then a UTF-8 message
========  ====================================================

Each series has its own subject, ``{root}.{pacs}.{SeriesInstanceUID}``, with the characters
NATS gives a meaning to (``.`` token separator, ``*`` and ``>`` wildcards, space) replaced in
the two variable parts, so that a UID becomes exactly one token.
"""

from __future__ import annotations

import struct
from typing import Final

import attrs

DONE_TAG: Final = 0x00
PROGRESS_TAG: Final = 0x01
ERROR_TAG: Final = 0x02

DONE: Final = bytes([DONE_TAG])
"""The payload of the last message of a series in an association."""

UNKNOWN_SERIES: Final = "UNKNOWN"
"""Stands for the SeriesInstanceUID of an instance that has none (contract §4)."""

_U32_MAX: Final = 0xFFFFFFFF
_PROGRESS: Final = struct.Struct("<BI")
_SUBJECT_TABLE: Final = str.maketrans(
    {
        " ": "_",
        ".": "_",
        "*": "_",
        ">": "_",
        "\0": None,
        # Beyond the contract: other white space and control characters are not allowed in a
        # NATS subject either (the message would be refused). Valid AE titles and UIDs never
        # contain them, so CUBE's subscriptions are unaffected.
        **{chr(code): "_" for code in (*range(1, 0x20), 0x7F) if code != 0},
        **{character: "_" for character in "\u0085\u00a0\u2028\u2029"},
    }
)


def progress(count: int) -> bytes:
    """Payload telling that ``count`` instances of the series are stored so far."""
    if not 0 <= count <= _U32_MAX:
        raise ValueError(f"LONK progress count must fit in a u32, got {count}")
    return _PROGRESS.pack(PROGRESS_TAG, count)


def error(message: str) -> bytes:
    """Payload carrying a human-readable error.

    Text that cannot be UTF-8 (lone surrogates from a badly decoded data set) is replaced,
    never raised: an error report must not itself fail.
    """
    return bytes([ERROR_TAG]) + message.encode("utf-8", errors="replace")


def subject(root: str, pacs: str, series_instance_uid: str) -> str:
    """NATS subject of one series received from ``pacs`` (its calling AE title)."""
    return f"{root}.{subject_token(pacs)}.{subject_token(series_instance_uid)}"


def subject_token(text: str) -> str:
    """Make ``text`` one plain NATS token: drop NUL, replace space ``.`` ``*`` ``>`` (and
    any other white space or control character) by ``_``."""
    return text.translate(_SUBJECT_TABLE)


@attrs.frozen
class Done:
    pass


@attrs.frozen
class Progress:
    count: int


@attrs.frozen
class Error:
    message: str


Message = Done | Progress | Error


def encode(message: Message) -> bytes:
    match message:
        case Done():
            return DONE
        case Progress(count):
            return progress(count)
        case Error(text):
            return error(text)


def decode(payload: bytes) -> Message:
    """Parse a LONK payload (what a subscriber such as CUBE does); ``ValueError`` if invalid."""
    if not payload:
        raise ValueError("empty LONK payload")
    tag, body = payload[0], payload[1:]
    if tag == DONE_TAG and not body:
        return Done()
    if tag == PROGRESS_TAG and len(body) == 4:
        return Progress(int.from_bytes(body, "little"))
    if tag == ERROR_TAG:
        return Error(body.decode("utf-8"))
    raise ValueError(f"not a LONK payload: {payload!r}")
