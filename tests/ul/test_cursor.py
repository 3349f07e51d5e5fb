"""Cursors: a reader never reads past its bound, a writer never writes a lying length."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.ul.constants import AbortReason
from oxidicom.ul.cursor import Reader, Writer
from oxidicom.ul.errors import LocalProtocolError, RemoteProtocolError


def test_pulls_are_big_endian() -> None:
    reader = Reader(b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a")
    assert reader.pull_uint8() == 0x01
    assert reader.pull_uint16() == 0x0203
    assert reader.pull_uint32() == 0x04050607
    assert reader.pull_bytes(2) == b"\x08\x09"
    assert reader.remaining == 1
    reader.skip(1)
    assert reader.at_end()


def test_a_sub_reader_is_bounded_and_its_parent_skips_it() -> None:
    reader = Reader(b"abcdef")
    sub = reader.sub(3, "item")
    assert reader.pull_bytes(3) == b"def"
    assert sub.pull_bytes(3) == b"abc"
    with pytest.raises(RemoteProtocolError, match="item field: needs 1 bytes, only 0 left"):
        sub.pull_uint8("item field")


@pytest.mark.parametrize(
    "pull",
    [
        lambda r: r.pull_uint8(),
        lambda r: r.pull_uint16(),
        lambda r: r.pull_uint32(),
        lambda r: r.pull_bytes(4),
        lambda r: r.skip(4),
        lambda r: r.sub(4, "sub"),
    ],
)
def test_pulling_past_the_end_is_a_remote_error(pull: Callable[[Reader], object]) -> None:
    reader = Reader(b"\x00\x01\x02", start=0, end=0)
    with pytest.raises(RemoteProtocolError) as raised:
        pull(reader)
    assert raised.value.reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=16), st.lists(st.integers(0, 5), max_size=12))
def test_no_sequence_of_pulls_reads_beyond_the_data(data: bytes, pulls: list[int]) -> None:
    reader = Reader(data)
    taken = 0
    for pull in pulls:
        try:
            if pull == 0:
                reader.pull_uint8()
                taken += 1
            elif pull == 1:
                reader.pull_uint16()
                taken += 2
            elif pull == 2:
                reader.pull_uint32()
                taken += 4
            elif pull == 3:
                taken += len(reader.pull_bytes(3))
            elif pull == 4:
                reader.skip(2)
                taken += 2
            else:
                reader.sub(1, "sub")
                taken += 1
        except RemoteProtocolError:
            continue
    assert taken <= len(data)
    assert reader.remaining == len(data) - taken


def test_length_prefixed_back_fills_the_length() -> None:
    writer = Writer()
    writer.push_uint8(0x10)
    with writer.length_prefixed(2):
        writer.push_bytes(b"abc")
    with writer.length_prefixed(4):
        writer.push_uint16(7)
    assert writer.getvalue() == b"\x10\x00\x03abc\x00\x00\x00\x02\x00\x07"


def test_a_field_longer_than_its_length_is_a_local_error() -> None:
    writer = Writer()
    with (
        pytest.raises(LocalProtocolError, match="exceeds its 2-byte length"),
        writer.length_prefixed(2),
    ):
        writer.push_bytes(bytes(0x10000))
