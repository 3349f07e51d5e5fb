"""Typed messages: what each requires, what an SCP can still answer when it is missing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.dimse.command import NO_DATA_SET, CommandError, CommandValue, Tag, encode_command
from oxidicom.dimse.messages import (
    DATA_SET_PRESENT,
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
from oxidicom.dimse.status import UNRECOGNIZED_OPERATION

CT = "1.2.840.10008.5.1.4.1.1.2"


def test_a_c_echo_without_its_sop_class_is_a_verification() -> None:
    wire = encode_command(
        {
            Tag.CommandField: CommandField.C_ECHO_RQ,
            Tag.MessageID: 5,
            Tag.CommandDataSetType: NO_DATA_SET,
        }
    )
    assert decode_message(wire) == CEchoRQ(5, VERIFICATION_SOP_CLASS)


def test_a_c_store_without_priority_is_medium() -> None:
    elements: dict[int, CommandValue] = {
        Tag.AffectedSOPClassUID: CT,
        Tag.CommandField: CommandField.C_STORE_RQ,
        Tag.MessageID: 3,
        Tag.CommandDataSetType: DATA_SET_PRESENT,
        Tag.AffectedSOPInstanceUID: "1.2.3",
    }
    decoded = decode_message(encode_command(elements))
    assert decoded == CStoreRQ(3, CT, "1.2.3", Priority.MEDIUM)
    assert has_data_set(decoded)


def test_any_data_set_type_but_0101_means_a_data_set_follows() -> None:
    wire = encode_command(
        {Tag.CommandField: 0x0020, Tag.MessageID: 1, Tag.CommandDataSetType: 0xFEFE}
    )
    decoded = decode_message(wire)
    assert decoded == OtherCommand(0x0020, 1, None, True)
    assert has_data_set(decoded)


def _store_without(tag: Tag) -> bytes:
    elements: dict[int, CommandValue] = {
        Tag.AffectedSOPClassUID: CT,
        Tag.CommandField: CommandField.C_STORE_RQ,
        Tag.MessageID: 9,
        Tag.CommandDataSetType: DATA_SET_PRESENT,
        Tag.AffectedSOPInstanceUID: "1.2.3",
    }
    del elements[tag]
    return encode_command(elements)


@pytest.mark.parametrize(
    ("missing", "field", "message_id", "with_data"),
    [
        (Tag.AffectedSOPClassUID, 0x0001, 9, True),
        (Tag.AffectedSOPInstanceUID, 0x0001, 9, True),
        (Tag.MessageID, 0x0001, None, True),
        (Tag.CommandDataSetType, 0x0001, 9, None),
        (Tag.CommandField, None, 9, None),
    ],
)
def test_a_missing_element_is_an_error_carrying_what_is_known(
    missing: Tag, field: int | None, message_id: int | None, with_data: bool | None
) -> None:
    with pytest.raises(CommandError) as raised:
        decode_message(_store_without(missing))
    error = raised.value
    assert (error.command_field, error.message_id, error.has_data_set) == (
        field,
        message_id,
        with_data,
    )


@pytest.mark.parametrize(
    "tag",
    [Tag.AffectedSOPClassUID, Tag.AffectedSOPInstanceUID, Tag.MoveOriginatorApplicationEntityTitle],
)
def test_a_non_ascii_uid_or_title_is_undecodable_not_echoed(tag: Tag) -> None:
    """A response echoes these: one the encoder would refuse is caught on the way in."""
    elements: dict[int, CommandValue] = {
        Tag.AffectedSOPClassUID: CT,
        Tag.CommandField: CommandField.C_STORE_RQ,
        Tag.MessageID: 9,
        Tag.CommandDataSetType: DATA_SET_PRESENT,
        Tag.AffectedSOPInstanceUID: "1.2.3",
    }
    wire = bytearray(encode_command(elements | {tag: "1.2.3x"}))
    wire[wire.index(b"1.2.3x") + 5] = 0xE9  # "1.2.3é" in Latin-1
    with pytest.raises(CommandError, match="not ASCII") as raised:
        decode_message(bytes(wire))
    assert (raised.value.command_field, raised.value.message_id) == (0x0001, 9)
    assert raised.value.has_data_set


def test_other_commands_are_typed_enough_to_answer() -> None:
    find = OtherCommand(CommandField.C_FIND_RQ, 4, "1.2.840.10008.5.1.4.1.2.2.1", True)
    decoded = decode_message(encode_message(find))
    assert decoded == find
    assert isinstance(decoded, OtherCommand)
    assert decoded.is_request
    response = unrecognized_operation_response(decoded)
    assert response == OtherCommand(
        0x8020, 4, find.affected_sop_class_uid, False, UNRECOGNIZED_OPERATION
    )
    assert not response.is_request
    assert decode_message(encode_message(response)) == response


def test_an_n_service_names_its_class_in_requested_sop_class_uid() -> None:
    wire = encode_command(
        {
            Tag.CommandField: CommandField.N_ACTION_RQ,
            Tag.MessageID: 2,
            Tag.CommandDataSetType: NO_DATA_SET,
            Tag.RequestedSOPClassUID: "1.2.840.10008.1.20.1",
        }
    )
    assert decode_message(wire) == OtherCommand(0x0130, 2, "1.2.840.10008.1.20.1", False)


def test_an_error_comment_is_cut_to_64_characters() -> None:
    response = CStoreRSP(1, CT, "1.2.3", 0xA700, "x" * 100)
    decoded = decode_message(encode_message(response))
    assert isinstance(decoded, CStoreRSP)
    assert decoded.error_comment == "x" * 64


_UIDS = st.lists(st.integers(0, 9999).map(str), min_size=2, max_size=6).map(".".join)
MESSAGES: st.SearchStrategy[Message] = st.one_of(
    st.builds(CEchoRQ, st.integers(0, 0xFFFF), _UIDS),
    st.builds(CEchoRSP, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), _UIDS),
    st.builds(
        CStoreRQ,
        st.integers(0, 0xFFFF),
        _UIDS,
        _UIDS,
        st.sampled_from(list(Priority)),
        st.none() | st.text("ABCXYZ019_-", min_size=1, max_size=16),
        st.none() | st.integers(0, 0xFFFF),
    ),
    st.builds(
        CStoreRSP,
        st.integers(0, 0xFFFF),
        _UIDS,
        _UIDS,
        st.integers(0, 0xFFFF),
        st.none() | st.text("abc XYZ.:/", min_size=1, max_size=64).map(str.strip).filter(bool),
    ),
    st.builds(
        OtherCommand,
        st.sampled_from([f for f in CommandField if f not in (1, 0x30, 0x8001, 0x8030)]),
        st.integers(0, 0xFFFF),
        st.none() | _UIDS,
        st.booleans(),
        st.none() | st.integers(0, 0xFFFF),
    ),
)


@settings(max_examples=100, deadline=None)
@given(MESSAGES)
def test_messages_round_trip(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@settings(max_examples=200, deadline=None)
@given(
    st.integers(-1, 0x10000),
    st.text(min_size=0, max_size=70),
    _UIDS | st.text(max_size=70),
    st.integers(-1, 0x10000),
)
def test_a_store_response_is_encoded_as_the_generic_encoder_would(
    message_id: int, sop_class: str, sop_instance: str, status: int
) -> None:
    # The C-STORE-RSP has a hand-written encoder (it answers every instance): same bytes,
    # and the same error for what cannot be encoded.
    response = CStoreRSP(message_id, sop_class, sop_instance, status)
    elements: dict[int, CommandValue] = {
        Tag.AffectedSOPClassUID: sop_class,
        Tag.CommandField: CommandField.C_STORE_RSP,
        Tag.MessageIDBeingRespondedTo: message_id,
        Tag.CommandDataSetType: NO_DATA_SET,
        Tag.Status: status,
        Tag.AffectedSOPInstanceUID: sop_instance,
    }
    try:
        expected = encode_command(elements)
    except CommandError:
        with pytest.raises(CommandError):
            encode_message(response)
    else:
        assert encode_message(response) == expected
