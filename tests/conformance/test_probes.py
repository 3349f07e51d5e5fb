"""The probes' own machinery: the framing oracle and the reserved-field map."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from oxidicom.conformance.probes import classify_associate_rq, reserved_offsets
from oxidicom.testing import strategies as ul
from oxidicom.ul import AAssociateRQ, PduType, decode_pdu, encode_pdu


@given(ul.a_associate_rqs())
def test_valid_requests_are_well_framed(request: AAssociateRQ) -> None:
    assert classify_associate_rq(encode_pdu(request)) == "valid"


@given(ul.a_associate_rqs(), st.integers(1, 3))
def test_a_pdu_cut_short_by_its_length_is_invalid(request: AAssociateRQ, cut: int) -> None:
    wire = bytearray(encode_pdu(request))
    wire[2:6] = (len(wire) - 6 - cut).to_bytes(4, "big")  # the user information overruns
    assert classify_associate_rq(bytes(wire)) == "invalid"


@given(ul.a_associate_rqs(), st.integers(1, 1000))
def test_a_pdu_announcing_more_than_sent_is_incomplete(request: AAssociateRQ, more: int) -> None:
    wire = bytearray(encode_pdu(request))
    wire[2:6] = (len(wire) - 6 + more).to_bytes(4, "big")
    assert classify_associate_rq(bytes(wire)) == "incomplete"


@given(ul.a_associate_rqs(), st.data())
def test_reserved_offsets_change_nothing_a_receiver_reads(
    request: AAssociateRQ, data: st.DataObject
) -> None:
    wire = bytearray(encode_pdu(request))
    offsets = reserved_offsets(bytes(wire))
    for offset in data.draw(st.lists(st.sampled_from(offsets), min_size=1, max_size=8)):
        wire[offset] = data.draw(st.integers(1, 0xFF))
    assert decode_pdu(PduType.A_ASSOCIATE_RQ, bytes(wire)[6:]) == request
