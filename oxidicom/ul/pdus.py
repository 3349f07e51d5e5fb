"""The seven PDUs of PS3.8 §9.3 as immutable values, with their encoders and decoders.

``decode_pdu(pdu_type, body)`` takes the variable part that follows the 6-byte PDU header
(the framer has already checked the header and bounded the body); ``encode_pdu`` returns the
whole PDU, header included. A body that does not hold what its lengths declare raises
:class:`~oxidicom.ul.errors.RemoteProtocolError` carrying the A-ABORT reason to answer with.
"""

from __future__ import annotations

import struct
from typing import TypeAlias

import attrs

from oxidicom.ul.constants import (
    APPLICATION_CONTEXT_NAME,
    ASSOCIATE_FIXED_LENGTH,
    PROTOCOL_VERSION,
    AbortReason,
    AbortSource,
    ItemType,
    PduType,
)
from oxidicom.ul.cursor import Reader, Writer
from oxidicom.ul.errors import LocalProtocolError, RemoteProtocolError
from oxidicom.ul.items import (
    PresentationContextAC,
    PresentationContextRQ,
    UnknownItem,
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

AE_TITLE_LENGTH = 16
_ECHO_LENGTH = 2 * AE_TITLE_LENGTH + 32


@attrs.frozen
class AAssociateRQ:
    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextRQ, ...]
    user_information: UserInformation = attrs.field(factory=UserInformation)
    application_context_name: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = PROTOCOL_VERSION
    unknown_items: tuple[UnknownItem, ...] = ()
    """Variable items of undefined types: ignored, kept for reporting."""
    echo: bytes = attrs.field(default=b"", eq=False, repr=False)
    """Bytes 11-74 as received (both AE titles as sent, and the 32 reserved bytes): what
    the A-ASSOCIATE-AC repeats, byte for byte (§9.3.3 Table 9-17). Empty when built here."""


@attrs.frozen
class AAssociateAC:
    called_ae_title: str
    """PS3.8 says these two echo the request and are not tested on receipt."""
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextAC, ...]
    user_information: UserInformation = attrs.field(factory=UserInformation)
    application_context_name: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = PROTOCOL_VERSION
    unknown_items: tuple[UnknownItem, ...] = ()
    echo: bytes = attrs.field(default=b"", eq=False, repr=False)
    """Bytes 11-74 to send verbatim: the request's :attr:`AAssociateRQ.echo` (set by
    :meth:`~oxidicom.ul.association.Association.accept`). Empty: the two AE titles, padded
    with spaces, and 32 zero bytes."""


@attrs.frozen
class AAssociateRJ:
    """Result, source and reason of §9.3.4 (see ``constants.describe_reject``)."""

    result: int
    source: int
    reason: int


@attrs.frozen
class PresentationDataValue:
    """One PDV item (§9.3.5.1): a fragment of a DIMSE command or data set."""

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes


@attrs.frozen
class PDataTF:
    values: tuple[PresentationDataValue, ...]


@attrs.frozen
class AReleaseRQ:
    pass


@attrs.frozen
class AReleaseRP:
    pass


@attrs.frozen
class AAbort:
    source: int = AbortSource.SERVICE_USER
    reason: int = AbortReason.NOT_SPECIFIED


Pdu: TypeAlias = (
    AAssociateRQ | AAssociateAC | AAssociateRJ | PDataTF | AReleaseRQ | AReleaseRP | AAbort
)

_PDU_HEADER = struct.Struct(">BBI")
_PDATA_HEADER = struct.Struct(">BBIIBB")
"""PDU header followed by one PDV item header: the prefix of a single-PDV P-DATA-TF."""


def message_control_header(is_command: bool, is_last: bool) -> int:
    """Bit 0: command (1) or data set (0); bit 1: last fragment (§E.2)."""
    return (1 if is_command else 0) | (2 if is_last else 0)


def pdata_header(context_id: int, is_command: bool, is_last: bool, data_length: int) -> bytes:
    """The 12 bytes in front of ``data_length`` bytes sent as a P-DATA-TF with one PDV.

    Lets a sender put payload on the wire without copying it into an encoded PDU.
    """
    return _PDATA_HEADER.pack(
        PduType.P_DATA_TF,
        0,
        data_length + 6,
        data_length + 2,
        context_id,
        message_control_header(is_command, is_last),
    )


# --- encoding ---------------------------------------------------------------------------


def encode_pdu(pdu: Pdu) -> bytes:
    """The PDU as sent on the wire, header included."""
    writer = Writer()
    match pdu:
        case AAssociateRQ() | AAssociateAC():
            pdu_type = (
                PduType.A_ASSOCIATE_RQ if isinstance(pdu, AAssociateRQ) else PduType.A_ASSOCIATE_AC
            )
            _push_associate(writer, pdu)
        case AAssociateRJ(result=result, source=source, reason=reason):
            pdu_type = PduType.A_ASSOCIATE_RJ
            writer.push_bytes(bytes((0, result, source, reason)))
        case PDataTF(values=values):
            pdu_type = PduType.P_DATA_TF
            for pdv in values:
                writer.push_uint32(len(pdv.data) + 2)
                writer.push_uint8(pdv.context_id)
                writer.push_uint8(message_control_header(pdv.is_command, pdv.is_last))
                writer.push_bytes(pdv.data)
        case AReleaseRQ():
            pdu_type = PduType.A_RELEASE_RQ
            writer.push_bytes(bytes(4))
        case AReleaseRP():
            pdu_type = PduType.A_RELEASE_RP
            writer.push_bytes(bytes(4))
        case AAbort(source=source, reason=reason):
            pdu_type = PduType.A_ABORT
            writer.push_bytes(bytes((0, 0, source, reason)))
    body = writer.getvalue()
    if len(body) > 0xFFFFFFFF:
        raise LocalProtocolError("PDU body exceeds the 4-byte length field")
    return _PDU_HEADER.pack(pdu_type, 0, len(body)) + body


def _encode_ae_title(title: str) -> bytes:
    raw = title.encode("latin-1")
    if len(raw) > AE_TITLE_LENGTH:
        raise LocalProtocolError(f"AE title {title!r} is longer than 16 characters")
    return raw.ljust(AE_TITLE_LENGTH, b" ")


def _push_associate(writer: Writer, pdu: AAssociateRQ | AAssociateAC) -> None:
    writer.push_uint16(pdu.protocol_version)
    writer.push_uint16(0)
    if isinstance(pdu, AAssociateAC) and len(pdu.echo) == _ECHO_LENGTH:
        writer.push_bytes(pdu.echo)
    else:
        writer.push_bytes(_encode_ae_title(pdu.called_ae_title))
        writer.push_bytes(_encode_ae_title(pdu.calling_ae_title))
        writer.push_bytes(bytes(32))
    push_item(writer, ItemType.APPLICATION_CONTEXT, pdu.application_context_name.encode("latin-1"))
    for context in pdu.presentation_contexts:
        if isinstance(context, PresentationContextRQ):
            push_presentation_context_rq(writer, context)
        else:
            push_presentation_context_ac(writer, context)
    push_user_information(writer, pdu.user_information)
    for item in pdu.unknown_items:
        push_item(writer, item.item_type, item.data)


# --- decoding ---------------------------------------------------------------------------


def decode_pdu(pdu_type: int, body: bytes | memoryview) -> Pdu:
    """Decode the variable part of a PDU whose header announced ``pdu_type``."""
    reader = Reader(body)
    if pdu_type == PduType.A_ASSOCIATE_RQ:
        return _pull_associate(reader, request=True)
    if pdu_type == PduType.A_ASSOCIATE_AC:
        return _pull_associate(reader, request=False)
    if pdu_type == PduType.P_DATA_TF:
        return _pull_pdata(reader)
    if pdu_type in (
        PduType.A_ASSOCIATE_RJ,
        PduType.A_RELEASE_RQ,
        PduType.A_RELEASE_RP,
        PduType.A_ABORT,
    ):
        if reader.remaining != 4:
            raise RemoteProtocolError(
                f"{PduType(pdu_type).name} PDU has length {reader.remaining}, PS3.8 fixes it at 4"
            )
        raw = reader.pull_bytes(4)
        if pdu_type == PduType.A_ASSOCIATE_RJ:
            return AAssociateRJ(raw[1], raw[2], raw[3])
        if pdu_type == PduType.A_ABORT:
            return AAbort(raw[2], raw[3])
        return AReleaseRQ() if pdu_type == PduType.A_RELEASE_RQ else AReleaseRP()
    raise RemoteProtocolError(
        f"unrecognized PDU type 0x{pdu_type:02X}", AbortReason.UNRECOGNIZED_PDU
    )


def _decode_ae_title(raw: bytes) -> str:
    # Leading and trailing spaces are not significant (PS3.5 AE); NULs are a common bug.
    return raw.decode("latin-1").strip(" \x00")


def _pull_associate(reader: Reader, *, request: bool) -> AAssociateRQ | AAssociateAC:
    if reader.remaining < ASSOCIATE_FIXED_LENGTH:
        raise RemoteProtocolError(
            f"A-ASSOCIATE PDU of {reader.remaining} bytes is shorter than its fixed fields "
            f"({ASSOCIATE_FIXED_LENGTH})"
        )
    protocol_version = reader.pull_uint16("protocol version")
    reader.skip(2)
    echo = reader.pull_bytes(_ECHO_LENGTH)
    called = _decode_ae_title(echo[:AE_TITLE_LENGTH])
    calling = _decode_ae_title(echo[AE_TITLE_LENGTH : 2 * AE_TITLE_LENGTH])
    application_context: str | None = None
    user_information: UserInformation | None = None
    rq_contexts: list[PresentationContextRQ] = []
    ac_contexts: list[PresentationContextAC] = []
    unknown: list[UnknownItem] = []
    context_type = ItemType.PRESENTATION_CONTEXT_RQ if request else ItemType.PRESENTATION_CONTEXT_AC
    while not reader.at_end():
        item_type, item = pull_item_header(reader)
        if item_type == ItemType.APPLICATION_CONTEXT:
            if application_context is not None:
                raise RemoteProtocolError(
                    "two application context items", AbortReason.UNEXPECTED_PDU_PARAMETER
                )
            application_context = decode_uid(item.pull_bytes(item.remaining))
        elif item_type == context_type:
            if request:
                rq_contexts.append(pull_presentation_context_rq(item))
            else:
                ac_contexts.append(pull_presentation_context_ac(item))
        elif item_type == ItemType.USER_INFORMATION:
            if user_information is not None:
                raise RemoteProtocolError(
                    "two user information items", AbortReason.UNEXPECTED_PDU_PARAMETER
                )
            user_information = pull_user_information(item)
        elif item_type in (ItemType.PRESENTATION_CONTEXT_RQ, ItemType.PRESENTATION_CONTEXT_AC):
            raise RemoteProtocolError(
                f"presentation context item of type 0x{item_type:02X} in an "
                f"A-ASSOCIATE-{'RQ' if request else 'AC'}",
                AbortReason.UNEXPECTED_PDU_PARAMETER,
            )
        else:
            unknown.append(UnknownItem(item_type, item.pull_bytes(item.remaining)))
    # A missing application context decodes as "", which negotiation rejects (1,1,2).
    if request:
        return AAssociateRQ(
            called,
            calling,
            tuple(rq_contexts),
            user_information or UserInformation(),
            application_context or "",
            protocol_version,
            tuple(unknown),
            echo,
        )
    return AAssociateAC(
        called,
        calling,
        tuple(ac_contexts),
        user_information or UserInformation(),
        application_context or "",
        protocol_version,
        tuple(unknown),
        echo,
    )


def _pull_pdata(reader: Reader) -> PDataTF:
    values: list[PresentationDataValue] = []
    while not reader.at_end():
        length = reader.pull_uint32("PDV item length")
        if length < 2:
            raise RemoteProtocolError(f"PDV item length {length} is below its 2-byte header")
        item = reader.sub(length, f"PDV item of declared length {length}")
        context_id = item.pull_uint8()
        control = item.pull_uint8()
        values.append(
            PresentationDataValue(
                context_id, bool(control & 1), bool(control & 2), item.pull_bytes(item.remaining)
            )
        )
    if not values:
        raise RemoteProtocolError("P-DATA-TF PDU without any PDV item")
    return PDataTF(tuple(values))
