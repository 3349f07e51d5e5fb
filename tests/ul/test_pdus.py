"""The seven PDUs: byte-exact vectors, malformed bodies, and the round trip of any PDU."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.testing import strategies as ul
from oxidicom.ul.constants import AbortReason, PduType
from oxidicom.ul.errors import LocalProtocolError, RemoteProtocolError
from oxidicom.ul.items import (
    AsyncOperationsWindow,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    UnknownItem,
    UserIdentityAC,
    UserInformation,
)
from oxidicom.ul.pdus import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    Pdu,
    PresentationDataValue,
    decode_pdu,
    encode_pdu,
    pdata_header,
)

from . import vectors

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1341"

DECODED: dict[str, Pdu] = {
    "A_ASSOCIATE_RQ": AAssociateRQ(
        called_ae_title="ORTHANC",
        calling_ae_title="STORESCU",
        presentation_contexts=(
            PresentationContextRQ(1, VERIFICATION, (IMPLICIT,)),
            PresentationContextRQ(3, CT_IMAGE_STORAGE, (EXPLICIT, IMPLICIT)),
        ),
        user_information=UserInformation(
            maximum_length=16384,
            implementation_class_uid=IMPLEMENTATION_UID,
            implementation_version_name="OXIDICOM",
        ),
    ),
    "A_ASSOCIATE_AC": AAssociateAC(
        called_ae_title="ORTHANC",
        calling_ae_title="STORESCU",
        presentation_contexts=(
            PresentationContextAC(1, 0, IMPLICIT),
            PresentationContextAC(3, 4, ""),
        ),
        user_information=UserInformation(
            maximum_length=32768,
            implementation_class_uid=IMPLEMENTATION_UID,
            implementation_version_name="OXIDICOM",
            async_operations_window=AsyncOperationsWindow(1, 1),
            role_selections=(RoleSelection(CT_IMAGE_STORAGE, 1, 0),),
            user_identity_ac=UserIdentityAC(b""),
        ),
    ),
    "A_ASSOCIATE_RJ": AAssociateRJ(1, 1, 7),
    "P_DATA_TF": PDataTF(
        (
            PresentationDataValue(1, True, True, vectors.P_DATA_TF[12:80]),
            PresentationDataValue(3, False, False, b"\x08\x00\x18\x00"),
        )
    ),
    "A_RELEASE_RQ": AReleaseRQ(),
    "A_RELEASE_RP": AReleaseRP(),
    "A_ABORT": AAbort(2, 6),
}


@pytest.mark.parametrize("name", DECODED)
def test_vector_decodes(name: str) -> None:
    wire: bytes = getattr(vectors, name)
    assert PduType(wire[0]).name == name
    assert int.from_bytes(wire[2:6], "big") == len(wire) - 6
    assert decode_pdu(wire[0], wire[6:]) == DECODED[name]


@pytest.mark.parametrize("name", DECODED)
def test_vector_encodes(name: str) -> None:
    assert encode_pdu(DECODED[name]) == getattr(vectors, name)


def test_pdata_header_prefixes_a_single_pdv_pdu() -> None:
    data = b"\x01\x02\x03"
    pdu = encode_pdu(PDataTF((PresentationDataValue(7, False, True, data),)))
    assert pdata_header(7, False, True, len(data)) + data == pdu


def test_decoding_accepts_a_memoryview() -> None:
    body = memoryview(vectors.A_ASSOCIATE_RQ)[6:]
    assert decode_pdu(PduType.A_ASSOCIATE_RQ, body) == DECODED["A_ASSOCIATE_RQ"]


def test_ae_titles_are_stripped_of_padding_spaces_and_nuls() -> None:
    wire = bytearray(vectors.A_ASSOCIATE_RQ)
    wire[10:26] = b"  ORTHANC\x00\x00   ".ljust(16, b" ")
    request = decode_pdu(wire[0], bytes(wire[6:]))
    assert isinstance(request, AAssociateRQ)
    assert request.called_ae_title == "ORTHANC"


def test_uids_padded_with_a_nul_decode_without_it() -> None:
    padded = AAssociateRQ(
        "A", "B", (PresentationContextRQ(1, VERIFICATION + "\x00", (IMPLICIT + "\x00",)),)
    )
    wire = encode_pdu(padded)
    request = decode_pdu(wire[0], wire[6:])
    assert isinstance(request, AAssociateRQ)
    assert request.presentation_contexts == (PresentationContextRQ(1, VERIFICATION, (IMPLICIT,)),)


def test_reserved_fields_are_not_tested_on_receipt() -> None:
    wire = bytearray(vectors.A_ASSOCIATE_RQ)
    wire[8:10] = b"\xff\xff"  # reserved after the protocol version
    wire[42:74] = b"\xaa" * 32  # the 32 reserved bytes
    assert decode_pdu(wire[0], bytes(wire[6:])) == DECODED["A_ASSOCIATE_RQ"]
    abort = bytes.fromhex("ffff0201")
    assert decode_pdu(PduType.A_ABORT, abort) == AAbort(2, 1)


# --- what the encoder refuses ---------------------------------------------------------------


def test_an_ae_title_longer_than_16_is_a_local_error() -> None:
    request = AAssociateRQ("A" * 17, "B", ())
    with pytest.raises(LocalProtocolError, match="longer than 16"):
        encode_pdu(request)


def test_an_item_longer_than_its_length_field_is_a_local_error() -> None:
    request = AAssociateRQ("A", "B", (PresentationContextRQ(1, "1." * 40000, (IMPLICIT,)),))
    with pytest.raises(LocalProtocolError, match="exceeds"):
        encode_pdu(request)


# --- malformed bodies -----------------------------------------------------------------------


def _associate(items: bytes, pdu_type: int = PduType.A_ASSOCIATE_RQ) -> bytes:
    """The body of an A-ASSOCIATE-RQ/AC: the vector's fixed fields, then ``items``."""
    return vectors.A_ASSOCIATE_RQ[6:74] + items


def _item(item_type: int, payload: bytes, *, length: int | None = None) -> bytes:
    declared = len(payload) if length is None else length
    return bytes((item_type, 0)) + declared.to_bytes(2, "big") + payload


APP_CONTEXT = vectors.APPLICATION_CONTEXT
CONTEXT_RQ = vectors.PRESENTATION_CONTEXT_RQ
USER_INFO = vectors.MAXIMUM_LENGTH


MALFORMED = {
    # (PDU type, body): the A-ABORT reason PS3.8 Table 9-26 gives it
    "associate shorter than its fixed fields": (
        PduType.A_ASSOCIATE_RQ,
        vectors.A_ASSOCIATE_RQ[6:73],
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "item header cut short": (
        PduType.A_ASSOCIATE_RQ,
        _associate(APP_CONTEXT + b"\x20\x00\x00"),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "item length beyond the PDU": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x10, b"1.2.840.10008.3.1.1.1", length=22)),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "context item too short for its sub-items": (
        PduType.A_ASSOCIATE_RQ,
        _associate(APP_CONTEXT + _item(0x20, CONTEXT_RQ[4:], length=60) + CONTEXT_RQ[64:]),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "context item too short for its ID": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x20, b"\x01\x00")),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "sub-item length beyond its context item": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x20, b"\x01\x00\x00\x00" + _item(0x30, b"1.2", length=4))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "maximum length sub-item of 3 bytes": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x50, _item(0x51, b"\x00\x40\x00"))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "maximum length sub-item of 5 bytes": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x50, _item(0x51, b"\x00\x00\x40\x00\x00"))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "role selection UID length beyond its sub-item": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x50, _item(0x54, b"\x00\x09" + b"1.2.3" + b"\x01\x00"))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "role selection without its role fields": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x50, _item(0x54, b"\x00\x05" + b"1.2.3"))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "user identity primary field beyond its sub-item": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x50, _item(0x58, b"\x01\x00\x00\x09bob\x00\x00"))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "user identity without its secondary length": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x50, _item(0x58, b"\x01\x00\x00\x03bob"))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "user identity response length beyond its sub-item": (
        PduType.A_ASSOCIATE_AC,
        _associate(_item(0x50, _item(0x59, b"\x00\x05abc"))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "async window of 2 bytes": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x50, _item(0x53, b"\x00\x01"))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "common extended related UIDs beyond their length": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x50, _item(0x57, b"\x00\x031.2\x00\x031.4\x00\x05\x00\x051.2.3"))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "common extended related UID beyond its list": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x50, _item(0x57, b"\x00\x031.2\x00\x031.4\x00\x04\x00\x051.2"))),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "unknown sub-item type in a presentation context": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x20, b"\x01\x00\x00\x00" + _item(0x31, b"1.2"))),
        AbortReason.UNRECOGNIZED_PDU_PARAMETER,
    ),
    "sub-item other than a transfer syntax in an accepted context": (
        PduType.A_ASSOCIATE_AC,
        _associate(_item(0x21, b"\x01\x00\x00\x00" + _item(0x30, b"1.2"))),
        AbortReason.UNRECOGNIZED_PDU_PARAMETER,
    ),
    "two abstract syntaxes": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x20, b"\x01\x00\x00\x00" + _item(0x30, b"1.2") + _item(0x30, b"1.3"))),
        AbortReason.UNEXPECTED_PDU_PARAMETER,
    ),
    "two transfer syntaxes in an accepted context": (
        PduType.A_ASSOCIATE_AC,
        _associate(_item(0x21, b"\x01\x00\x00\x00" + _item(0x40, b"1.2") + _item(0x40, b"1.3"))),
        AbortReason.UNEXPECTED_PDU_PARAMETER,
    ),
    "accepted context without its transfer syntax": (
        PduType.A_ASSOCIATE_AC,
        _associate(_item(0x21, b"\x01\x00\x00\x00")),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "two application context items": (
        PduType.A_ASSOCIATE_RQ,
        _associate(APP_CONTEXT + APP_CONTEXT),
        AbortReason.UNEXPECTED_PDU_PARAMETER,
    ),
    "two user information items": (
        PduType.A_ASSOCIATE_RQ,
        _associate(USER_INFO + USER_INFO),
        AbortReason.UNEXPECTED_PDU_PARAMETER,
    ),
    "two maximum length sub-items": (
        PduType.A_ASSOCIATE_RQ,
        _associate(_item(0x50, USER_INFO[4:] + USER_INFO[4:])),
        AbortReason.UNEXPECTED_PDU_PARAMETER,
    ),
    "accepted context item in a request": (
        PduType.A_ASSOCIATE_RQ,
        _associate(vectors.PRESENTATION_CONTEXT_AC),
        AbortReason.UNEXPECTED_PDU_PARAMETER,
    ),
    "proposed context item in an accept": (
        PduType.A_ASSOCIATE_AC,
        _associate(CONTEXT_RQ),
        AbortReason.UNEXPECTED_PDU_PARAMETER,
    ),
    "A-ASSOCIATE-RJ of 3 bytes": (
        PduType.A_ASSOCIATE_RJ,
        b"\x00\x01\x01",
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "A-RELEASE-RQ of 5 bytes": (
        PduType.A_RELEASE_RQ,
        bytes(5),
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "A-RELEASE-RP of 0 bytes": (
        PduType.A_RELEASE_RP,
        b"",
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "A-ABORT of 6 bytes": (PduType.A_ABORT, bytes(6), AbortReason.INVALID_PDU_PARAMETER_VALUE),
    "unknown PDU type 0x08": (0x08, bytes(4), AbortReason.UNRECOGNIZED_PDU),
    "unknown PDU type 0x00": (0x00, b"", AbortReason.UNRECOGNIZED_PDU),
    "empty P-DATA-TF": (PduType.P_DATA_TF, b"", AbortReason.INVALID_PDU_PARAMETER_VALUE),
    "PDV length 1": (
        PduType.P_DATA_TF,
        b"\x00\x00\x00\x01\x01",
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "PDV length 0": (
        PduType.P_DATA_TF,
        b"\x00\x00\x00\x00",
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "PDV length beyond the PDU": (
        PduType.P_DATA_TF,
        b"\x00\x00\x00\x05\x01\x03ab",
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
    "PDV length field cut short": (
        PduType.P_DATA_TF,
        b"\x00\x00\x00\x03\x01\x03a\x00\x00",
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_body_is_a_remote_error_with_its_reason(case: str) -> None:
    pdu_type, body, reason = MALFORMED[case]
    with pytest.raises(RemoteProtocolError) as raised:
        decode_pdu(pdu_type, body)
    assert raised.value.reason == reason


def test_unknown_variable_items_are_kept_and_ignored() -> None:
    unknown = _item(0x77, b"\x01\x02")
    body = _associate(APP_CONTEXT + unknown + CONTEXT_RQ + USER_INFO)
    request = decode_pdu(PduType.A_ASSOCIATE_RQ, body)
    assert isinstance(request, AAssociateRQ)
    assert request.unknown_items == (UnknownItem(0x77, b"\x01\x02"),)
    assert request.presentation_contexts[0].context_id == 5
    assert request.user_information.maximum_length == 0


def test_unknown_user_information_sub_items_are_skipped() -> None:
    body = _associate(APP_CONTEXT + vectors.UNKNOWN_SUB_ITEM)
    request = decode_pdu(PduType.A_ASSOCIATE_RQ, body)
    assert isinstance(request, AAssociateRQ)
    assert request.user_information.maximum_length == 16384
    assert request.user_information.unknown_items == (UnknownItem(0x7F, b"\x01\x02\x03"),)


def test_missing_items_decode_to_what_negotiation_rejects() -> None:
    request = decode_pdu(PduType.A_ASSOCIATE_RQ, _associate(b""))
    assert request == AAssociateRQ("ORTHANC", "STORESCU", (), UserInformation(), "")


def test_a_proposed_context_without_sub_items_decodes_empty() -> None:
    request = decode_pdu(PduType.A_ASSOCIATE_RQ, _associate(_item(0x20, b"\x03\x00\x00\x00")))
    assert isinstance(request, AAssociateRQ)
    assert request.presentation_contexts == (PresentationContextRQ(3, "", ()),)


def test_an_empty_pdv_is_a_pdv() -> None:
    pdu = decode_pdu(PduType.P_DATA_TF, b"\x00\x00\x00\x02\x01\x02")
    assert pdu == PDataTF((PresentationDataValue(1, False, True, b""),))


# --- properties -----------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(ul.pdus())
def test_every_pdu_round_trips(pdu: Pdu) -> None:
    wire = encode_pdu(pdu)
    assert int.from_bytes(wire[2:6], "big") == len(wire) - 6
    assert decode_pdu(wire[0], wire[6:]) == pdu


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(list(PduType)) | st.integers(0, 255), st.binary(max_size=300))
def test_any_body_decodes_or_is_a_remote_error(pdu_type: int, body: bytes) -> None:
    try:
        decode_pdu(pdu_type, body)
    except RemoteProtocolError as error:
        reason: int | None = error.reason
    else:
        reason = None
    assert reason is None or reason in set(AbortReason)


@settings(max_examples=100, deadline=None)
@given(ul.near_valid_pdus())
def test_damaged_pdus_decode_or_are_remote_errors(mutation: ul.Mutation) -> None:
    data = mutation.data
    if len(data) < 6:
        return
    try:
        decode_pdu(data[0], data[6 : 6 + int.from_bytes(data[2:6], "big")])
    except RemoteProtocolError as error:
        reason: int | None = error.reason
    else:
        reason = None
    assert reason is None or reason in set(AbortReason)
