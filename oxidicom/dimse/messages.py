"""Typed DIMSE messages: C-ECHO and C-STORE, and a catch-all for the rest.

``decode_message`` turns a command set into one of these; anything it cannot type (C-FIND,
N-ACTION...) comes back as :class:`OtherCommand` so an SCP can answer "unrecognized
operation" and carry on. A command set missing what its message requires raises
:class:`~oxidicom.dimse.command.CommandError`, carrying what could be read (command field,
message ID, whether a data set follows) so the SCP can still answer with a failure.
"""

from __future__ import annotations

import enum
import struct
from typing import Final, TypeAlias

import attrs

from oxidicom.dimse.command import (
    NO_DATA_SET,
    CommandError,
    CommandValue,
    Tag,
    decode_command,
    encode_command,
)
from oxidicom.dimse.status import UNRECOGNIZED_OPERATION

VERIFICATION_SOP_CLASS: Final = "1.2.840.10008.1.1"
DATA_SET_PRESENT: Final = 0x0001


class CommandField(enum.IntEnum):
    """PS3.7 Annex E: a response's field is its request's with bit 15 set."""

    C_STORE_RQ = 0x0001
    C_GET_RQ = 0x0010
    C_FIND_RQ = 0x0020
    C_MOVE_RQ = 0x0021
    C_ECHO_RQ = 0x0030
    N_EVENT_REPORT_RQ = 0x0100
    N_GET_RQ = 0x0110
    N_SET_RQ = 0x0120
    N_ACTION_RQ = 0x0130
    N_CREATE_RQ = 0x0140
    N_DELETE_RQ = 0x0150
    C_CANCEL_RQ = 0x0FFF
    C_STORE_RSP = 0x8001
    C_GET_RSP = 0x8010
    C_FIND_RSP = 0x8020
    C_MOVE_RSP = 0x8021
    C_ECHO_RSP = 0x8030
    N_EVENT_REPORT_RSP = 0x8100
    N_GET_RSP = 0x8110
    N_SET_RSP = 0x8120
    N_ACTION_RSP = 0x8130
    N_CREATE_RSP = 0x8140
    N_DELETE_RSP = 0x8150


class Priority(enum.IntEnum):
    MEDIUM = 0x0000
    HIGH = 0x0001
    LOW = 0x0002


@attrs.frozen
class CEchoRQ:
    message_id: int
    affected_sop_class_uid: str = VERIFICATION_SOP_CLASS


@attrs.frozen
class CEchoRSP:
    message_id_being_responded_to: int
    status: int = 0x0000
    affected_sop_class_uid: str = VERIFICATION_SOP_CLASS


@attrs.frozen
class CStoreRQ:
    message_id: int
    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    priority: int = Priority.MEDIUM
    move_originator_aet: str | None = None
    move_originator_message_id: int | None = None


@attrs.frozen
class CStoreRSP:
    message_id_being_responded_to: int
    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    status: int = 0x0000
    error_comment: str | None = None
    """Free text (LO, at most 64 characters) for a failure or warning."""


@attrs.frozen
class OtherCommand:
    """A message this package does not serve; enough to answer it."""

    command_field: int
    message_id: int | None
    affected_sop_class_uid: str | None
    has_data_set: bool
    status: int | None = None
    """Responses only."""

    @property
    def is_request(self) -> bool:
        return not self.command_field & 0x8000


Message: TypeAlias = CEchoRQ | CEchoRSP | CStoreRQ | CStoreRSP | OtherCommand


def has_data_set(message: Message) -> bool:
    if isinstance(message, OtherCommand):
        return message.has_data_set
    return isinstance(message, CStoreRQ)


def encode_message(message: Message) -> bytes:
    """The command set of ``message``."""
    if type(message) is CStoreRSP:
        encoded = _encode_store_response(message)
        if encoded is not None:
            return encoded
    elements: dict[int, CommandValue] = {}
    match message:
        case CEchoRQ():
            elements = {
                Tag.AffectedSOPClassUID: message.affected_sop_class_uid,
                Tag.CommandField: CommandField.C_ECHO_RQ,
                Tag.MessageID: message.message_id,
                Tag.CommandDataSetType: NO_DATA_SET,
            }
        case CEchoRSP():
            elements = {
                Tag.AffectedSOPClassUID: message.affected_sop_class_uid,
                Tag.CommandField: CommandField.C_ECHO_RSP,
                Tag.MessageIDBeingRespondedTo: message.message_id_being_responded_to,
                Tag.CommandDataSetType: NO_DATA_SET,
                Tag.Status: message.status,
            }
        case CStoreRQ():
            elements = {
                Tag.AffectedSOPClassUID: message.affected_sop_class_uid,
                Tag.CommandField: CommandField.C_STORE_RQ,
                Tag.MessageID: message.message_id,
                Tag.Priority: message.priority,
                Tag.CommandDataSetType: DATA_SET_PRESENT,
                Tag.AffectedSOPInstanceUID: message.affected_sop_instance_uid,
            }
            if message.move_originator_aet is not None:
                elements[Tag.MoveOriginatorApplicationEntityTitle] = message.move_originator_aet
            if message.move_originator_message_id is not None:
                elements[Tag.MoveOriginatorMessageID] = message.move_originator_message_id
        case CStoreRSP():
            elements = {
                Tag.AffectedSOPClassUID: message.affected_sop_class_uid,
                Tag.CommandField: CommandField.C_STORE_RSP,
                Tag.MessageIDBeingRespondedTo: message.message_id_being_responded_to,
                Tag.CommandDataSetType: NO_DATA_SET,
                Tag.Status: message.status,
                Tag.AffectedSOPInstanceUID: message.affected_sop_instance_uid,
            }
            if message.error_comment:
                elements[Tag.ErrorComment] = message.error_comment[:64]
        case OtherCommand():
            elements = {
                Tag.CommandField: message.command_field,
                Tag.CommandDataSetType: DATA_SET_PRESENT if message.has_data_set else NO_DATA_SET,
            }
            if message.affected_sop_class_uid is not None:
                elements[Tag.AffectedSOPClassUID] = message.affected_sop_class_uid
            if message.message_id is not None:
                key = Tag.MessageID if message.is_request else Tag.MessageIDBeingRespondedTo
                elements[key] = message.message_id
            if message.status is not None:
                elements[Tag.Status] = message.status
    return encode_command(elements)


_STORE_RSP_START = struct.Struct("<HHII HHI")
"""CommandGroupLength, then the header of AffectedSOPClassUID."""
_STORE_RSP_MIDDLE = struct.Struct("<HHIH HHIH HHIH HHIH HHI")
"""CommandField, MessageIDBeingRespondedTo, CommandDataSetType, Status (all US), then the
header of AffectedSOPInstanceUID."""


def _encode_store_response(message: CStoreRSP) -> bytes | None:
    """A C-STORE-RSP without an error comment, encoded straight (one per stored instance);
    ``None`` when a value is out of range or not ASCII, for the generic path to report.
    The bytes are those :func:`encode_command` makes (a test holds the two together)."""
    message_id, status = message.message_id_being_responded_to, message.status
    if message.error_comment or not (0 <= message_id <= 0xFFFF and 0 <= status <= 0xFFFF):
        return None
    sop_class, sop_instance = message.affected_sop_class_uid, message.affected_sop_instance_uid
    if not (sop_class.isascii() and sop_instance.isascii()):
        return None
    class_uid = sop_class.encode() + b"\0" if len(sop_class) % 2 else sop_class.encode()
    instance_uid = sop_instance.encode() + b"\0" if len(sop_instance) % 2 else sop_instance.encode()
    group_length = 8 + len(class_uid) + 40 + 8 + len(instance_uid)
    start = _STORE_RSP_START.pack(0, 0, 4, group_length, 0, Tag.AffectedSOPClassUID, len(class_uid))
    # fmt: off
    middle = _STORE_RSP_MIDDLE.pack(
        0, Tag.CommandField, 2, CommandField.C_STORE_RSP,
        0, Tag.MessageIDBeingRespondedTo, 2, message_id,
        0, Tag.CommandDataSetType, 2, NO_DATA_SET,
        0, Tag.Status, 2, status,
        0, Tag.AffectedSOPInstanceUID, len(instance_uid),
    )
    # fmt: on
    return b"".join((start, class_uid, middle, instance_uid))


def unrecognized_operation_response(request: OtherCommand) -> OtherCommand:
    """The response to a request we do not serve: status 0x0211 (PS3.7 C.5.3)."""
    return OtherCommand(
        command_field=request.command_field | 0x8000,
        message_id=request.message_id,
        affected_sop_class_uid=request.affected_sop_class_uid,
        has_data_set=False,
        status=UNRECOGNIZED_OPERATION,
    )


_WITH_DATA_SET: dict[int, bool] = {CommandField.C_STORE_RQ: True}
"""Requests whose CommandDataSetType PS3.7 fixes (C.4.1) and that cannot be served without
it. A C-ECHO-RQ that says it has a data set is answered all the same, as it always was (a
data set that really follows then aborts the association)."""


def decode_message(data: bytes | memoryview) -> Message:
    """Type a command set; raises :class:`CommandError` when it lacks what it needs."""
    elements = decode_command(data)
    field = elements.get(Tag.CommandField)
    data_set_type = elements.get(Tag.CommandDataSetType)
    with_data = data_set_type != NO_DATA_SET if isinstance(data_set_type, int) else None
    is_response = isinstance(field, int) and bool(field & 0x8000)
    message_id = elements.get(Tag.MessageIDBeingRespondedTo if is_response else Tag.MessageID)
    known_id = message_id if isinstance(message_id, int) else None
    if not isinstance(field, int):
        raise CommandError("command set lacks CommandField", message_id=known_id)
    if with_data is None:
        raise CommandError(
            "command set lacks CommandDataSetType", command_field=field, message_id=known_id
        )
    if _WITH_DATA_SET.get(field, with_data) is not with_data:
        # A C-STORE-RQ announcing no data set would leave both sides waiting for the other.
        raise CommandError(
            f"command 0x{field:04X} {'without' if with_data is False else 'with'} a data set",
            command_field=field,
            message_id=known_id,
            has_data_set=with_data,
        )
    if field == CommandField.C_STORE_RQ:
        common = _common_store_request(elements)
        if common is not None:
            return common
    command = _Elements(elements, field, known_id, with_data)
    if field == CommandField.C_ECHO_RQ:
        return CEchoRQ(
            command.require_int(Tag.MessageID),
            command.require_str(Tag.AffectedSOPClassUID, VERIFICATION_SOP_CLASS),
        )
    if field == CommandField.C_ECHO_RSP:
        return CEchoRSP(
            command.require_int(Tag.MessageIDBeingRespondedTo),
            command.require_int(Tag.Status),
            command.require_str(Tag.AffectedSOPClassUID, VERIFICATION_SOP_CLASS),
        )
    if field == CommandField.C_STORE_RQ:
        return CStoreRQ(
            message_id=command.require_int(Tag.MessageID),
            affected_sop_class_uid=command.require_str(Tag.AffectedSOPClassUID),
            affected_sop_instance_uid=command.require_str(Tag.AffectedSOPInstanceUID),
            priority=command.optional_int(Tag.Priority) or Priority.MEDIUM,
            move_originator_aet=command.optional_str(Tag.MoveOriginatorApplicationEntityTitle),
            move_originator_message_id=command.optional_int(Tag.MoveOriginatorMessageID),
        )
    if field == CommandField.C_STORE_RSP:
        return CStoreRSP(
            message_id_being_responded_to=command.require_int(Tag.MessageIDBeingRespondedTo),
            affected_sop_class_uid=command.require_str(Tag.AffectedSOPClassUID, ""),
            affected_sop_instance_uid=command.require_str(Tag.AffectedSOPInstanceUID, ""),
            status=command.require_int(Tag.Status),
            error_comment=command.optional_str(Tag.ErrorComment),
        )
    return OtherCommand(
        command_field=field,
        message_id=known_id,
        affected_sop_class_uid=(
            command.optional_str(Tag.AffectedSOPClassUID)
            or command.optional_str(Tag.RequestedSOPClassUID)
        ),
        has_data_set=with_data,
        status=command.optional_int(Tag.Status),
    )


def _common_store_request(elements: dict[int, CommandValue]) -> CStoreRQ | None:
    """A C-STORE-RQ as nearly every SCU sends it (no C-MOVE originator), typed without the
    general path's bookkeeping; ``None`` for anything else, which the general path handles
    (and reports). Runs once per instance."""
    message_id = elements.get(Tag.MessageID)
    sop_class = elements.get(Tag.AffectedSOPClassUID)
    sop_instance = elements.get(Tag.AffectedSOPInstanceUID)
    priority = elements.get(Tag.Priority)
    if (
        type(message_id) is int
        and type(sop_class) is str
        and type(sop_instance) is str
        and sop_class.isascii()
        and sop_instance.isascii()
        and Tag.MoveOriginatorApplicationEntityTitle not in elements
        and Tag.MoveOriginatorMessageID not in elements
    ):
        return CStoreRQ(
            message_id,
            sop_class,
            sop_instance,
            priority if type(priority) is int and priority else Priority.MEDIUM,
        )
    return None


_ASCII_ONLY: Final = frozenset(
    {
        Tag.AffectedSOPClassUID,
        Tag.RequestedSOPClassUID,
        Tag.AffectedSOPInstanceUID,
        Tag.MoveOriginatorApplicationEntityTitle,
    }
)
"""UI and AE values a message keeps: PS3.5 restricts them to ASCII."""


@attrs.frozen
class _Elements:
    """Typed access to decoded elements, failing with what is known of the command."""

    elements: dict[int, CommandValue]
    field: int
    message_id: int | None
    has_data_set: bool

    def _missing(self, tag: Tag) -> CommandError:
        return CommandError(
            f"command 0x{self.field:04X} lacks {tag.name}",
            command_field=self.field,
            message_id=self.message_id,
            has_data_set=self.has_data_set,
        )

    def optional_int(self, tag: Tag) -> int | None:
        value = self.elements.get(tag)
        return value if isinstance(value, int) else None

    def optional_str(self, tag: Tag) -> str | None:
        value = self.elements.get(tag)
        if not isinstance(value, str):
            return None
        if tag in _ASCII_ONLY and not value.isascii():
            # A response echoes these; one that cannot be encoded back must not get that far.
            raise CommandError(
                f"command 0x{self.field:04X} has a {tag.name} that is not ASCII: {value!r}",
                command_field=self.field,
                message_id=self.message_id,
                has_data_set=self.has_data_set,
            )
        return value

    def require_int(self, tag: Tag) -> int:
        value = self.optional_int(tag)
        if value is None:
            raise self._missing(tag)
        return value

    def require_str(self, tag: Tag, default: str | None = None) -> str:
        value = self.optional_str(tag)
        if value is None:
            if default is None:
                raise self._missing(tag)
            return default
        return value
