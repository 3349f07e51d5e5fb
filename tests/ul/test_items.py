"""Items and user-information sub-items: byte-exact vectors, each decoded and re-encoded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from oxidicom.testing import strategies as ul
from oxidicom.ul.constants import ItemType
from oxidicom.ul.cursor import Reader, Writer
from oxidicom.ul.items import (
    AsyncOperationsWindow,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SopClassCommonExtendedNegotiation,
    SopClassExtendedNegotiation,
    UnknownItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
    decode_uid,
    pull_item_header,
    pull_presentation_context_ac,
    pull_presentation_context_rq,
    pull_user_information,
    push_item,
    push_presentation_context_ac,
    push_presentation_context_rq,
    push_user_information,
)

from . import vectors

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"


def _body(wire: bytes, item_type: int) -> Reader:
    """The reader over an item's body, after checking its header."""
    reader = Reader(wire)
    found, body = pull_item_header(reader)
    assert found == item_type
    assert reader.at_end()
    return body


@pytest.mark.parametrize(
    ("name", "item_type", "uid"),
    [
        ("APPLICATION_CONTEXT", ItemType.APPLICATION_CONTEXT, "1.2.840.10008.3.1.1.1"),
        ("ABSTRACT_SYNTAX", ItemType.ABSTRACT_SYNTAX, CT),
        ("TRANSFER_SYNTAX", ItemType.TRANSFER_SYNTAX, EXPLICIT),
    ],
)
def test_uid_items(name: str, item_type: int, uid: str) -> None:
    wire: bytes = getattr(vectors, name)
    body = _body(wire, item_type)
    assert decode_uid(body.pull_bytes(body.remaining)) == uid
    writer = Writer()
    push_item(writer, item_type, uid.encode())
    assert writer.getvalue() == wire


def test_presentation_context_rq_item() -> None:
    context = PresentationContextRQ(5, MR, (EXPLICIT, IMPLICIT))
    wire = vectors.PRESENTATION_CONTEXT_RQ
    assert pull_presentation_context_rq(_body(wire, 0x20)) == context
    writer = Writer()
    push_presentation_context_rq(writer, context)
    assert writer.getvalue() == wire


def test_presentation_context_ac_item() -> None:
    context = PresentationContextAC(5, 0, EXPLICIT)
    wire = vectors.PRESENTATION_CONTEXT_AC
    assert pull_presentation_context_ac(_body(wire, 0x21)) == context
    writer = Writer()
    push_presentation_context_ac(writer, context)
    assert writer.getvalue() == wire


USER_INFORMATION = {
    "MAXIMUM_LENGTH": UserInformation(maximum_length=0),
    "IMPLEMENTATION_CLASS_UID": UserInformation(
        implementation_class_uid="1.2.826.0.1.3680043.10.1341"
    ),
    "IMPLEMENTATION_VERSION_NAME": UserInformation(implementation_version_name="OFFIS_DCMTK_36"),
    "ASYNC_OPERATIONS_WINDOW": UserInformation(async_operations_window=AsyncOperationsWindow(5, 0)),
    "ROLE_SELECTION": UserInformation(role_selections=(RoleSelection(MR, 0, 1),)),
    "SOP_CLASS_EXTENDED": UserInformation(
        sop_class_extended=(SopClassExtendedNegotiation(CT, b"\x01\x00\x01\x00\x01\x00"),)
    ),
    "SOP_CLASS_COMMON_EXTENDED": UserInformation(
        sop_class_common_extended=(
            SopClassCommonExtendedNegotiation(
                "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.4.2", (CT, MR)
            ),
        )
    ),
    "USER_IDENTITY_RQ_PASSCODE": UserInformation(
        user_identity_rq=UserIdentityRQ(2, True, b"alice", b"s3cr3t")
    ),
    "USER_IDENTITY_RQ_USERNAME": UserInformation(user_identity_rq=UserIdentityRQ(1, False, b"bob")),
    "USER_IDENTITY_AC": UserInformation(user_identity_ac=UserIdentityAC(b"\xca\xfe\xf0\x0d")),
    "UNKNOWN_SUB_ITEM": UserInformation(
        maximum_length=16384, unknown_items=(UnknownItem(0x7F, b"\x01\x02\x03"),)
    ),
}


@pytest.mark.parametrize("name", USER_INFORMATION)
def test_user_information_sub_item_decodes(name: str) -> None:
    wire: bytes = getattr(vectors, name)
    assert pull_user_information(_body(wire, 0x50)) == USER_INFORMATION[name]


@pytest.mark.parametrize("name", USER_INFORMATION)
def test_user_information_sub_item_encodes(name: str) -> None:
    writer = Writer()
    push_user_information(writer, USER_INFORMATION[name])
    assert writer.getvalue() == getattr(vectors, name)


def test_an_empty_user_information_item_decodes_to_nothing() -> None:
    assert pull_user_information(_body(b"\x50\x00\x00\x00", 0x50)) == UserInformation()


def test_a_positive_response_is_requested_only_by_the_value_1() -> None:
    identity = b"\x58\x00\x00\x07\x01\x02\x00\x01a\x00\x00"
    info = pull_user_information(_body(b"\x50\x00\x00\x0b" + identity, 0x50))
    assert info.user_identity_rq == UserIdentityRQ(1, False, b"a")


@settings(max_examples=100, deadline=None)
@given(ul.user_informations(request=True) | ul.user_informations(request=False))
def test_user_information_round_trips(info: UserInformation) -> None:
    writer = Writer()
    push_user_information(writer, info)
    assert pull_user_information(_body(writer.getvalue(), 0x50)) == info


@settings(max_examples=100, deadline=None)
@given(ul.presentation_context_rqs(), ul.presentation_context_acs())
def test_presentation_contexts_round_trip(
    proposed: PresentationContextRQ, answer: PresentationContextAC
) -> None:
    writer = Writer()
    push_presentation_context_rq(writer, proposed)
    assert pull_presentation_context_rq(_body(writer.getvalue(), 0x20)) == proposed
    writer = Writer()
    push_presentation_context_ac(writer, answer)
    assert pull_presentation_context_ac(_body(writer.getvalue(), 0x21)) == answer
