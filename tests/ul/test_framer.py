"""The framer: the same events whatever the chunking, constant memory, caps checked first."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.testing import strategies as ul
from oxidicom.ul.constants import AbortReason, PduType
from oxidicom.ul.events import PDataChunk
from oxidicom.ul.framer import (
    ASSOCIATE_LENGTH_CAP,
    HARD_PDU_LENGTH_CAP,
    Framer,
    FramerEvent,
    FramingError,
    PDataStarted,
    PduReceived,
)
from oxidicom.ul.pdus import PDataTF, Pdu, PresentationDataValue, encode_pdu

from . import vectors


def drain(framer: Framer) -> list[FramerEvent]:
    events: list[FramerEvent] = []
    while (event := framer.next_event()) is not None:
        events.append(event)
    return events


def feed_all(framer: Framer, *pieces: bytes | bytearray) -> list[FramerEvent]:
    events: list[FramerEvent] = []
    for piece in pieces:
        framer.feed(piece)
        events += drain(framer)
    return events


def header(pdu_type: int, length: int) -> bytes:
    return bytes((pdu_type, 0)) + length.to_bytes(4, "big")


def framing_error(events: Sequence[FramerEvent]) -> AbortReason:
    assert len(events) == 1
    (event,) = events
    assert isinstance(event, FramingError)
    return AbortReason(event.error.reason)


# --- one PDU at a time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["A_ASSOCIATE_RQ", "A_ASSOCIATE_AC", "A_ASSOCIATE_RJ", "A_RELEASE_RQ", "A_RELEASE_RP"]
)
def test_a_pdu_other_than_pdata_arrives_whole(name: str) -> None:
    wire: bytes = getattr(vectors, name)
    assert feed_all(Framer(), wire) == [PduReceived(wire[0], wire[6:])]


def test_pdata_arrives_as_its_pdvs_without_a_copy() -> None:
    wire = bytearray(vectors.P_DATA_TF)
    framer = Framer()
    events = feed_all(framer, wire)
    assert events[0] == PDataStarted(len(wire) - 6)
    first, second = events[1:]
    assert isinstance(first, PDataChunk)
    assert isinstance(second, PDataChunk)
    assert (first.context_id, first.is_command, first.is_last) == (1, True, True)
    assert bytes(first.data) == wire[12:80]
    assert (second.context_id, second.is_command, second.is_last) == (3, False, False)
    assert bytes(second.data) == b"\x08\x00\x18\x00"
    assert first.data.obj is wire  # a view into the caller's buffer


def test_a_pdv_split_across_reads_comes_in_pieces_and_only_the_last_is_last() -> None:
    wire = encode_pdu(PDataTF((PresentationDataValue(1, False, True, b"abcdef"),)))
    framer = Framer()
    events = feed_all(framer, wire[:14], wire[14:16], wire[16:])
    chunks = [e for e in events if isinstance(e, PDataChunk)]
    assert [bytes(c.data) for c in chunks] == [b"ab", b"cd", b"ef"]
    assert [c.is_last for c in chunks] == [False, False, True]


def test_an_empty_pdv_is_reported() -> None:
    wire = encode_pdu(PDataTF((PresentationDataValue(3, True, True, b""),)))
    events = feed_all(Framer(), wire)
    assert events[1:] == [PDataChunk(3, True, True, memoryview(b""))]


def test_feeding_again_before_draining_keeps_the_unread_bytes() -> None:
    framer = Framer()
    framer.feed(vectors.A_RELEASE_RQ[:3])
    framer.feed(vectors.A_RELEASE_RQ[3:] + vectors.A_RELEASE_RP)
    assert drain(framer) == [
        PduReceived(PduType.A_RELEASE_RQ, bytes(4)),
        PduReceived(PduType.A_RELEASE_RP, bytes(4)),
    ]


def test_at_pdu_boundary_tells_a_clean_end_from_a_cut_one() -> None:
    framer = Framer()
    seen = [framer.at_pdu_boundary]
    feed_all(framer, vectors.A_RELEASE_RQ[:7])
    seen.append(framer.at_pdu_boundary)
    feed_all(framer, vectors.A_RELEASE_RQ[7:])
    seen.append(framer.at_pdu_boundary)
    assert seen == [True, False, True]


# --- any stream, any chunking ---------------------------------------------------------------


def _expected_buffered(pdus: list[Pdu], wires: list[bytes], position: int) -> int:
    """What the framer must hold after consuming ``position`` bytes of the stream: the
    partial PDU header, the partial body of a non-P-DATA PDU, or the partial PDV header."""
    start = 0
    for pdu, wire in zip(pdus, wires, strict=True):
        if position < start + len(wire):
            offset = position - start
            if offset < 6:
                return offset
            if not isinstance(pdu, PDataTF):
                return offset - 6
            pdv_start = 6
            for pdv in pdu.values:
                pdv_end = pdv_start + 6 + len(pdv.data)
                if offset < pdv_end:
                    into = offset - pdv_start
                    return into if into < 6 else 0
                pdv_start = pdv_end
            raise AssertionError("position beyond the PDU's PDVs")
        start += len(wire)
    return 0


def _check_events(pdus: list[Pdu], wires: list[bytes], events: list[FramerEvent]) -> None:
    """Each PDU's events: PduReceived with its body, or PDataStarted then each PDV's data in
    pieces whose concatenation is the PDV, only the last piece carrying its flags."""
    queue = list(events)
    for pdu, wire in zip(pdus, wires, strict=True):
        if not isinstance(pdu, PDataTF):
            assert queue.pop(0) == PduReceived(wire[0], wire[6:])
            continue
        assert queue.pop(0) == PDataStarted(len(wire) - 6)
        for pdv in pdu.values:
            data = b""
            while True:
                piece = queue.pop(0)
                assert isinstance(piece, PDataChunk)
                assert (piece.context_id, piece.is_command) == (pdv.context_id, pdv.is_command)
                data += bytes(piece.data)
                if len(data) == len(pdv.data):
                    assert piece.is_last == pdv.is_last
                    break
                assert not piece.is_last
            assert data == pdv.data
    assert queue == []


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Pdu], list[bytes], list[bytes]]:
    pdus = draw(st.lists(ul.pdus(), min_size=1, max_size=3))
    wires = [encode_pdu(pdu) for pdu in pdus]
    pieces = draw(ul.chunkings(b"".join(wires), bytewise_limit=2048))
    return pdus, wires, pieces


@settings(max_examples=60, deadline=None)
@given(streams())
def test_any_chunking_gives_the_same_events_holding_at_most_a_header(
    stream: tuple[list[Pdu], list[bytes], list[bytes]],
) -> None:
    pdus, wires, pieces = stream
    framer = Framer()
    events: list[FramerEvent] = []
    position = 0
    for piece in pieces:
        framer.feed(piece)
        events += [
            PDataChunk(e.context_id, e.is_command, e.is_last, memoryview(bytes(e.data)))
            if isinstance(e, PDataChunk)
            else e
            for e in drain(framer)
        ]
        position += len(piece)
        assert framer.buffered == _expected_buffered(pdus, wires, position)
    _check_events(pdus, wires, events)
    assert framer.at_pdu_boundary


def test_one_byte_at_a_time_holds_at_most_a_pdv_header_in_pdata() -> None:
    wire = vectors.P_DATA_TF
    framer = Framer()
    held = []
    for i in range(len(wire)):
        framer.feed(wire[i : i + 1])
        drain(framer)
        held.append(framer.buffered)
    assert max(held) == 5
    assert held[-1] == 0


# --- lengths are checked before anything is held --------------------------------------------


@pytest.mark.parametrize(
    ("pdu_type", "reason"),
    [
        (PduType.P_DATA_TF, AbortReason.INVALID_PDU_PARAMETER_VALUE),
        (PduType.A_ASSOCIATE_RQ, AbortReason.INVALID_PDU_PARAMETER_VALUE),
        (PduType.A_ASSOCIATE_AC, AbortReason.INVALID_PDU_PARAMETER_VALUE),
        (PduType.A_ASSOCIATE_RJ, AbortReason.INVALID_PDU_PARAMETER_VALUE),
        (PduType.A_RELEASE_RQ, AbortReason.INVALID_PDU_PARAMETER_VALUE),
        (PduType.A_ABORT, AbortReason.INVALID_PDU_PARAMETER_VALUE),
        (0x08, AbortReason.UNRECOGNIZED_PDU),
    ],
)
def test_a_header_announcing_4_gb_fails_at_once_without_allocating(
    pdu_type: int, reason: AbortReason
) -> None:
    framer = Framer(max_pdata_length=16384)
    tracemalloc.start()
    try:
        events = feed_all(framer, header(pdu_type, 0xFFFFFFFF) + b"\x00" * 64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert framing_error(events) == reason
    assert peak < 64 * 1024
    assert framer.failed
    assert framer.buffered == 0


def test_pdata_up_to_the_hard_cap_is_accepted_by_default() -> None:
    assert feed_all(Framer(), header(4, HARD_PDU_LENGTH_CAP)) == [PDataStarted(HARD_PDU_LENGTH_CAP)]
    events = feed_all(Framer(), header(4, HARD_PDU_LENGTH_CAP + 1))
    assert framing_error(events) == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_an_advertised_maximum_above_the_hard_cap_raises_it() -> None:
    framer = Framer(max_pdata_length=HARD_PDU_LENGTH_CAP * 2)
    assert feed_all(framer, header(4, HARD_PDU_LENGTH_CAP * 2)) == [
        PDataStarted(HARD_PDU_LENGTH_CAP * 2)
    ]


def test_lenient_mode_accepts_pdata_beyond_our_maximum() -> None:
    framer = Framer(max_pdata_length=1000)
    assert feed_all(framer, header(4, 1001)) == [PDataStarted(1001)]


def test_strict_mode_refuses_pdata_beyond_our_maximum() -> None:
    assert feed_all(Framer(max_pdata_length=1000, strict=True), header(4, 1000)) == [
        PDataStarted(1000)
    ]
    events = feed_all(Framer(max_pdata_length=1000, strict=True), header(4, 1001))
    assert framing_error(events) == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_strictness_and_maximum_can_be_set_after_negotiation() -> None:
    framer = Framer()
    framer.set_max_pdata_length(100, strict=True)
    events = feed_all(framer, header(4, 101))
    assert framing_error(events) == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_associate_pdus_are_capped() -> None:
    at_cap = feed_all(Framer(), header(1, ASSOCIATE_LENGTH_CAP))
    assert at_cap == []  # waiting for the body
    events = feed_all(Framer(), header(2, ASSOCIATE_LENGTH_CAP + 1))
    assert framing_error(events) == AbortReason.INVALID_PDU_PARAMETER_VALUE


@pytest.mark.parametrize("length", [0, 3, 5, 0x10000])
@pytest.mark.parametrize(
    "pdu_type",
    [PduType.A_ASSOCIATE_RJ, PduType.A_RELEASE_RQ, PduType.A_RELEASE_RP, PduType.A_ABORT],
)
def test_fixed_length_pdus_with_another_length_fail(pdu_type: int, length: int) -> None:
    events = feed_all(Framer(), header(pdu_type, length))
    assert framing_error(events) == AbortReason.INVALID_PDU_PARAMETER_VALUE


@pytest.mark.parametrize("pdu_type", [0x00, 0x08, 0x10, 0xFF])
def test_an_unknown_pdu_type_fails_on_its_header(pdu_type: int) -> None:
    assert framing_error(feed_all(Framer(), header(pdu_type, 4))) == AbortReason.UNRECOGNIZED_PDU


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(header(4, 0), id="empty P-DATA-TF"),
        pytest.param(header(4, 5) + bytes(5), id="P-DATA-TF shorter than a PDV header"),
        pytest.param(header(4, 6) + b"\x00\x00\x00\x01\x01\x03", id="PDV length 1"),
        pytest.param(header(4, 6) + b"\x00\x00\x00\x00\x01\x03", id="PDV length 0"),
        pytest.param(header(4, 8) + b"\x00\x00\x00\x05\x01\x03ab", id="PDV beyond the PDU"),
        pytest.param(
            header(4, 10) + b"\x00\x00\x00\x03\x01\x03a" + b"\x00\x00\x00",
            id="trailing bytes too few for a PDV",
        ),
    ],
)
def test_bad_pdata_fails_with_invalid_parameter_value(wire: bytes) -> None:
    events = [e for e in feed_all(Framer(), wire) if not isinstance(e, PDataStarted | PDataChunk)]
    assert framing_error(events) == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_a_failed_framer_drops_what_it_is_fed() -> None:
    framer = Framer()
    feed_all(framer, header(0x09, 4))
    tracemalloc.start()
    try:
        for _ in range(200):
            framer.feed(bytes(10_000))
            assert framer.next_event() is None
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current < 100_000
    assert framer.buffered == 0
