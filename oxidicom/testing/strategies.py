"""Hypothesis strategies for the PDUs and items of PS3.8, valid and near-valid.

Needs hypothesis, which is not a runtime dependency: install ``oxidicom[fuzz]`` (or ``hypothesis``).

*Valid* strategies (:func:`pdus`, :func:`a_associate_rqs`, :func:`user_informations`...)
generate values that the codec round-trips unchanged: for every ``pdu`` drawn,
``decode_pdu(pdu_type, encode_pdu(pdu)[6:]) == pdu``. UIDs, AE titles and text are drawn from
what PS3.8 allows (no padding that decoding would strip).

*Near-valid* strategies start from a valid encoding and damage it the way a buggy or hostile
peer does: bit flips, truncation, a length field off by one or by a lot, an item of the
wrong type, an item duplicated or dropped (with its parents' lengths fixed, so the damage is
precisely that), unknown or wrong PDU types, trailing bytes. Each draw is a
:class:`Mutation` saying what was done. The same mutation engine runs without hypothesis
through :func:`mutate` and a :class:`random.Random`, for fuzz loops that want speed over
shrinking.

A conformance test of your own SCP might read::

    from hypothesis import given
    from oxidicom.testing import strategies as ul

    @given(ul.near_valid_pdus(ul.a_associate_rqs()))
    def test_scp_survives_bad_requests(mutation: ul.Mutation) -> None:
        reply = send_to_my_scp(mutation.data)
        assert reply is None or reply[0] in (0x02, 0x03, 0x07)  # AC, RJ or A-ABORT
"""

from __future__ import annotations

import enum
import functools
import itertools
import random
from collections.abc import Callable, Collection, Sequence
from typing import Final, ParamSpec, TypeVar

import attrs
from hypothesis import strategies as st

from oxidicom.ul.constants import (
    APPLICATION_CONTEXT_NAME,
    REJECT_REASONS,
    AbortReason,
    AbortSource,
    ContextResult,
    ItemType,
    PduType,
    RejectResult,
)
from oxidicom.ul.framer import ASSOCIATE_LENGTH_CAP, HARD_PDU_LENGTH_CAP
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
    encode_pdu,
)

__all__ = [
    "ALL_MUTATION_KINDS",
    "WELL_KNOWN_UIDS",
    "Mutation",
    "MutationKind",
    "a_aborts",
    "a_associate_acs",
    "a_associate_rjs",
    "a_associate_rqs",
    "a_release_rps",
    "a_release_rqs",
    "ae_titles",
    "async_operations_windows",
    "chunkings",
    "encoded_pdus",
    "implementation_version_names",
    "mutate",
    "mutations",
    "near_valid_pdus",
    "p_data_tfs",
    "pdus",
    "presentation_context_acs",
    "presentation_context_rqs",
    "presentation_data_values",
    "role_selections",
    "sop_class_common_extended_negotiations",
    "sop_class_extended_negotiations",
    "uids",
    "unknown_items",
    "unknown_sub_items",
    "user_identity_acs",
    "user_identity_rqs",
    "user_informations",
]

_P = ParamSpec("_P")
_S = TypeVar("_S")


def _shared(
    factory: Callable[_P, st.SearchStrategy[_S]],
) -> Callable[_P, st.SearchStrategy[_S]]:
    """Build each strategy once per arguments and hand out that one object: hypothesis
    validates every new strategy object on its first draw, which costs more than drawing
    (and a composite strategy calls these factories on every draw)."""
    built: dict[object, st.SearchStrategy[_S]] = {}

    @functools.wraps(factory)
    def shared(*args: _P.args, **kwargs: _P.kwargs) -> st.SearchStrategy[_S]:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in built:
            built[key] = factory(*args, **kwargs)
        return built[key]

    return shared


# --- values inside items --------------------------------------------------------------------

WELL_KNOWN_UIDS: Final = (
    "1.2.840.10008.1.1",  # Verification SOP Class
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
)
"""Real SOP class and transfer syntax UIDs, mixed into :func:`uids` so generated requests
also look like what peers send."""

_AE_ALPHABET: Final = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "\\")
"""ISO 646 G0 (PS3.5 AE): printable ASCII without the value delimiter."""


@_shared
def uids() -> st.SearchStrategy[str]:
    """UIDs of PS3.5 §9.1: dot-separated numbers without leading zeros, at most 64 chars."""
    component = st.integers(0, 99999).map(str)
    generated = st.lists(component, min_size=2, max_size=10).map(".".join)
    return st.one_of(st.sampled_from(WELL_KNOWN_UIDS), generated)


@_shared
def ae_titles() -> st.SearchStrategy[str]:
    """1 to 16 characters, without the leading/trailing spaces PS3.8 says are not significant."""
    return (
        st.text(alphabet=_AE_ALPHABET, min_size=1, max_size=16)
        .map(lambda title: title.strip(" "))
        .filter(bool)
    )


@_shared
def implementation_version_names() -> st.SearchStrategy[str]:
    """1 to 16 characters of the default repertoire (D.3.3.2)."""
    return st.text(alphabet=_AE_ALPHABET, min_size=1, max_size=16)


@_shared
def _odd_context_ids() -> st.SearchStrategy[int]:
    return st.integers(0, 127).map(lambda n: 2 * n + 1)


# --- items and sub-items --------------------------------------------------------------------


@_shared
def presentation_context_rqs(
    context_ids: st.SearchStrategy[int] | None = None,
) -> st.SearchStrategy[PresentationContextRQ]:
    """Item 0x20: an odd context ID, an abstract syntax, 1 to 4 transfer syntaxes."""
    return st.builds(
        PresentationContextRQ,
        context_id=context_ids if context_ids is not None else _odd_context_ids(),
        abstract_syntax=uids(),
        transfer_syntaxes=st.lists(uids(), min_size=1, max_size=4).map(tuple),
    )


@_shared
def presentation_context_acs(
    context_ids: st.SearchStrategy[int] | None = None,
) -> st.SearchStrategy[PresentationContextAC]:
    """Item 0x21: an acceptance with its transfer syntax, or a refusal (whose transfer syntax
    sub-item PS3.8 leaves empty or insignificant)."""
    ids = context_ids if context_ids is not None else _odd_context_ids()
    accepted = st.builds(
        PresentationContextAC,
        context_id=ids,
        result=st.just(int(ContextResult.ACCEPTANCE)),
        transfer_syntax=uids(),
    )
    refused = st.builds(
        PresentationContextAC,
        context_id=ids,
        result=st.sampled_from([int(r) for r in ContextResult if r != ContextResult.ACCEPTANCE]),
        transfer_syntax=st.one_of(st.just(""), uids()),
    )
    return st.one_of(accepted, refused)


@_shared
def async_operations_windows() -> st.SearchStrategy[AsyncOperationsWindow]:
    """Sub-item 0x53: two 16-bit counts (0 is unlimited)."""
    return st.builds(AsyncOperationsWindow, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))


@_shared
def role_selections() -> st.SearchStrategy[RoleSelection]:
    """Sub-item 0x54: a SOP class with SCU and SCP role bits."""
    return st.builds(RoleSelection, uids(), st.integers(0, 1), st.integers(0, 1))


@_shared
def sop_class_extended_negotiations() -> st.SearchStrategy[SopClassExtendedNegotiation]:
    """Sub-item 0x56: a SOP class and opaque service-class application information."""
    return st.builds(SopClassExtendedNegotiation, uids(), st.binary(max_size=32))


@_shared
def sop_class_common_extended_negotiations() -> st.SearchStrategy[
    SopClassCommonExtendedNegotiation
]:
    """Sub-item 0x57: SOP class, service class, and 0 to 3 related general SOP classes."""
    return st.builds(
        SopClassCommonExtendedNegotiation,
        uids(),
        uids(),
        st.lists(uids(), max_size=3).map(tuple),
    )


@_shared
def user_identity_rqs() -> st.SearchStrategy[UserIdentityRQ]:
    """Sub-item 0x58: a secondary field (passcode) only with identity type 2."""
    primary = st.binary(min_size=1, max_size=48)
    single = st.builds(
        UserIdentityRQ,
        identity_type=st.sampled_from([1, 3, 4, 5]),
        positive_response_requested=st.booleans(),
        primary_field=primary,
    )
    with_passcode = st.builds(
        UserIdentityRQ,
        identity_type=st.just(2),
        positive_response_requested=st.booleans(),
        primary_field=primary,
        secondary_field=st.binary(min_size=1, max_size=48),
    )
    return st.one_of(single, with_passcode)


@_shared
def user_identity_acs() -> st.SearchStrategy[UserIdentityAC]:
    """Sub-item 0x59: the server response (empty unless Kerberos, SAML or JWT)."""
    return st.builds(UserIdentityAC, st.binary(max_size=48))


_USER_INFORMATION_TYPES: Final = frozenset(range(0x51, 0x5A))
_ASSOCIATE_ITEM_TYPES: Final = frozenset(
    {
        ItemType.APPLICATION_CONTEXT,
        ItemType.PRESENTATION_CONTEXT_RQ,
        ItemType.PRESENTATION_CONTEXT_AC,
        ItemType.USER_INFORMATION,
    }
)


@_shared
def unknown_sub_items() -> st.SearchStrategy[UnknownItem]:
    """User-information sub-items of types Annex D does not define (a receiver skips them)."""
    types = st.integers(0, 0xFF).filter(lambda t: t not in _USER_INFORMATION_TYPES)
    return st.builds(UnknownItem, types, st.binary(max_size=16))


@_shared
def unknown_items() -> st.SearchStrategy[UnknownItem]:
    """A-ASSOCIATE variable items of types §9.3.2 does not define (a receiver ignores them)."""
    types = st.integers(0, 0xFF).filter(lambda t: t not in _ASSOCIATE_ITEM_TYPES)
    return st.builds(UnknownItem, types, st.binary(max_size=16))


@_shared
def user_informations(*, request: bool = True) -> st.SearchStrategy[UserInformation]:
    """Item 0x50 with any of its sub-items: those of an A-ASSOCIATE-RQ, or (``request=False``)
    those of an A-ASSOCIATE-AC (user identity answer instead of request, no common
    extended negotiation)."""
    optional = st.one_of
    return st.builds(
        UserInformation,
        maximum_length=optional(st.none(), st.integers(0, 0xFFFFFFFF)),
        implementation_class_uid=optional(st.none(), uids()),
        implementation_version_name=optional(st.none(), implementation_version_names()),
        async_operations_window=optional(st.none(), async_operations_windows()),
        role_selections=st.lists(role_selections(), max_size=3).map(tuple),
        sop_class_extended=st.lists(sop_class_extended_negotiations(), max_size=2).map(tuple),
        sop_class_common_extended=(
            st.lists(sop_class_common_extended_negotiations(), max_size=2).map(tuple)
            if request
            else st.just(())
        ),
        user_identity_rq=optional(st.none(), user_identity_rqs()) if request else st.none(),
        user_identity_ac=st.none() if request else optional(st.none(), user_identity_acs()),
        unknown_items=st.lists(unknown_sub_items(), max_size=2).map(tuple),
    )


# --- PDUs -----------------------------------------------------------------------------------


_Context = TypeVar("_Context", PresentationContextRQ, PresentationContextAC)


def _unique_contexts(
    contexts: st.SearchStrategy[_Context], max_size: int
) -> st.SearchStrategy[tuple[_Context, ...]]:
    return st.lists(contexts, min_size=1, max_size=max_size, unique_by=lambda c: c.context_id).map(
        tuple
    )


@_shared
def a_associate_rqs(*, max_contexts: int = 6) -> st.SearchStrategy[AAssociateRQ]:
    """A-ASSOCIATE-RQ (§9.3.2) proposing 1 to ``max_contexts`` contexts with distinct IDs."""
    return st.builds(
        AAssociateRQ,
        called_ae_title=ae_titles(),
        calling_ae_title=ae_titles(),
        presentation_contexts=_unique_contexts(presentation_context_rqs(), max_contexts),
        user_information=user_informations(request=True),
        application_context_name=st.one_of(st.just(APPLICATION_CONTEXT_NAME), uids()),
        protocol_version=st.one_of(st.just(1), st.integers(0, 0xFFFF)),
        unknown_items=st.lists(unknown_items(), max_size=2).map(tuple),
    )


@_shared
def a_associate_acs(*, max_contexts: int = 6) -> st.SearchStrategy[AAssociateAC]:
    """A-ASSOCIATE-AC (§9.3.3), answering 1 to ``max_contexts`` contexts."""
    return st.builds(
        AAssociateAC,
        called_ae_title=ae_titles(),
        calling_ae_title=ae_titles(),
        presentation_contexts=_unique_contexts(presentation_context_acs(), max_contexts),
        user_information=user_informations(request=False),
        application_context_name=st.one_of(st.just(APPLICATION_CONTEXT_NAME), uids()),
        protocol_version=st.one_of(st.just(1), st.integers(0, 0xFFFF)),
        unknown_items=st.lists(unknown_items(), max_size=2).map(tuple),
    )


@_shared
def a_associate_rjs() -> st.SearchStrategy[AAssociateRJ]:
    """A-ASSOCIATE-RJ (§9.3.4) with a (source, reason) pair PS3.8 defines."""
    return st.builds(
        lambda result, source_reason: AAssociateRJ(result, *source_reason),
        st.sampled_from([int(r) for r in RejectResult]),
        st.sampled_from(sorted((int(s), r) for s, r in REJECT_REASONS)),
    )


@_shared
def presentation_data_values(
    *,
    context_ids: st.SearchStrategy[int] | None = None,
    max_data: int = 256,
) -> st.SearchStrategy[PresentationDataValue]:
    """One PDV item (§9.3.5.1): a command or data set fragment of up to ``max_data`` bytes."""
    return st.builds(
        PresentationDataValue,
        context_id=context_ids if context_ids is not None else _odd_context_ids(),
        is_command=st.booleans(),
        is_last=st.booleans(),
        data=st.binary(max_size=max_data),
    )


@_shared
def p_data_tfs(*, max_values: int = 4, max_data: int = 256) -> st.SearchStrategy[PDataTF]:
    """P-DATA-TF (§9.3.5) with 1 to ``max_values`` PDVs."""
    return st.builds(
        PDataTF,
        st.lists(presentation_data_values(max_data=max_data), min_size=1, max_size=max_values).map(
            tuple
        ),
    )


@_shared
def a_release_rqs() -> st.SearchStrategy[AReleaseRQ]:
    """A-RELEASE-RQ (§9.3.6): there is only one."""
    return st.just(AReleaseRQ())


@_shared
def a_release_rps() -> st.SearchStrategy[AReleaseRP]:
    """A-RELEASE-RP (§9.3.7): there is only one."""
    return st.just(AReleaseRP())


@_shared
def a_aborts() -> st.SearchStrategy[AAbort]:
    """A-ABORT (§9.3.8): service-user (reason not significant, sent as 0) or service-provider
    with a reason of Table 9-26."""
    user = st.just(AAbort(AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED))
    provider = st.builds(
        AAbort,
        st.just(int(AbortSource.SERVICE_PROVIDER)),
        st.sampled_from([int(r) for r in AbortReason if r != AbortReason.RESERVED]),
    )
    return st.one_of(user, provider)


@_shared
def pdus() -> st.SearchStrategy[Pdu]:
    """Any of the seven PDUs."""
    return st.one_of(
        a_associate_rqs(),
        a_associate_acs(),
        a_associate_rjs(),
        p_data_tfs(),
        a_release_rqs(),
        a_release_rps(),
        a_aborts(),
    )


@_shared
def encoded_pdus(source: st.SearchStrategy[Pdu] | None = None) -> st.SearchStrategy[bytes]:
    """Valid PDUs on the wire (header included)."""
    return (source if source is not None else pdus()).map(encode_pdu)


# --- near-valid: the mutation engine ---------------------------------------------------------


class MutationKind(enum.Enum):
    """What a :class:`Mutation` did to a valid encoding."""

    BIT_FLIP = "bit-flip"
    """1 to 4 bits flipped, half the time within the first 80 bytes (headers and fields)."""
    TRUNCATE = "truncate"
    """The encoding cut short; its length fields still announce the whole."""
    LENGTH_OFF_BY_ONE = "length-off-by-one"
    """A PDU, item, sub-item, PDV or inner length field moved by -2..+2."""
    LENGTH_LARGE = "length-large"
    """A length field set to an extreme: 0, its maximum, just past a cap, or far off."""
    WRONG_ITEM_TYPE = "wrong-item-type"
    """An item's or sub-item's type byte replaced (by another defined type, or any byte)."""
    DUPLICATE_ITEM = "duplicate-item"
    """An item repeated in place; the lengths that enclose it grow to match."""
    DROP_ITEM = "drop-item"
    """An item removed; the lengths that enclose it shrink to match."""
    UNKNOWN_PDU_TYPE = "unknown-pdu-type"
    """The PDU type byte set to one PS3.8 does not define."""
    WRONG_PDU_TYPE = "wrong-pdu-type"
    """The PDU type byte set to another defined type: a body read as the wrong PDU."""
    TRAILING_BYTES = "trailing-bytes"
    """Bytes inserted at the end of the PDU's variable field, its length grown to match."""


ALL_MUTATION_KINDS: Final = tuple(MutationKind)
"""The default ``kinds`` of :func:`mutate`, :func:`mutations` and :func:`near_valid_pdus`."""


@attrs.frozen
class Mutation:
    """A damaged encoding, and what was done to it (for reports and shrinking output)."""

    kind: MutationKind
    detail: str
    data: bytes


@attrs.frozen
class _Field:
    """A big-endian length field: its offset and width (2 or 4 bytes)."""

    offset: int
    width: int

    def read(self, data: bytes | bytearray) -> int:
        return int.from_bytes(data[self.offset : self.offset + self.width], "big")

    def write(self, data: bytearray, value: int) -> None:
        value %= 1 << (8 * self.width)
        data[self.offset : self.offset + self.width] = value.to_bytes(self.width, "big")


@attrs.frozen
class _Item:
    """An item (or sub-item, or PDV) found in an encoding, with the lengths enclosing it."""

    start: int
    end: int
    length: _Field
    parents: tuple[_Field, ...]


@attrs.frozen
class _Layout:
    items: tuple[_Item, ...]
    lengths: tuple[_Field, ...]


_PDU_LENGTH: Final = _Field(2, 4)
_ASSOCIATE_ITEMS_START: Final = 6 + 68


def _layout(data: bytes) -> _Layout:
    """The items and length fields of a (valid or nearly valid) PDU encoding."""
    if len(data) < 6:
        return _Layout((), ())
    items: list[_Item] = []
    lengths: list[_Field] = [_PDU_LENGTH]
    end = min(len(data), 6 + _PDU_LENGTH.read(data))
    if data[0] in (PduType.A_ASSOCIATE_RQ, PduType.A_ASSOCIATE_AC):
        found, fields = _walk_items(data, _ASSOCIATE_ITEMS_START, end, (_PDU_LENGTH,), nested=False)
        items += found
        lengths += fields
    elif data[0] == PduType.P_DATA_TF:
        pos = 6
        while pos + 6 <= end:
            field = _Field(pos, 4)
            item_end = pos + 4 + field.read(data)
            if item_end > end:
                break
            items.append(_Item(pos, item_end, field, (_PDU_LENGTH,)))
            lengths.append(field)
            pos = item_end
    return _Layout(tuple(items), tuple(lengths))


def _walk_items(
    data: bytes,
    pos: int,
    end: int,
    parents: tuple[_Field, ...],
    *,
    nested: bool,
) -> tuple[list[_Item], list[_Field]]:
    """Items from ``pos`` to ``end`` (and, unless ``nested``, their sub-items)."""
    items: list[_Item] = []
    lengths: list[_Field] = []
    while pos + 4 <= end:
        item_type = data[pos]
        field = _Field(pos + 2, 2)
        item_end = pos + 4 + field.read(data)
        if item_end > end:
            break
        items.append(_Item(pos, item_end, field, parents))
        lengths.append(field)
        inner = (*parents, field)
        if nested:
            lengths += _inner_length_fields(data, item_type, pos + 4, item_end)
        elif item_type in (ItemType.PRESENTATION_CONTEXT_RQ, ItemType.PRESENTATION_CONTEXT_AC):
            found, fields = _walk_items(data, pos + 8, item_end, inner, nested=True)
            items += found
            lengths += fields
        elif item_type == ItemType.USER_INFORMATION:
            found, fields = _walk_items(data, pos + 4, item_end, inner, nested=True)
            items += found
            lengths += fields
        pos = item_end
    return items, lengths


def _inner_length_fields(data: bytes, item_type: int, pos: int, end: int) -> list[_Field]:
    """The 2-byte length fields inside user-information sub-items (UIDs, identity fields)."""
    if item_type in (
        ItemType.ROLE_SELECTION,
        ItemType.SOP_CLASS_EXTENDED_NEGOTIATION,
        ItemType.USER_IDENTITY_AC,
    ):
        count, skip_before = 1, 0
    elif item_type == ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION:
        count, skip_before = 3, 0
    elif item_type == ItemType.USER_IDENTITY_RQ:
        count, skip_before = 2, 2
    else:
        return []
    fields: list[_Field] = []
    pos += skip_before
    for _ in range(count):
        if pos + 2 > end:
            break
        field = _Field(pos, 2)
        fields.append(field)
        pos += 2 + field.read(data)
    return fields


_Choose = Callable[[int, int], int]
"""Picks an integer in ``[low, high]``: ``random.Random.randint`` or a hypothesis draw."""

_DEFINED_ITEM_TYPES: Final = tuple(int(t) for t in ItemType)
_UNDEFINED_PDU_TYPES: Final = (0x00, *range(0x08, 0x100))


_T = TypeVar("_T")


def _pick(choose: _Choose, options: Sequence[_T]) -> _T:
    return options[choose(0, len(options) - 1)]


def _applies(kind: MutationKind, data: bytes, layout: _Layout) -> bool:
    if kind in (MutationKind.WRONG_ITEM_TYPE, MutationKind.DUPLICATE_ITEM, MutationKind.DROP_ITEM):
        return bool(layout.items)
    if kind in (MutationKind.LENGTH_OFF_BY_ONE, MutationKind.LENGTH_LARGE):
        return bool(layout.lengths)
    if kind in (MutationKind.WRONG_PDU_TYPE, MutationKind.TRAILING_BYTES):
        return len(data) >= 6
    return bool(data)


def _apply(kind: MutationKind, data: bytes, layout: _Layout, choose: _Choose) -> Mutation:
    out = bytearray(data)
    detail: str
    if kind is MutationKind.BIT_FLIP:
        span = min(len(data), 80) if choose(0, 1) else len(data)
        bits = sorted({choose(0, span * 8 - 1) for _ in range(choose(1, 4))})
        for bit in bits:
            out[bit // 8] ^= 0x80 >> (bit % 8)
        detail = "bits " + ", ".join(f"{bit // 8}.{bit % 8}" for bit in bits)
    elif kind is MutationKind.TRUNCATE:
        cut = choose(0, len(data) - 1)
        del out[cut:]
        detail = f"cut at {cut} of {len(data)}"
    elif kind in (MutationKind.LENGTH_OFF_BY_ONE, MutationKind.LENGTH_LARGE):
        field = _pick(choose, layout.lengths)
        before = field.read(data)
        if kind is MutationKind.LENGTH_OFF_BY_ONE:
            after = before + _pick(choose, (-2, -1, 1, 2))
        else:
            top = (1 << (8 * field.width)) - 1
            after = _pick(
                choose,
                (
                    0,
                    top,
                    top - 1,
                    ASSOCIATE_LENGTH_CAP + 1,
                    HARD_PDU_LENGTH_CAP + 1,
                    before + 1000,
                    before * 2 + 7,
                    choose(0, top),
                ),
            )
        field.write(out, after)
        detail = f"length at {field.offset}: {before} -> {field.read(out)}"
    elif kind is MutationKind.WRONG_ITEM_TYPE:
        item = _pick(choose, layout.items)
        before = data[item.start]
        after = _pick(choose, (*_DEFINED_ITEM_TYPES, choose(0, 0xFF)))
        out[item.start] = after
        detail = f"item at {item.start}: type 0x{before:02X} -> 0x{after:02X}"
    elif kind is MutationKind.DUPLICATE_ITEM:
        item = _pick(choose, layout.items)
        size = item.end - item.start
        out[item.end : item.end] = data[item.start : item.end]
        for parent in item.parents:
            parent.write(out, parent.read(out) + size)
        detail = f"item at {item.start} ({size} bytes) repeated"
    elif kind is MutationKind.DROP_ITEM:
        item = _pick(choose, layout.items)
        size = item.end - item.start
        del out[item.start : item.end]
        for parent in item.parents:
            parent.write(out, parent.read(out) - size)
        detail = f"item at {item.start} ({size} bytes) dropped"
    elif kind is MutationKind.UNKNOWN_PDU_TYPE:
        out[0] = _pick(choose, _UNDEFINED_PDU_TYPES)
        detail = f"PDU type 0x{data[0]:02X} -> 0x{out[0]:02X}"
    elif kind is MutationKind.WRONG_PDU_TYPE:
        out[0] = _pick(choose, [int(t) for t in PduType if t != data[0]])
        detail = f"PDU type 0x{data[0]:02X} -> 0x{out[0]:02X}"
    else:
        assert kind is MutationKind.TRAILING_BYTES
        extra = bytes(choose(0, 0xFF) for _ in range(choose(1, 8)))
        end = min(len(data), 6 + _PDU_LENGTH.read(data))
        out[end:end] = extra
        _PDU_LENGTH.write(out, _PDU_LENGTH.read(out) + len(extra))
        detail = f"{len(extra)} bytes appended to the variable field"
    return Mutation(kind, detail, bytes(out))


def mutate(
    encoded: bytes,
    rng: random.Random,
    kinds: Collection[MutationKind] = ALL_MUTATION_KINDS,
) -> Mutation:
    """One mutation of ``encoded`` drawn with ``rng``: the engine of :func:`mutations`
    without hypothesis, for fast fuzz loops. ``encoded`` must not be empty."""
    layout = _layout(encoded)
    applicable = [kind for kind in kinds if _applies(kind, encoded, layout)]
    if not applicable:
        raise ValueError(f"none of {sorted(k.value for k in kinds)} applies to {encoded!r}")
    return _apply(rng.choice(applicable), encoded, layout, rng.randint)


def mutations(
    encoded: bytes, kinds: Collection[MutationKind] = ALL_MUTATION_KINDS
) -> st.SearchStrategy[Mutation]:
    """Near-valid variants of the PDU encoding ``encoded``, of the given kinds.

    The engine draws its choices from a hypothesis-controlled :class:`random.Random`, which
    shrinks towards the first kind and the smallest positions.
    """
    layout = _layout(encoded)
    if not any(_applies(kind, encoded, layout) for kind in kinds):
        raise ValueError(f"none of {sorted(k.value for k in kinds)} applies to {encoded!r}")
    return _RANDOMS.map(lambda rng: mutate(encoded, rng, kinds))


def near_valid_pdus(
    source: st.SearchStrategy[Pdu] | None = None,
    kinds: Collection[MutationKind] = ALL_MUTATION_KINDS,
) -> st.SearchStrategy[Mutation]:
    """Mutations of valid PDUs (of ``source``, default :func:`pdus`)."""
    return st.tuples(encoded_pdus(source), _RANDOMS).map(
        lambda pair: mutate(pair[0], pair[1], kinds)
    )


_RANDOMS: Final = st.randoms(use_true_random=False)


# --- streams --------------------------------------------------------------------------------


def chunkings(
    data: bytes, *, max_pieces: int = 64, bytewise_limit: int = 4096
) -> st.SearchStrategy[list[bytes]]:
    """``data`` cut into pieces as a TCP stream may deliver it: whole, one byte at a time
    (when ``data`` is at most ``bytewise_limit`` bytes), or cut at up to ``max_pieces - 1``
    random points. The pieces always join to ``data``."""

    def cut(plan: tuple[int, list[int]]) -> list[bytes]:
        mode, points = plan
        if len(data) < 2 or mode == 0:
            return [data] if data else []
        if mode == 1 and len(data) <= bytewise_limit:
            return [data[i : i + 1] for i in range(len(data))]
        cuts = sorted({1 + point % (len(data) - 1) for point in points[: max_pieces - 1]})
        return [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]

    return _CUT_PLANS.map(cut)


_CUT_PLANS: Final = st.tuples(
    st.integers(0, 2), st.lists(st.integers(0, 2**32), min_size=1, max_size=64)
)
"""(whole / bytewise / cut, cut points): one shared strategy for every :func:`chunkings`."""
