"""Items of A-ASSOCIATE-RQ/AC (PS3.8 §9.3.2 to 9.3.3) and user-information sub-items (Annex D).

Each item is an immutable value. ``pull_*`` decodes one from a :class:`Reader` bounded to the
item's declared length, ``push_*`` encodes it; the two are kept side by side so the wire format
of each item is read in one place. Decoding is lenient where PS3.8 allows (reserved fields are
not tested, unknown sub-items are kept aside and otherwise ignored) and strict where a length
would otherwise be trusted.
"""

from __future__ import annotations

import attrs

from oxidicom.ul.constants import AbortReason, ItemType
from oxidicom.ul.cursor import Reader, Writer
from oxidicom.ul.errors import RemoteProtocolError


def decode_uid(raw: bytes) -> str:
    """UIDs in items are ASCII; some peers pad them with NUL or space anyway (§9.3.2.2)."""
    return raw.rstrip(b"\x00 ").decode("latin-1")


def encode_uid(uid: str) -> bytes:
    return uid.encode("latin-1")


def _encode_text(text: str) -> bytes:
    return text.encode("latin-1")


@attrs.frozen
class PresentationContextRQ:
    """Item 0x20: one abstract syntax proposed with the transfer syntaxes the requestor can use.

    A missing abstract syntax decodes as ``""`` and no transfer syntaxes as ``()``: the
    acceptor then rejects that one context instead of the whole association.
    """

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@attrs.frozen
class PresentationContextAC:
    """Item 0x21: the acceptor's answer to one proposed context (§9.3.3.2).

    ``transfer_syntax`` is only significant when ``result`` is 0 (acceptance).
    """

    context_id: int
    result: int
    transfer_syntax: str


@attrs.frozen
class AsyncOperationsWindow:
    """Sub-item 0x53 (D.3.3.3): 0 means unlimited."""

    max_operations_invoked: int
    max_operations_performed: int


@attrs.frozen
class RoleSelection:
    """Sub-item 0x54 (D.3.3.4): 1 = the sender proposes/accepts that role, 0 = not."""

    sop_class_uid: str
    scu_role: int
    scp_role: int


@attrs.frozen
class SopClassExtendedNegotiation:
    """Sub-item 0x56 (D.3.3.5): opaque service-class application information."""

    sop_class_uid: str
    service_class_application_information: bytes


@attrs.frozen
class SopClassCommonExtendedNegotiation:
    """Sub-item 0x57 (D.3.3.6)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_class_uids: tuple[str, ...] = ()


@attrs.frozen
class UserIdentityRQ:
    """Sub-item 0x58 (D.3.3.7.1). Type 1 username, 2 username+passcode, 3 Kerberos,
    4 SAML, 5 JWT."""

    identity_type: int
    positive_response_requested: bool
    primary_field: bytes
    secondary_field: bytes = b""


@attrs.frozen
class UserIdentityAC:
    """Sub-item 0x59 (D.3.3.7.2)."""

    server_response: bytes


@attrs.frozen
class UnknownItem:
    """An item or sub-item of a type PS3.8 does not define: kept so it can be reported, never
    acted upon."""

    item_type: int
    data: bytes


@attrs.frozen
class UserInformation:
    """Item 0x50 and its sub-items, in the order PS3.8 lists them.

    ``maximum_length`` is the Maximum Length Received (D.1): the largest P-DATA-TF variable
    field the sender of this item accepts, 0 meaning no limit; ``None`` when the sub-item is
    absent (which PS3.8 forbids but some peers do).
    """

    maximum_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_operations_window: AsyncOperationsWindow | None = None
    role_selections: tuple[RoleSelection, ...] = ()
    sop_class_extended: tuple[SopClassExtendedNegotiation, ...] = ()
    sop_class_common_extended: tuple[SopClassCommonExtendedNegotiation, ...] = ()
    user_identity_rq: UserIdentityRQ | None = None
    user_identity_ac: UserIdentityAC | None = None
    unknown_items: tuple[UnknownItem, ...] = ()


# --- item framing -----------------------------------------------------------------------


def pull_item_header(reader: Reader) -> tuple[int, Reader]:
    """Item type and a reader bounded to the item's declared length."""
    item_type = reader.pull_uint8("item type")
    reader.skip(1, "item reserved byte")
    length = reader.pull_uint16("item length")
    return item_type, reader.sub(length, f"item 0x{item_type:02X} of declared length {length}")


def push_item(writer: Writer, item_type: int, payload: bytes) -> None:
    writer.push_uint8(item_type)
    writer.push_uint8(0)
    with writer.length_prefixed(2):
        writer.push_bytes(payload)


def _push_uid_item(writer: Writer, item_type: int, uid: str) -> None:
    push_item(writer, item_type, encode_uid(uid))


def _pull_u16_prefixed(reader: Reader, what: str) -> bytes:
    length = reader.pull_uint16(f"{what} length")
    return reader.pull_bytes(length, what)


def _push_u16_prefixed(writer: Writer, value: bytes) -> None:
    with writer.length_prefixed(2):
        writer.push_bytes(value)


# --- presentation contexts --------------------------------------------------------------


def pull_presentation_context_rq(reader: Reader) -> PresentationContextRQ:
    context_id = reader.pull_uint8("presentation context ID")
    reader.skip(3, "presentation context reserved bytes")
    abstract_syntax: str | None = None
    transfer_syntaxes: list[str] = []
    while not reader.at_end():
        item_type, body = pull_item_header(reader)
        if item_type == ItemType.ABSTRACT_SYNTAX:
            if abstract_syntax is not None:
                raise RemoteProtocolError(
                    f"presentation context {context_id} has two abstract syntax sub-items",
                    AbortReason.UNEXPECTED_PDU_PARAMETER,
                )
            abstract_syntax = decode_uid(body.pull_bytes(body.remaining))
        elif item_type == ItemType.TRANSFER_SYNTAX:
            transfer_syntaxes.append(decode_uid(body.pull_bytes(body.remaining)))
        else:
            raise RemoteProtocolError(
                f"presentation context {context_id} has a sub-item of type 0x{item_type:02X}",
                AbortReason.UNRECOGNIZED_PDU_PARAMETER,
            )
    return PresentationContextRQ(context_id, abstract_syntax or "", tuple(transfer_syntaxes))


def push_presentation_context_rq(writer: Writer, context: PresentationContextRQ) -> None:
    body = Writer()
    body.push_uint8(context.context_id)
    body.push_bytes(b"\x00\x00\x00")
    _push_uid_item(body, ItemType.ABSTRACT_SYNTAX, context.abstract_syntax)
    for ts in context.transfer_syntaxes:
        _push_uid_item(body, ItemType.TRANSFER_SYNTAX, ts)
    push_item(writer, ItemType.PRESENTATION_CONTEXT_RQ, body.getvalue())


def pull_presentation_context_ac(reader: Reader) -> PresentationContextAC:
    context_id = reader.pull_uint8("presentation context ID")
    reader.skip(1, "presentation context reserved byte")
    result = reader.pull_uint8("presentation context result")
    reader.skip(1, "presentation context reserved byte")
    transfer_syntax: str | None = None
    while not reader.at_end():
        item_type, body = pull_item_header(reader)
        if item_type != ItemType.TRANSFER_SYNTAX:
            raise RemoteProtocolError(
                f"accepted presentation context {context_id} has a sub-item of type "
                f"0x{item_type:02X}",
                AbortReason.UNRECOGNIZED_PDU_PARAMETER,
            )
        if transfer_syntax is not None:
            raise RemoteProtocolError(
                f"accepted presentation context {context_id} has two transfer syntaxes",
                AbortReason.UNEXPECTED_PDU_PARAMETER,
            )
        transfer_syntax = decode_uid(body.pull_bytes(body.remaining))
    if transfer_syntax is None and result == 0:
        raise RemoteProtocolError(
            f"accepted presentation context {context_id} has no transfer syntax",
            AbortReason.INVALID_PDU_PARAMETER_VALUE,
        )
    return PresentationContextAC(context_id, result, transfer_syntax or "")


def push_presentation_context_ac(writer: Writer, context: PresentationContextAC) -> None:
    body = Writer()
    body.push_uint8(context.context_id)
    body.push_uint8(0)
    body.push_uint8(context.result)
    body.push_uint8(0)
    _push_uid_item(body, ItemType.TRANSFER_SYNTAX, context.transfer_syntax)
    push_item(writer, ItemType.PRESENTATION_CONTEXT_AC, body.getvalue())


# --- user information -------------------------------------------------------------------


def pull_user_information(reader: Reader) -> UserInformation:
    info = UserInformation()
    seen: set[int] = set()
    roles: list[RoleSelection] = []
    extended: list[SopClassExtendedNegotiation] = []
    common: list[SopClassCommonExtendedNegotiation] = []
    unknown: list[UnknownItem] = []
    while not reader.at_end():
        item_type, body = pull_item_header(reader)
        if item_type in _SINGLE_SUB_ITEMS:
            if item_type in seen:
                raise RemoteProtocolError(
                    f"user information has two sub-items of type 0x{item_type:02X}",
                    AbortReason.UNEXPECTED_PDU_PARAMETER,
                )
            seen.add(item_type)
        if item_type == ItemType.MAXIMUM_LENGTH:
            info = attrs.evolve(info, maximum_length=body.pull_uint32("maximum length"))
        elif item_type == ItemType.IMPLEMENTATION_CLASS_UID:
            uid = decode_uid(body.pull_bytes(body.remaining))
            info = attrs.evolve(info, implementation_class_uid=uid)
        elif item_type == ItemType.IMPLEMENTATION_VERSION_NAME:
            name = body.pull_bytes(body.remaining).decode("latin-1")
            info = attrs.evolve(info, implementation_version_name=name)
        elif item_type == ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW:
            window = AsyncOperationsWindow(
                body.pull_uint16("max operations invoked"),
                body.pull_uint16("max operations performed"),
            )
            info = attrs.evolve(info, async_operations_window=window)
        elif item_type == ItemType.ROLE_SELECTION:
            uid = decode_uid(_pull_u16_prefixed(body, "role selection SOP class UID"))
            roles.append(
                RoleSelection(uid, body.pull_uint8("SCU role"), body.pull_uint8("SCP role"))
            )
        elif item_type == ItemType.SOP_CLASS_EXTENDED_NEGOTIATION:
            uid = decode_uid(_pull_u16_prefixed(body, "extended negotiation SOP class UID"))
            extended.append(SopClassExtendedNegotiation(uid, body.pull_bytes(body.remaining)))
        elif item_type == ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION:
            common.append(_pull_common_extended(body))
        elif item_type == ItemType.USER_IDENTITY_RQ:
            identity = UserIdentityRQ(
                identity_type=body.pull_uint8("user identity type"),
                positive_response_requested=body.pull_uint8("positive response requested") == 1,
                primary_field=_pull_u16_prefixed(body, "user identity primary field"),
                secondary_field=_pull_u16_prefixed(body, "user identity secondary field"),
            )
            info = attrs.evolve(info, user_identity_rq=identity)
        elif item_type == ItemType.USER_IDENTITY_AC:
            response = _pull_u16_prefixed(body, "user identity server response")
            info = attrs.evolve(info, user_identity_ac=UserIdentityAC(response))
        else:
            # Annex D: sub-items of types we do not know are skipped, not fatal.
            unknown.append(UnknownItem(item_type, body.pull_bytes(body.remaining)))
        if not body.at_end():
            raise RemoteProtocolError(
                f"user information sub-item 0x{item_type:02X} has {body.remaining} bytes "
                "beyond its fields",
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
    return attrs.evolve(
        info,
        role_selections=tuple(roles),
        sop_class_extended=tuple(extended),
        sop_class_common_extended=tuple(common),
        unknown_items=tuple(unknown),
    )


_SINGLE_SUB_ITEMS = frozenset(
    {
        ItemType.MAXIMUM_LENGTH,
        ItemType.IMPLEMENTATION_CLASS_UID,
        ItemType.IMPLEMENTATION_VERSION_NAME,
        ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW,
        ItemType.USER_IDENTITY_RQ,
        ItemType.USER_IDENTITY_AC,
    }
)


def _pull_common_extended(body: Reader) -> SopClassCommonExtendedNegotiation:
    sop_class = decode_uid(_pull_u16_prefixed(body, "common extended SOP class UID"))
    service_class = decode_uid(_pull_u16_prefixed(body, "common extended service class UID"))
    related = body.sub(
        body.pull_uint16("related general SOP class identification length"),
        "related general SOP class identification",
    )
    related_uids: list[str] = []
    while not related.at_end():
        related_uids.append(decode_uid(_pull_u16_prefixed(related, "related general SOP class")))
    return SopClassCommonExtendedNegotiation(sop_class, service_class, tuple(related_uids))


def push_user_information(writer: Writer, info: UserInformation) -> None:
    body = Writer()
    if info.maximum_length is not None:
        sub = Writer()
        sub.push_uint32(info.maximum_length)
        push_item(body, ItemType.MAXIMUM_LENGTH, sub.getvalue())
    if info.implementation_class_uid is not None:
        _push_uid_item(body, ItemType.IMPLEMENTATION_CLASS_UID, info.implementation_class_uid)
    if info.async_operations_window is not None:
        sub = Writer()
        sub.push_uint16(info.async_operations_window.max_operations_invoked)
        sub.push_uint16(info.async_operations_window.max_operations_performed)
        push_item(body, ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW, sub.getvalue())
    for role in info.role_selections:
        sub = Writer()
        _push_u16_prefixed(sub, encode_uid(role.sop_class_uid))
        sub.push_uint8(role.scu_role)
        sub.push_uint8(role.scp_role)
        push_item(body, ItemType.ROLE_SELECTION, sub.getvalue())
    if info.implementation_version_name is not None:
        push_item(
            body,
            ItemType.IMPLEMENTATION_VERSION_NAME,
            _encode_text(info.implementation_version_name),
        )
    for ext in info.sop_class_extended:
        sub = Writer()
        _push_u16_prefixed(sub, encode_uid(ext.sop_class_uid))
        sub.push_bytes(ext.service_class_application_information)
        push_item(body, ItemType.SOP_CLASS_EXTENDED_NEGOTIATION, sub.getvalue())
    for common in info.sop_class_common_extended:
        sub = Writer()
        _push_u16_prefixed(sub, encode_uid(common.sop_class_uid))
        _push_u16_prefixed(sub, encode_uid(common.service_class_uid))
        with sub.length_prefixed(2):
            for uid in common.related_general_sop_class_uids:
                _push_u16_prefixed(sub, encode_uid(uid))
        push_item(body, ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION, sub.getvalue())
    if info.user_identity_rq is not None:
        identity = info.user_identity_rq
        sub = Writer()
        sub.push_uint8(identity.identity_type)
        sub.push_uint8(1 if identity.positive_response_requested else 0)
        _push_u16_prefixed(sub, identity.primary_field)
        _push_u16_prefixed(sub, identity.secondary_field)
        push_item(body, ItemType.USER_IDENTITY_RQ, sub.getvalue())
    if info.user_identity_ac is not None:
        sub = Writer()
        _push_u16_prefixed(sub, info.user_identity_ac.server_response)
        push_item(body, ItemType.USER_IDENTITY_AC, sub.getvalue())
    for item in info.unknown_items:
        push_item(body, item.item_type, item.data)
    push_item(writer, ItemType.USER_INFORMATION, body.getvalue())
