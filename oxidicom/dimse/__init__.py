"""DIMSE (PS3.7), sans-IO: command sets, typed messages, the message reader, statuses.

:class:`MessageReader` turns an association's P-DATA chunks into commands and streamed
data set chunks; :func:`send_message` sends a message on an association.
"""

from oxidicom.dimse import status
from oxidicom.dimse.command import CommandError, Tag, decode_command, encode_command
from oxidicom.dimse.messages import (
    VERIFICATION_SOP_CLASS,
    CEchoRQ,
    CEchoRSP,
    CommandField,
    CStoreRQ,
    CStoreRSP,
    Message,
    OtherCommand,
    Priority,
    decode_message,
    encode_message,
    has_data_set,
    unrecognized_operation_response,
)
from oxidicom.dimse.reader import (
    CommandReceived,
    CommandUndecodable,
    DimseEvent,
    MessageReader,
    ProtocolViolation,
)
from oxidicom.dimse.status import Category
from oxidicom.dimse.writer import fragment_length, send_message

__all__ = [
    "VERIFICATION_SOP_CLASS",
    "CEchoRQ",
    "CEchoRSP",
    "CStoreRQ",
    "CStoreRSP",
    "Category",
    "CommandError",
    "CommandField",
    "CommandReceived",
    "CommandUndecodable",
    "DimseEvent",
    "Message",
    "MessageReader",
    "OtherCommand",
    "Priority",
    "ProtocolViolation",
    "Tag",
    "decode_command",
    "decode_message",
    "encode_command",
    "encode_message",
    "fragment_length",
    "has_data_set",
    "send_message",
    "status",
    "unrecognized_operation_response",
]
