"""The DIMSE command set (PS3.7 §9.3, §E): group 0000 elements in Implicit VR Little Endian.

A command set is always Implicit VR LE, whatever the presentation context says, and starts
with Command Group Length (0000,0000). :func:`decode_command` checks each element length
against the bytes present and knows the VR of every command element of PS3.7 Annex E, so
values come out typed (``int`` for US/UL, ``str`` for UI/AE/LO, ``tuple[int, ...]`` for AT).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from typing import Final, TypeAlias

CommandValue: TypeAlias = int | str | tuple[int, ...] | bytes


class Tag(enum.IntEnum):
    """Command elements (PS3.7 Annex E), as ``group << 16 | element``."""

    CommandGroupLength = 0x00000000
    AffectedSOPClassUID = 0x00000002
    RequestedSOPClassUID = 0x00000003
    CommandField = 0x00000100
    MessageID = 0x00000110
    MessageIDBeingRespondedTo = 0x00000120
    MoveDestination = 0x00000600
    Priority = 0x00000700
    CommandDataSetType = 0x00000800
    Status = 0x00000900
    OffendingElement = 0x00000901
    ErrorComment = 0x00000902
    ErrorID = 0x00000903
    AffectedSOPInstanceUID = 0x00001000
    RequestedSOPInstanceUID = 0x00001001
    EventTypeID = 0x00001002
    AttributeIdentifierList = 0x00001005
    ActionTypeID = 0x00001008
    NumberOfRemainingSuboperations = 0x00001020
    NumberOfCompletedSuboperations = 0x00001021
    NumberOfFailedSuboperations = 0x00001022
    NumberOfWarningSuboperations = 0x00001023
    MoveOriginatorApplicationEntityTitle = 0x00001030
    MoveOriginatorMessageID = 0x00001031


_VR: Final[Mapping[int, str]] = {
    Tag.CommandGroupLength: "UL",
    Tag.AffectedSOPClassUID: "UI",
    Tag.RequestedSOPClassUID: "UI",
    Tag.CommandField: "US",
    Tag.MessageID: "US",
    Tag.MessageIDBeingRespondedTo: "US",
    Tag.MoveDestination: "AE",
    Tag.Priority: "US",
    Tag.CommandDataSetType: "US",
    Tag.Status: "US",
    Tag.OffendingElement: "AT",
    Tag.ErrorComment: "LO",
    Tag.ErrorID: "US",
    Tag.AffectedSOPInstanceUID: "UI",
    Tag.RequestedSOPInstanceUID: "UI",
    Tag.EventTypeID: "US",
    Tag.AttributeIdentifierList: "AT",
    Tag.ActionTypeID: "US",
    Tag.NumberOfRemainingSuboperations: "US",
    Tag.NumberOfCompletedSuboperations: "US",
    Tag.NumberOfFailedSuboperations: "US",
    Tag.NumberOfWarningSuboperations: "US",
    Tag.MoveOriginatorApplicationEntityTitle: "AE",
    Tag.MoveOriginatorMessageID: "US",
}

NO_DATA_SET: Final = 0x0101
"""CommandDataSetType value meaning "no data set follows"; any other value means one does."""

_ELEMENT_HEADER = struct.Struct("<HHI")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class CommandError(ValueError):
    """A command set that cannot be decoded (or encoded).

    Carries what could be read of it, so that an SCP may still answer the request with a
    failure status instead of aborting the association.
    """

    def __init__(
        self,
        message: str,
        *,
        command_field: int | None = None,
        message_id: int | None = None,
        has_data_set: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.command_field = command_field
        self.message_id = message_id
        self.has_data_set = has_data_set


def decode_command(data: bytes | memoryview) -> dict[int, CommandValue]:
    """Elements of a command set by tag; elements of other groups are an error.

    One loop, values decoded in place: it runs for every message (twice per instance).
    """
    elements: dict[int, CommandValue] = {}
    pos, end = 0, len(data)
    unpack_header = _ELEMENT_HEADER.unpack_from
    vrs = _VR
    while pos < end:
        if end - pos < 8:
            raise CommandError(f"command set ends inside an element header at byte {pos}")
        group, element, length = unpack_header(data, pos)
        pos += 8
        if group != 0x0000:
            raise CommandError(f"element ({group:04X},{element:04X}) in a command set")
        tag = element  # group 0000
        if tag in elements:
            raise CommandError(f"element (0000,{element:04X}) appears twice")
        if length > end - pos:
            raise CommandError(
                f"element (0000,{element:04X}) declares {length} bytes, {end - pos} remain"
            )
        vr = vrs.get(tag)
        value: CommandValue
        if vr == "US":
            if length != 2:
                raise CommandError(f"(0000,{element:04X}) US of {length} bytes")
            value = _U16.unpack_from(data, pos)[0]
        elif vr == "UI":
            value = bytes(data[pos : pos + length]).rstrip(b"\x00 ").decode("latin-1")
        elif vr == "UL":
            if length != 4:
                raise CommandError(f"(0000,{element:04X}) UL of {length} bytes")
            value = _U32.unpack_from(data, pos)[0]
        elif vr in {"AE", "LO"}:
            value = bytes(data[pos : pos + length]).decode("latin-1").strip(" \x00")
        elif vr == "AT":
            if length % 4:
                raise CommandError(f"(0000,{element:04X}) AT of {length} bytes")
            pairs = struct.unpack_from(f"<{length // 2}H", data, pos)
            value = tuple(pairs[i] << 16 | pairs[i + 1] for i in range(0, len(pairs), 2))
        else:
            value = bytes(data[pos : pos + length])
        elements[tag] = value
        pos += length
    return elements


def encode_command(elements: Mapping[int, CommandValue]) -> bytes:
    """Encode elements (CommandGroupLength is computed and put first; do not pass it)."""
    parts: list[bytes] = []
    size = 0
    pack_header = _ELEMENT_HEADER.pack
    for tag in sorted(elements):
        if tag == Tag.CommandGroupLength:
            continue
        value = elements[tag]
        if _VR.get(tag) == "US" and type(value) is int and 0 <= value <= 0xFFFF:
            raw = _U16.pack(value)  # the common case, inline
        else:
            raw = _encode_value(tag, value)
        parts.append(pack_header(tag >> 16, tag & 0xFFFF, len(raw)))
        parts.append(raw)
        size += 8 + len(raw)
    return _ELEMENT_HEADER.pack(0, 0, 4) + _U32.pack(size) + b"".join(parts)


def _encode_value(tag: int, value: CommandValue) -> bytes:
    vr = _VR.get(tag)
    if vr == "US" and isinstance(value, int) and 0 <= value <= 0xFFFF:
        return _U16.pack(value)
    if vr == "UL" and isinstance(value, int) and 0 <= value <= 0xFFFFFFFF:
        return _U32.pack(value)
    if vr == "AT" and isinstance(value, tuple) and all(0 <= t <= 0xFFFFFFFF for t in value):
        return b"".join(struct.pack("<HH", t >> 16, t & 0xFFFF) for t in value)
    if vr in ("UI", "AE") and isinstance(value, str) and value.isascii():
        raw = value.encode("ascii")
        pad = b"\x00" if vr == "UI" else b" "
        return raw + pad if len(raw) % 2 else raw
    if vr == "LO" and isinstance(value, str):
        # Free text (an error comment may quote an OS error): the command set's repertoire
        # is ASCII, so anything else becomes "?" rather than failing the response.
        raw = value.encode("ascii", errors="replace")
        return raw + b" " if len(raw) % 2 else raw
    if vr is None and isinstance(value, bytes):
        return value + b"\x00" if len(value) % 2 else value
    raise CommandError(f"cannot encode {value!r} as (0000,{tag & 0xFFFF:04X}) {vr}")
