"""MessageReader: commands reassembled (bounded), data sets passed through, order enforced."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.dimse.command import CommandError, Tag, encode_command
from oxidicom.dimse.messages import CEchoRQ, CStoreRQ, OtherCommand, encode_message
from oxidicom.dimse.reader import (
    DEFAULT_MAX_COMMAND_LENGTH,
    CommandReceived,
    CommandUndecodable,
    MessageReader,
    ProtocolViolation,
)
from oxidicom.ul.events import PDataChunk, PDataRun

CT = "1.2.840.10008.5.1.4.1.1.2"
STORE = CStoreRQ(7, CT, "1.2.3.4")
ECHO = CEchoRQ(8)


def command(context_id: int, data: bytes, *, last: bool = True) -> PDataChunk:
    return PDataChunk(context_id, True, last, memoryview(data))


def data_set(context_id: int, data: bytes, *, last: bool = True) -> PDataChunk:
    return PDataChunk(context_id, False, last, memoryview(data))


def test_a_command_in_one_fragment() -> None:
    reader = MessageReader()
    assert reader.feed(command(1, encode_message(ECHO))) == CommandReceived(1, ECHO, False)
    assert not reader.expecting_data_set


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 200), max_size=10))
def test_a_command_reassembled_from_any_fragments(cuts: list[int]) -> None:
    wire = encode_message(STORE)
    bounds = sorted({0, len(wire), *(c % len(wire) for c in cuts)})
    pieces = [wire[a:b] for a, b in itertools.pairwise(bounds)]
    reader = MessageReader()
    results = [reader.feed(command(3, p, last=i == len(pieces) - 1)) for i, p in enumerate(pieces)]
    assert results[:-1] == [None] * (len(pieces) - 1)
    assert results[-1] == CommandReceived(3, STORE, True)


def test_data_set_chunks_are_passed_through_as_the_same_objects() -> None:
    reader = MessageReader()
    reader.feed(command(3, encode_message(STORE)))
    expecting = [reader.expecting_data_set]
    chunks = [data_set(3, b"a", last=False), data_set(3, b"", last=False), data_set(3, b"b")]
    for chunk in chunks:
        assert reader.feed(chunk) is chunk
        expecting.append(reader.expecting_data_set)
    assert expecting == [True, True, True, False]
    assert reader.feed(command(1, encode_message(ECHO))) == CommandReceived(1, ECHO, False)


def run(context_id: int, *chunks: bytes, last: bool = True) -> PDataRun:
    return PDataRun(context_id, last, [memoryview(chunk) for chunk in chunks])


def test_runs_of_a_data_set_are_passed_through_as_the_same_objects() -> None:
    reader = MessageReader()
    reader.feed(command(3, encode_message(STORE)))
    first, second = run(3, b"a", b"b", last=False), run(3, b"c")
    assert reader.feed_run(first) is first
    assert reader.expecting_data_set
    assert reader.feed_run(second) is second
    assert not reader.expecting_data_set


def test_a_run_without_a_command_or_on_another_context_is_a_violation() -> None:
    violation = MessageReader().feed_run(run(1, b"x"))
    assert isinstance(violation, ProtocolViolation)
    assert "without a command" in violation.detail
    reader = MessageReader()
    reader.feed(command(3, encode_message(STORE)))
    violation = reader.feed_run(run(5, b"x"))
    assert isinstance(violation, ProtocolViolation)
    assert "its command came on 3" in violation.detail


def test_a_command_longer_than_the_cap_is_a_violation() -> None:
    reader = MessageReader(max_command_length=100)
    assert reader.feed(command(1, bytes(60), last=False)) is None
    assert reader.feed(command(1, bytes(40), last=False)) is None
    violation = reader.feed(command(1, bytes(1), last=False))
    assert violation == ProtocolViolation("command set longer than 100 bytes")
    assert DEFAULT_MAX_COMMAND_LENGTH == 64 * 1024


def test_a_data_set_without_a_command_is_a_violation() -> None:
    violation = MessageReader().feed(data_set(1, b"x"))
    assert isinstance(violation, ProtocolViolation)
    assert "without a command" in violation.detail


def test_a_data_set_after_a_command_announcing_none_is_a_violation() -> None:
    reader = MessageReader()
    reader.feed(command(1, encode_message(ECHO)))
    assert isinstance(reader.feed(data_set(1, b"x")), ProtocolViolation)


def test_a_data_set_on_another_context_is_a_violation() -> None:
    reader = MessageReader()
    reader.feed(command(3, encode_message(STORE)))
    violation = reader.feed(data_set(5, b"x"))
    assert isinstance(violation, ProtocolViolation)
    assert "its command came on 3" in violation.detail


def test_a_command_while_a_data_set_is_due_is_a_violation() -> None:
    reader = MessageReader()
    reader.feed(command(3, encode_message(STORE)))
    reader.feed(data_set(3, b"x", last=False))
    violation = reader.feed(command(3, encode_message(ECHO)))
    assert violation == ProtocolViolation("command fragment while a data set was expected")


def test_a_command_continued_on_another_context_is_a_violation() -> None:
    reader = MessageReader()
    wire = encode_message(STORE)
    reader.feed(command(3, wire[:10], last=False))
    violation = reader.feed(command(5, wire[10:]))
    assert isinstance(violation, ProtocolViolation)
    assert "in the middle of a command on 3" in violation.detail


def test_an_undecodable_command_announcing_a_data_set_lets_it_be_read() -> None:
    wire = encode_command({Tag.CommandField: 0x0001, Tag.MessageID: 4, Tag.CommandDataSetType: 1})
    reader = MessageReader()
    result = reader.feed(command(3, wire))
    assert isinstance(result, CommandUndecodable)
    assert result.context_id == 3
    assert (result.error.command_field, result.error.message_id) == (0x0001, 4)
    assert reader.expecting_data_set
    chunk = data_set(3, b"dropped")
    assert reader.feed(chunk) is chunk


def test_an_undecodable_command_without_a_data_set_is_answerable() -> None:
    wire = encode_command({Tag.CommandField: 0x0030, Tag.CommandDataSetType: 0x0101})
    result = MessageReader().feed(command(1, wire))
    assert isinstance(result, CommandUndecodable)
    assert isinstance(result.error, CommandError)
    assert result.error.has_data_set is False


def test_a_command_set_that_does_not_parse_is_a_violation() -> None:
    violation = MessageReader().feed(command(1, b"\x00\x00\x00\x01\x02"))
    assert isinstance(violation, ProtocolViolation)
    assert violation.detail.startswith("undecodable command set")


def test_other_commands_come_through_typed() -> None:
    find = OtherCommand(0x0020, 2, "1.2.3", True)
    reader = MessageReader()
    assert reader.feed(command(1, encode_message(find))) == CommandReceived(1, find, True)
    assert reader.expecting_data_set
