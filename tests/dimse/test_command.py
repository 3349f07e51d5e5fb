"""Command sets: byte-exact vectors, cross-checked against pydicom, and decode errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from oxidicom.dimse.command import (
    NO_DATA_SET,
    CommandError,
    CommandValue,
    Tag,
    decode_command,
    encode_command,
)
from oxidicom.dimse.messages import (
    CEchoRQ,
    CEchoRSP,
    CStoreRQ,
    CStoreRSP,
    Message,
    decode_message,
    encode_message,
)

# Implicit VR Little Endian, group 0000, one element (header, then value) per pair of lines.

C_ECHO_RQ = bytes.fromhex(
    "000000000400000038000000"  # (0000,0000) CommandGroupLength UL: 56
    "0000020012000000"  # (0000,0002) AffectedSOPClassUID UI, 18 bytes
    "312E322E3834302E31303030382E312E3100"  # Verification, NUL-padded
    "0000000102000000"  # (0000,0100) CommandField US, 2 bytes
    "3000"  # 0x0030 C-ECHO-RQ
    "0000100102000000"  # (0000,0110) MessageID US, 2 bytes
    "0100"  # 1
    "0000000802000000"  # (0000,0800) CommandDataSetType US, 2 bytes
    "0101"  # 0x0101 no data set
)

C_ECHO_RSP = bytes.fromhex(
    "000000000400000042000000"  # (0000,0000) CommandGroupLength UL: 66
    "0000020012000000"  # (0000,0002) AffectedSOPClassUID UI, 18 bytes
    "312E322E3834302E31303030382E312E3100"  # Verification
    "0000000102000000"  # (0000,0100) CommandField US, 2 bytes
    "3080"  # 0x8030 C-ECHO-RSP
    "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US, 2 bytes
    "0100"  # 1
    "0000000802000000"  # (0000,0800) CommandDataSetType US, 2 bytes
    "0101"  # 0x0101
    "0000000902000000"  # (0000,0900) Status US, 2 bytes
    "0000"  # 0x0000 success
)

C_STORE_RQ = bytes.fromhex(
    "000000000400000076000000"  # (0000,0000) CommandGroupLength UL: 118
    "000002001A000000"  # (0000,0002) AffectedSOPClassUID UI, 26 bytes
    "312E322E3834302E31303030382E352E312E342E312E312E3200"  # CT Image Storage
    "0000000102000000"  # (0000,0100) CommandField US, 2 bytes
    "0100"  # 0x0001 C-STORE-RQ
    "0000100102000000"  # (0000,0110) MessageID US, 2 bytes
    "0700"  # 7
    "0000000702000000"  # (0000,0700) Priority US, 2 bytes
    "0200"  # 0x0002 low
    "0000000802000000"  # (0000,0800) CommandDataSetType US, 2 bytes
    "0100"  # 0x0001 a data set follows
    "000000100E000000"  # (0000,1000) AffectedSOPInstanceUID UI, 14 bytes
    "312E322E332E342E352E362E3700"  # 1.2.3.4.5.6.7
    "0000301004000000"  # (0000,1030) MoveOriginatorApplicationEntityTitle AE, 4 bytes
    "50414353"  # 'PACS'
    "0000311002000000"  # (0000,1031) MoveOriginatorMessageID US, 2 bytes
    "2A00"  # 42
)

C_STORE_RSP = bytes.fromhex(
    "000000000400000070000000"  # (0000,0000) CommandGroupLength UL: 112
    "000002001A000000"  # (0000,0002) AffectedSOPClassUID UI, 26 bytes
    "312E322E3834302E31303030382E352E312E342E312E312E3200"  # CT Image Storage
    "0000000102000000"  # (0000,0100) CommandField US, 2 bytes
    "0180"  # 0x8001 C-STORE-RSP
    "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US, 2 bytes
    "0700"  # 7
    "0000000802000000"  # (0000,0800) CommandDataSetType US, 2 bytes
    "0101"  # 0x0101
    "0000000902000000"  # (0000,0900) Status US, 2 bytes
    "00B0"  # 0xB000 coercion of data elements
    "0000020908000000"  # (0000,0902) ErrorComment LO, 8 bytes
    "436F657263656420"  # 'Coerced', space-padded
    "000000100E000000"  # (0000,1000) AffectedSOPInstanceUID UI, 14 bytes
    "312E322E332E342E352E362E3700"  # 1.2.3.4.5.6.7
)


CT = "1.2.840.10008.5.1.4.1.1.2"
VECTORS: dict[str, tuple[bytes, Message]] = {
    "C-ECHO-RQ": (C_ECHO_RQ, CEchoRQ(1)),
    "C-ECHO-RSP": (C_ECHO_RSP, CEchoRSP(1)),
    "C-STORE-RQ": (
        C_STORE_RQ,
        CStoreRQ(
            7, CT, "1.2.3.4.5.6.7", 2, move_originator_aet="PACS", move_originator_message_id=42
        ),
    ),
    "C-STORE-RSP": (C_STORE_RSP, CStoreRSP(7, CT, "1.2.3.4.5.6.7", 0xB000, "Coerced")),
}


@pytest.mark.parametrize("name", VECTORS)
def test_vector_encodes(name: str) -> None:
    wire, message = VECTORS[name]
    assert encode_message(message) == wire


@pytest.mark.parametrize("name", VECTORS)
def test_vector_decodes(name: str) -> None:
    wire, message = VECTORS[name]
    assert decode_message(wire) == message


def pydicom_command_set(elements: dict[str, object]) -> bytes:
    """The command set as pydicom writes it in Implicit VR Little Endian, with the group
    length computed from pydicom's own encoding of the other elements."""

    def encode(dataset: Dataset) -> bytes:
        buffer = DicomBytesIO()
        buffer.is_little_endian = True
        buffer.is_implicit_VR = True
        write_dataset(buffer, dataset)
        return bytes(buffer.getvalue())

    dataset = Dataset()
    for keyword, value in elements.items():
        setattr(dataset, keyword, value)
    body = encode(dataset)
    dataset.CommandGroupLength = len(body)
    return encode(dataset)


PYDICOM_ELEMENTS: dict[str, dict[str, object]] = {
    "C-ECHO-RQ": {
        "AffectedSOPClassUID": "1.2.840.10008.1.1",
        "CommandField": 0x0030,
        "MessageID": 1,
        "CommandDataSetType": 0x0101,
    },
    "C-ECHO-RSP": {
        "AffectedSOPClassUID": "1.2.840.10008.1.1",
        "CommandField": 0x8030,
        "MessageIDBeingRespondedTo": 1,
        "CommandDataSetType": 0x0101,
        "Status": 0x0000,
    },
    "C-STORE-RQ": {
        "AffectedSOPClassUID": CT,
        "CommandField": 0x0001,
        "MessageID": 7,
        "Priority": 2,
        "CommandDataSetType": 0x0001,
        "AffectedSOPInstanceUID": "1.2.3.4.5.6.7",
        "MoveOriginatorApplicationEntityTitle": "PACS",
        "MoveOriginatorMessageID": 42,
    },
    "C-STORE-RSP": {
        "AffectedSOPClassUID": CT,
        "CommandField": 0x8001,
        "MessageIDBeingRespondedTo": 7,
        "CommandDataSetType": 0x0101,
        "Status": 0xB000,
        "ErrorComment": "Coerced",
        "AffectedSOPInstanceUID": "1.2.3.4.5.6.7",
    },
}


@pytest.mark.parametrize("name", VECTORS)
def test_vector_is_what_pydicom_writes(name: str) -> None:
    assert pydicom_command_set(PYDICOM_ELEMENTS[name]) == VECTORS[name][0]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 0xFFFF),
    st.sampled_from([CT, "1.2.840.10008.5.1.4.1.1.4", "1.2.3"]),
    st.lists(st.integers(0, 99999).map(str), min_size=2, max_size=8).map(".".join),
    st.integers(0, 2),
    st.none() | st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=16),
    st.none() | st.integers(0, 0xFFFF),
)
def test_c_store_rq_matches_pydicom_and_round_trips(
    message_id: int,
    sop_class: str,
    instance: str,
    priority: int,
    originator: str | None,
    originator_id: int | None,
) -> None:
    message = CStoreRQ(message_id, sop_class, instance, priority, originator, originator_id)
    elements: dict[str, object] = {
        "AffectedSOPClassUID": sop_class,
        "CommandField": 0x0001,
        "MessageID": message_id,
        "Priority": priority,
        "CommandDataSetType": 0x0001,
        "AffectedSOPInstanceUID": instance,
    }
    if originator is not None:
        elements["MoveOriginatorApplicationEntityTitle"] = originator
    if originator_id is not None:
        elements["MoveOriginatorMessageID"] = originator_id
    wire = encode_message(message)
    assert wire == pydicom_command_set(elements)
    assert decode_message(wire) == message


# --- the generic codec ----------------------------------------------------------------------


def test_decode_types_every_value() -> None:
    wire = encode_command(
        {
            Tag.AffectedSOPClassUID: "1.2.3",
            Tag.CommandField: 0x0120,
            Tag.OffendingElement: (0x00100010, 0x00100020),
            Tag.ErrorComment: "odd",
            Tag.MoveDestination: "DEST",
            0x00000999: b"raw",
        }
    )
    assert decode_command(wire) == {
        Tag.CommandGroupLength: len(wire) - 12,
        Tag.AffectedSOPClassUID: "1.2.3",
        Tag.CommandField: 0x0120,
        Tag.OffendingElement: (0x00100010, 0x00100020),
        Tag.ErrorComment: "odd",
        Tag.MoveDestination: "DEST",
        0x00000999: b"raw\x00",
    }


def test_the_group_length_passed_in_is_replaced_by_the_real_one() -> None:
    elements: dict[int, CommandValue] = {Tag.CommandGroupLength: 999, Tag.MessageID: 1}
    assert decode_command(encode_command(elements))[Tag.CommandGroupLength] == 10


def test_non_ascii_error_comments_are_replaced_not_fatal() -> None:
    response = CStoreRSP(1, CT, "1.2.3", 0xA700, "disque plein: /données")
    decoded = decode_message(encode_message(response))
    assert isinstance(decoded, CStoreRSP)
    assert decoded.error_comment == "disque plein: /donn?es"


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (Tag.MessageID, 0x10000),
        (Tag.MessageID, -1),
        (Tag.CommandGroupLength + 0x0999, 5),  # no VR known: bytes only
        (Tag.AffectedSOPClassUID, "1.2.é"),
        (Tag.MoveOriginatorApplicationEntityTitle, 7),
        (Tag.OffendingElement, (1 << 32,)),
    ],
)
def test_what_cannot_be_encoded_is_a_command_error(tag: int, value: CommandValue) -> None:
    with pytest.raises(CommandError, match="cannot encode"):
        encode_command({tag: value})


DECODE_ERRORS = {
    "element header cut short": (bytes.fromhex("00000001020000"), "inside an element header"),
    "value beyond the command set": (
        bytes.fromhex("000000010400000030"),
        "declares 4 bytes, 1 remain",
    ),
    "element of another group": (bytes.fromhex("08001800020000003000"), "in a command set"),
    "element twice": (bytes.fromhex("0000100102000000010000001001020000000200"), "twice"),
    "US of 3 bytes": (bytes.fromhex("0000100103000000010000"), "US of 3 bytes"),
    "UL of 2 bytes": (bytes.fromhex("00000000020000000000"), "UL of 2 bytes"),
    "AT of 2 bytes": (bytes.fromhex("00000109020000000000"), "AT of 2 bytes"),
}


@pytest.mark.parametrize("case", DECODE_ERRORS)
def test_decode_errors(case: str) -> None:
    wire, message = DECODE_ERRORS[case]
    with pytest.raises(CommandError, match=message):
        decode_command(wire)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_decode_or_are_a_command_error(data: bytes) -> None:
    try:
        decode_message(data)
    except CommandError as error:
        failed: CommandError | None = error
    else:
        failed = None
    assert failed is None or str(failed)


def test_no_data_set_is_0101() -> None:
    assert NO_DATA_SET == 0x0101
