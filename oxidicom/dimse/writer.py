"""Outgoing DIMSE messages as P-DATA request primitives on an association."""

from __future__ import annotations

from typing import Final

from oxidicom.dimse.messages import Message, encode_message
from oxidicom.ul.association import Association

UNLIMITED_FRAGMENT_LENGTH: Final = 1024 * 1024
"""Fragment size used when the peer announces no maximum length (0)."""


def fragment_length(association: Association) -> int:
    """Largest PDV data the peer accepts in one P-DATA-TF."""
    return association.max_data_length or UNLIMITED_FRAGMENT_LENGTH


def send_message(association: Association, context_id: int, message: Message, now: float) -> None:
    """Encode ``message``'s command set and send it in fragments the peer accepts."""
    raw = encode_message(message)
    size = fragment_length(association)
    view = memoryview(raw)
    for start in range(0, len(raw), size):
        piece = view[start : start + size]
        association.send_data(context_id, True, start + size >= len(raw), piece, now)
