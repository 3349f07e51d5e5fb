"""The framer: the same events whatever the chunking, constant memory, caps checked first."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.testing import strategies as ul
from oxidicom.ul.constants import AbortReason, PduType
from oxidicom.ul.events import PDataChunk, PDataRun
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
    pieces whose concatenation is the PDV, only the last piece carrying its flags; or, for
    P-DATA-TFs of one data set PDV each, a PDataRun with one chunk per PDU."""
    queue = list(events)
    run: PDataRun | None = None
    chunks: list[memoryview] = []
    for pdu, wire in zip(pdus, wires, strict=True):
        if run is None and isinstance(pdu, PDataTF) and isinstance(queue[0], PDataRun):
            run = cast(PDataRun, queue.pop(0))
            chunks = list(run.chunks)
        if run is not None:
            assert isinstance(pdu, PDataTF)
            (pdv,) = pdu.values
            assert (pdv.context_id, pdv.is_command) == (run.context_id, False)
            assert bytes(chunks.pop(0)) == pdv.data
            assert pdv.is_last == (run.is_last and not chunks)
            if not chunks:
                run = None
            continue
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
    assert run is None
    assert queue == []


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Pdu], list[bytes], list[bytes]]:
    pdus = draw(st.lists(ul.pdus(), min_size=1, max_size=3))
    wires = [encode_pdu(pdu) for pdu in pdus]
    pieces = draw(ul.chunkings(b"".join(wires), bytewise_limit=2048))
    return pdus, wires, pieces


_DATA_PDVS = st.builds(
    PresentationDataValue,
    st.sampled_from([1, 3]),
    st.sampled_from([False, False, False, True]),  # is_command
    st.booleans(),
    st.binary(max_size=40),
)


@st.composite
def data_sets(draw: st.DrawFn) -> list[Pdu]:
    """A data set as DIMSE sends it: fragments on one context, one PDV per P-DATA-TF."""
    context = draw(st.sampled_from([1, 3]))
    fragments = draw(st.lists(st.binary(max_size=40), min_size=1, max_size=6))
    ends = draw(st.booleans())
    return [
        PDataTF((PresentationDataValue(context, False, ends and n == len(fragments), data),))
        for n, data in enumerate(fragments, 1)
    ]


@st.composite
def data_streams(draw: st.DrawFn) -> tuple[list[Pdu], list[bytes], list[bytes]]:
    """Data sets with commands, PDUs of two PDVs and other PDUs in between, in pieces of
    any size (fewer pieces than elsewhere, so that several whole PDUs arrive together)."""
    others = st.one_of(
        _DATA_PDVS.map(lambda pdv: PDataTF((pdv,))),
        st.tuples(_DATA_PDVS, _DATA_PDVS).map(PDataTF),
        ul.pdus(),
    ).map(lambda pdu: [pdu])
    segments = draw(st.lists(data_sets() | others, min_size=1, max_size=5))
    pdus = [pdu for segment in segments for pdu in segment]
    wires = [encode_pdu(pdu) for pdu in pdus]
    pieces = draw(ul.chunkings(b"".join(wires), max_pieces=4, bytewise_limit=0))
    return pdus, wires, pieces


def _frame(
    framer: Framer, pdus: list[Pdu], wires: list[bytes], pieces: list[bytes]
) -> list[FramerEvent]:
    events: list[FramerEvent] = []
    position = 0
    for piece in pieces:
        framer.feed(piece)
        for event in drain(framer):
            # Copies: the views are only valid until the next feed.
            if isinstance(event, PDataChunk):
                events.append(event._replace(data=memoryview(bytes(event.data))))
            elif isinstance(event, PDataRun):
                events.append(event._replace(chunks=[memoryview(bytes(c)) for c in event.chunks]))
            else:
                events.append(event)
        position += len(piece)
        assert framer.buffered == _expected_buffered(pdus, wires, position)
    _check_events(pdus, wires, events)
    assert framer.at_pdu_boundary
    return events


@settings(max_examples=60, deadline=None)
@given(streams())
def test_any_chunking_gives_the_same_events_holding_at_most_a_header(
    stream: tuple[list[Pdu], list[bytes], list[bytes]],
) -> None:
    events = _frame(Framer(), *stream)
    assert not any(isinstance(event, PDataRun) for event in events)


@settings(max_examples=100, deadline=None)
@given(st.one_of(streams(), data_streams()))
def test_coalescing_gives_the_same_data_under_any_chunking(
    stream: tuple[list[Pdu], list[bytes], list[bytes]],
) -> None:
    _frame(Framer(coalesce=True), *stream)


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


# --- coalescing data set PDUs into runs -----------------------------------------------------


def data_pdu(data: bytes, *, context: int = 1, last: bool = False, command: bool = False) -> bytes:
    return encode_pdu(PDataTF((PresentationDataValue(context, command, last, data),)))


def test_whole_data_pdus_come_as_one_run_of_views() -> None:
    wire = data_pdu(b"ab") + data_pdu(b"") + data_pdu(b"cd", last=True)
    (run,) = feed_all(Framer(coalesce=True), wire)
    assert isinstance(run, PDataRun)
    assert (run.context_id, run.is_last) == (1, True)
    assert [bytes(chunk) for chunk in run.chunks] == [b"ab", b"", b"cd"]
    assert all(chunk.obj is wire for chunk in run.chunks)


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (data_pdu(b"cd", command=True), "a command"),
        (
            encode_pdu(
                PDataTF(
                    (
                        PresentationDataValue(1, False, False, b"c"),
                        PresentationDataValue(1, False, False, b"d"),
                    )
                )
            ),
            "two PDVs",
        ),
    ],
)
def test_a_run_ends_before_a_pdu_that_does_not_qualify(second: bytes, why: str) -> None:
    events = feed_all(Framer(coalesce=True), data_pdu(b"ab") + second)
    run, started, *chunks = events
    assert isinstance(run, PDataRun), why
    assert [bytes(chunk) for chunk in run.chunks] == [b"ab"]
    assert started == PDataStarted(len(second) - 6)
    assert all(isinstance(chunk, PDataChunk) for chunk in chunks)


def test_a_run_ends_where_another_context_begins() -> None:
    events = feed_all(Framer(coalesce=True), data_pdu(b"ab") + data_pdu(b"cd", context=3))
    assert [(e.context_id, len(e.chunks)) for e in events if isinstance(e, PDataRun)] == [
        (1, 1),
        (3, 1),
    ]
    assert len(events) == 2


def test_a_run_ends_with_the_last_fragment() -> None:
    events = feed_all(Framer(coalesce=True), data_pdu(b"ab", last=True) + data_pdu(b"cd"))
    assert [len(event.chunks) for event in events if isinstance(event, PDataRun)] == [1, 1]


def test_a_partial_pdu_is_not_part_of_a_run() -> None:
    wire = data_pdu(b"ab") + data_pdu(b"cdef")
    events = feed_all(Framer(coalesce=True), wire[:-2], wire[-2:])
    run, started, first_piece, second_piece = events
    assert isinstance(run, PDataRun)
    assert len(run.chunks) == 1
    assert started == PDataStarted(10)
    assert isinstance(first_piece, PDataChunk)
    assert bytes(first_piece.data) == b"cd"
    assert isinstance(second_piece, PDataChunk)
    assert bytes(second_piece.data) == b"ef"


def test_a_pdu_beyond_the_strict_maximum_ends_the_run_and_fails() -> None:
    framer = Framer(coalesce=True, max_pdata_length=20, strict=True)
    run, failure = feed_all(framer, data_pdu(bytes(8)) + data_pdu(bytes(20)))
    assert isinstance(run, PDataRun)
    assert len(run.chunks) == 1
    assert framing_error([failure]) == AbortReason.INVALID_PDU_PARAMETER_VALUE
