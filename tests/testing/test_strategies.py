"""The public strategies: valid values round-trip, mutations do what they say."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.testing import strategies as ul
from oxidicom.ul.constants import PduType
from oxidicom.ul.pdus import AReleaseRQ, decode_pdu, encode_pdu

from ..ul import vectors

MutationKind = ul.MutationKind
ALWAYS_CHANGES = set(MutationKind) - {
    # These may land on the value that was there (a type or a length drawn at random).
    MutationKind.LENGTH_LARGE,
    MutationKind.WRONG_ITEM_TYPE,
}
LENGTHS_KEPT_CONSISTENT = {
    MutationKind.DUPLICATE_ITEM,
    MutationKind.DROP_ITEM,
    MutationKind.TRAILING_BYTES,
    MutationKind.WRONG_ITEM_TYPE,
    MutationKind.WRONG_PDU_TYPE,
    MutationKind.UNKNOWN_PDU_TYPE,
}
STRUCTURED = [vectors.A_ASSOCIATE_RQ, vectors.A_ASSOCIATE_AC, vectors.P_DATA_TF]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(STRUCTURED), st.sampled_from(list(MutationKind)), st.randoms())
def test_a_mutation_does_what_its_kind_says(
    original: bytes, kind: ul.MutationKind, rng: random.Random
) -> None:
    mutation = ul.mutate(original, rng, kinds=[kind])
    assert mutation.kind is kind
    data = mutation.data
    if kind in ALWAYS_CHANGES:
        assert data != original
    if kind in LENGTHS_KEPT_CONSISTENT:
        assert int.from_bytes(data[2:6], "big") == len(data) - 6
    if kind is MutationKind.TRUNCATE:
        assert original.startswith(data)
        assert len(data) < len(original)
    elif kind is MutationKind.UNKNOWN_PDU_TYPE:
        assert data[0] not in set(PduType)
    elif kind is MutationKind.WRONG_PDU_TYPE:
        assert data[0] in set(PduType) - {original[0]}
    elif kind is MutationKind.DUPLICATE_ITEM:
        assert len(data) > len(original)
    elif kind is MutationKind.DROP_ITEM:
        assert len(data) < len(original)
    elif kind in (MutationKind.LENGTH_OFF_BY_ONE, MutationKind.BIT_FLIP):
        assert len(data) == len(original)


def test_a_duplicated_sub_item_grows_every_enclosing_length() -> None:
    """Duplicating the maximum length sub-item of the A-ASSOCIATE-RQ vector: the user
    information item and the PDU grow by 8; the decoder then sees two of them."""
    for seed in range(200):
        mutation = ul.mutate(
            vectors.A_ASSOCIATE_RQ, random.Random(seed), [MutationKind.DUPLICATE_ITEM]
        )
        if mutation.detail.startswith("item at 234 "):  # the 0x51 sub-item
            break
    else:
        pytest.fail("never picked the maximum length sub-item")
    data = mutation.data
    assert int.from_bytes(data[2:6], "big") == 279 + 8
    assert data[230:234] == bytes.fromhex("5000003B")  # user information: 51 + 8
    with pytest.raises(Exception, match="two sub-items of type 0x51"):
        decode_pdu(data[0], data[6:])


def test_mutate_is_deterministic_for_a_seed() -> None:
    first = [ul.mutate(vectors.A_ASSOCIATE_AC, random.Random(7)) for _ in range(3)]
    again = [ul.mutate(vectors.A_ASSOCIATE_AC, random.Random(7)) for _ in range(3)]
    assert first == again


def test_item_mutations_need_items() -> None:
    release = encode_pdu(AReleaseRQ())
    with pytest.raises(ValueError, match="applies"):
        ul.mutate(release, random.Random(0), [MutationKind.DROP_ITEM])
    with pytest.raises(ValueError, match="applies"):
        ul.mutations(release, [MutationKind.DUPLICATE_ITEM])


@settings(max_examples=30, deadline=None)
@given(ul.near_valid_pdus(kinds=[MutationKind.BIT_FLIP, MutationKind.TRUNCATE]))
def test_near_valid_pdus_draw_only_the_kinds_asked_for(mutation: ul.Mutation) -> None:
    assert mutation.kind in (MutationKind.BIT_FLIP, MutationKind.TRUNCATE)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_chunkings_join_to_the_data(data: st.DataObject) -> None:
    payload = data.draw(st.binary(max_size=300))
    pieces = data.draw(ul.chunkings(payload, max_pieces=8, bytewise_limit=100))
    assert b"".join(pieces) == payload
    assert all(pieces)
    assert len(pieces) <= max(8, len(payload) if len(payload) <= 100 else 8)


@settings(max_examples=100, deadline=None)
@given(ul.uids(), ul.ae_titles())
def test_uids_and_titles_are_what_ps3_5_allows(uid: str, title: str) -> None:
    assert len(uid) <= 64
    assert all(
        part.isdigit() and (part == "0" or not part.startswith("0")) for part in uid.split(".")
    )
    assert 1 <= len(title) <= 16
    assert title == title.strip(" ")
    assert "\\" not in title
