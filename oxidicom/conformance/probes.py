"""Probes: the inputs the fuzzer draws (hypothesis strategies of scripts) and their judges.

Each :class:`Probe` exercises one situation of PS3.8 (the first PDU of a connection, a PDU
on an established association, a request with fields the acceptor must ignore...). Its
``scripts`` strategy is built on the public generators of
:mod:`oxidicom.testing.strategies` (valid PDUs of every type, unknown items, the
near-valid mutation engine, TCP chunkings) around the peer's :class:`Profile`, so that
hypothesis shrinks a failing input to a minimal one. Its ``judge`` turns a transcript into
verdicts for the checks of :mod:`oxidicom.conformance.checks` it names.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Final

import attrs
from hypothesis import strategies as st

from oxidicom.conformance import script as sc
from oxidicom.conformance.checks import Severity
from oxidicom.conformance.play import Reaction, Transcript
from oxidicom.conformance.script import Script
from oxidicom.conformance.verdicts import Verdict, describe, pdu_name
from oxidicom.dimse.messages import CEchoRSP, CStoreRSP
from oxidicom.testing import strategies as ul
from oxidicom.ul.constants import ItemType, PduType
from oxidicom.ul.items import PresentationContextRQ, UnknownItem
from oxidicom.ul.pdus import AAssociateRQ, Pdu, encode_pdu

UNDEFINED_PDU_TYPES: Final = (0x00, *range(0x08, 0x100))
_DEFINED_ITEM_TYPES: Final = frozenset(int(t) for t in ItemType)
_ROOT: Final = "1.2.826.0.1.3680043.10.1341.99"
"""Our UID root for abstract and transfer syntaxes nobody supports."""


@attrs.frozen
class Profile:
    """What the baseline association told us about the peer."""

    request: AAssociateRQ
    """The baseline A-ASSOCIATE-RQ: Verification on context 1, Secondary Capture on 3."""
    accepted: tuple[int, ...]
    max_length: int
    """The peer's Maximum Length Received (0: no limit)."""
    store: bool
    """Secondary Capture was accepted and storing is allowed (``--no-store`` unset)."""
    artim: float
    implementation: str = ""


Judge = Callable[[Script, Transcript, Profile], list[Verdict]]


@attrs.frozen
class Probe:
    name: str
    checks: tuple[str, ...]
    """The checks its judge reports on (common checks are judged for every probe)."""
    scripts: Callable[[Profile], st.SearchStrategy[Script]]
    judge: Judge
    applicable: Callable[[Profile], str | None] = lambda profile: None
    """Why the probe cannot run against this peer (``None``: it can)."""
    single: bool = False
    """One deterministic input: run once, without hypothesis."""


# --- expectations shared by several probes --------------------------------------------------


def expect_abort(
    check: str,
    action: str,
    source: int,
    reaction: Reaction | None,
    later: Reaction | None = None,
    *,
    went_on: Severity = Severity.ERROR,
    went_on_summary: str = "The peer went on as if nothing had happened.",
) -> list[Verdict]:
    """The reaction to an injected PDU must be the A-ABORT of ``action`` (from ``source``).

    ``later`` is the reaction to a C-ECHO sent afterwards, which tells a peer that ignored
    the PDU from one that merely did not say anything.
    """
    if reaction is None:
        return []
    expected = f"A-ABORT (source {source}) as {action} prescribes"
    abort = reaction.first(PduType.A_ABORT)
    if abort is not None:
        if len(abort) == 10 and abort[8] != source:
            return [
                Verdict(
                    check,
                    "abort-source",
                    Severity.WARNING,
                    f"The peer sent the A-ABORT with source {abort[8]}; {action} names "
                    f"source {source} ({'service-user' if source == 0 else 'service-provider'}).",
                    expected,
                    describe(reaction),
                )
            ]
        return []
    answered = [pdu for pdu in reaction.received if pdu[:1] != bytes([PduType.A_ABORT])]
    if answered or reaction.responses or (later is not None and later.responses):
        seen = describe(reaction)
        if later is not None and later.responses:
            seen += f"; to a C-ECHO sent next, it {describe(later)}"
        return [Verdict(check, "went-on", went_on, went_on_summary, expected, seen)]
    if reaction.closed:
        return [
            Verdict(
                check,
                "closed-without-abort",
                Severity.WARNING,
                f"The peer closed the connection without the A-ABORT that {action} sends "
                "first; the requestor cannot tell a protocol error from a network failure.",
                expected,
                describe(reaction),
            )
        ]
    if reaction.silent:
        return [
            Verdict(
                check,
                "kept-open",
                Severity.ERROR,
                "The peer neither aborted nor closed the connection: it waits for more while "
                f"the standard says the PDU ends the association ({action}).",
                expected,
                describe(reaction),
            )
        ]
    return []


def _encode(pdu: Pdu) -> bytes:
    return encode_pdu(pdu)


def _first_reaction(transcript: Transcript, act: sc.Act) -> Reaction | None:
    for exchange in transcript.exchanges:
        if exchange.step.act is act:
            return exchange.reaction
    return None


def _associated(transcript: Transcript) -> bool:
    reaction = transcript.reaction(0)
    return reaction is not None and PduType.A_ASSOCIATE_AC in reaction.pdu_types


# --- Sta2: the first PDU of a connection ----------------------------------------------------


def _undefined_pdus() -> st.SearchStrategy[bytes]:
    """Complete PDUs of types PS3.8 does not define (their length says what follows)."""
    return st.builds(
        lambda pdu_type, body: bytes([pdu_type, 0]) + len(body).to_bytes(4, "big") + body,
        st.sampled_from(UNDEFINED_PDU_TYPES),
        st.binary(max_size=64),
    )


def _sta2_unrecognized(profile: Profile) -> st.SearchStrategy[Script]:
    return _undefined_pdus().map(
        lambda wire: Script(
            (sc.inject(wire, f"a PDU of undefined type 0x{wire[0]:02X} as the first PDU"),)
        )
    )


def _judge_sta2(check: str) -> Judge:
    def judge(script: Script, transcript: Transcript, profile: Profile) -> list[Verdict]:
        return expect_abort(
            check,
            "Table 9-10 (Sta2) -> AA-1",
            0,
            transcript.reaction(0),
            went_on_summary="The peer answered as if the PDU were an acceptable first PDU.",
        )

    return judge


_STA2_UNEXPECTED: Final = st.one_of(
    ul.a_associate_acs(),
    ul.a_associate_rjs(),
    ul.p_data_tfs(),
    ul.a_release_rqs(),
    ul.a_release_rps(),
)


def _sta2_unexpected(profile: Profile) -> st.SearchStrategy[Script]:
    return _STA2_UNEXPECTED.map(_encode).map(
        lambda wire: Script((sc.inject(wire, f"{pdu_name(wire)} as the first PDU"),))
    )


def classify_associate_rq(wire: bytes) -> str:
    """How an acceptor must see a (damaged) A-ASSOCIATE-RQ, from its lengths alone.

    ``incomplete``: the PDU-length announces more than was sent (the acceptor rightly
    waits). ``invalid``: an item or sub-item runs past the end of the PDU or of its parent
    item, or the PDU is too short for its fixed fields (Evt19). ``valid``: the lengths add
    up (the contents may still be wrong, but nothing here says how the peer must react).
    """
    if len(wire) < 6:
        return "incomplete"
    declared = int.from_bytes(wire[2:6], "big")
    if len(wire) - 6 < declared:
        return "incomplete"
    body = wire[6 : 6 + declared]
    if len(body) < 68:
        return "invalid"

    def tiles(start: int, end: int, nested: bool) -> bool:
        pos = start
        while pos < end:
            if end - pos < 4:
                return False
            item_type = body[pos]
            item_end = pos + 4 + int.from_bytes(body[pos + 2 : pos + 4], "big")
            if item_end > end:
                return False
            if nested:
                pass
            elif item_type == ItemType.PRESENTATION_CONTEXT_RQ:
                if item_end - pos < 8 or not tiles(pos + 8, item_end, True):
                    return False
            elif item_type == ItemType.USER_INFORMATION and not tiles(pos + 4, item_end, True):
                return False
            pos = item_end
        return True

    return "valid" if tiles(68, len(body), False) else "invalid"


def _sta2_invalid_rq(profile: Profile) -> st.SearchStrategy[Script]:
    encoded = _encode(profile.request)
    kinds = (ul.MutationKind.LENGTH_OFF_BY_ONE, ul.MutationKind.LENGTH_LARGE)

    def build(mutation: ul.Mutation) -> Script:
        framing = classify_associate_rq(mutation.data)
        step = sc.associate(profile.request, mutation.data, f"A-ASSOCIATE-RQ, {mutation.detail}")
        return Script(
            (step,),
            {"framing": framing, "view": "unreliable", "complete": int(framing == "valid")},
        )

    return (
        ul.mutations(encoded, kinds)
        .map(build)
        .filter(lambda script: script.fact("framing") != "incomplete")
    )


def _judge_sta2_invalid_rq(
    script: Script, transcript: Transcript, profile: Profile
) -> list[Verdict]:
    if script.fact("framing") != "invalid":
        return []
    check = "sta2-invalid-associate-rq"
    reaction = transcript.reaction(0)
    if reaction is None:
        return []
    expected = "A-ABORT (Table 9-10, Evt19 in Sta2 -> AA-1)"
    if PduType.A_ASSOCIATE_AC in reaction.pdu_types:
        return [
            Verdict(
                check,
                "accepted-invalid",
                Severity.WARNING,
                "The peer accepted an A-ASSOCIATE-RQ whose item lengths run past the end of "
                "the PDU (lenient: PS3.8 makes it an invalid PDU, answered with A-ABORT).",
                expected,
                describe(reaction),
            )
        ]
    if PduType.A_ASSOCIATE_RJ in reaction.pdu_types:
        return [
            Verdict(
                check,
                "rejected-instead-of-abort",
                Severity.WARNING,
                "The peer answered an invalid A-ASSOCIATE-RQ with A-ASSOCIATE-RJ (as if it "
                "were valid but unacceptable, AE-6/AE-8) where Table 9-10 prescribes A-ABORT.",
                expected,
                describe(reaction),
            )
        ]
    return expect_abort(check, "Table 9-10 (Evt19 in Sta2) -> AA-1", 0, reaction)


# --- A-ASSOCIATE-RQ fields the acceptor must not hold against us -----------------------------


def _baseline_answer(transcript: Transcript) -> tuple[int, ...] | None:
    """The accepted contexts, or None when the association was not accepted."""
    if not _associated(transcript):
        return None
    return transcript.accepted_contexts


def _expect_baseline(check: str, summary: str) -> Judge:
    def judge(script: Script, transcript: Transcript, profile: Profile) -> list[Verdict]:
        reaction = transcript.reaction(0)
        accepted = _baseline_answer(transcript)
        if accepted == profile.accepted:
            return []
        return [
            Verdict(
                check,
                "answer-changed",
                Severity.ERROR,
                summary,
                f"A-ASSOCIATE-AC accepting contexts {list(profile.accepted)}, as without them",
                describe(reaction)
                + ("" if accepted is None else f" (contexts accepted: {list(accepted)})"),
            )
        ]

    return judge


def _protocol_versions(profile: Profile) -> st.SearchStrategy[Script]:
    def build(version: int) -> Script:
        rq = attrs.evolve(profile.request, protocol_version=version)
        steps = [sc.associate(rq, note=f"A-ASSOCIATE-RQ with protocol version 0x{version:04X}")]
        if version & 1:
            steps += [sc.echo(), sc.release()]
        return Script(tuple(steps), {"version": version})

    return st.integers(0, 0xFFFF).filter(lambda version: version != 1).map(build)


def _judge_protocol_version(
    script: Script, transcript: Transcript, profile: Profile
) -> list[Verdict]:
    version = int(script.fact("version", 1))
    reaction = transcript.reaction(0)
    if reaction is None:
        return []
    if version & 1:
        return _expect_baseline(
            "protocol-version-other-bits",
            f"The peer's answer changed when protocol version bits other than bit 0 were set "
            f"(0x{version:04X}); a version 1 receiver shall only test bit 0.",
        )(script, transcript, profile)
    check = "protocol-version-without-bit-0"
    expected = "A-ASSOCIATE-RJ, source 2 (ACSE), reason 2 (protocol-version-not-supported)"
    if PduType.A_ASSOCIATE_AC in reaction.pdu_types:
        return [
            Verdict(
                check,
                "accepted",
                Severity.ERROR,
                f"The peer accepted protocol version 0x{version:04X}, which lacks bit 0 "
                "(version 1).",
                expected,
                describe(reaction),
            )
        ]
    reject = reaction.first(PduType.A_ASSOCIATE_RJ)
    if reject is not None:
        if len(reject) == 10 and (reject[8], reject[9]) != (2, 2):
            return [
                Verdict(
                    check,
                    "reject-reason",
                    Severity.WARNING,
                    "The peer rejected the unsupported protocol version, but not as "
                    "service-provider (ACSE) / protocol-version-not-supported.",
                    expected,
                    describe(reaction),
                )
            ]
        return []
    if reaction.first(PduType.A_ABORT) is not None or reaction.closed:
        return [
            Verdict(
                check,
                "no-reject",
                Severity.WARNING,
                "The peer aborted or closed instead of rejecting: AE-6 answers a request "
                "the provider cannot accept with A-ASSOCIATE-RJ.",
                expected,
                describe(reaction),
            )
        ]
    return []


def reserved_offsets(wire: bytes) -> list[int]:
    """Offsets of the reserved bytes of an encoded A-ASSOCIATE-RQ (header, fixed fields,
    every item and sub-item)."""
    offsets = [1, 8, 9, *range(42, 74)]
    end = min(len(wire), 6 + int.from_bytes(wire[2:6], "big"))

    def walk(pos: int, stop: int, nested: bool) -> None:
        while pos + 4 <= stop:
            item_type = wire[pos]
            item_end = pos + 4 + int.from_bytes(wire[pos + 2 : pos + 4], "big")
            offsets.append(pos + 1)
            if not nested and item_type == ItemType.PRESENTATION_CONTEXT_RQ:
                offsets.extend((pos + 5, pos + 6, pos + 7))
                walk(pos + 8, item_end, True)
            elif not nested and item_type == ItemType.USER_INFORMATION:
                walk(pos + 4, item_end, True)
            pos = item_end

    walk(74, end, False)
    return offsets


def _reserved_fields(profile: Profile) -> st.SearchStrategy[Script]:
    encoded = _encode(profile.request)
    offsets = reserved_offsets(encoded)
    echo = sc.echo_wire()

    def build(changes: list[tuple[int, int]], pdata_reserved: int) -> Script:
        wire = bytearray(encoded)
        for offset, value in changes:
            wire[offset] = value
        echo_wire = bytearray(echo)
        echo_wire[1] = pdata_reserved
        where = ", ".join(f"byte {offset + 1} = 0x{value:02X}" for offset, value in changes)
        return Script(
            (
                sc.associate(profile.request, bytes(wire), f"A-ASSOCIATE-RQ with {where}"),
                sc.inject(
                    bytes(echo_wire),
                    f"C-ECHO-RQ in a P-DATA-TF whose byte 2 (reserved) is 0x{pdata_reserved:02X}",
                ),
                sc.release(),
            ),
            {"view": "same-contexts"},
        )

    change = st.tuples(st.sampled_from(offsets), st.integers(1, 0xFF))
    return st.builds(
        build,
        st.lists(change, min_size=1, max_size=6, unique_by=lambda c: c[0]),
        st.integers(0, 0xFF),
    )


def _judge_reserved(script: Script, transcript: Transcript, profile: Profile) -> list[Verdict]:
    check = "reserved-fields-not-tested"
    verdicts = _expect_baseline(
        check,
        "The peer's answer to the A-ASSOCIATE-RQ changed when reserved fields were not zero.",
    )(script, transcript, profile)
    if verdicts:
        return verdicts
    echo = transcript.reaction(1)
    if echo is not None and not any(isinstance(m, CEchoRSP) for m in echo.responses):
        return [
            Verdict(
                check,
                "pdata-reserved-tested",
                Severity.ERROR,
                "The peer did not serve a C-ECHO whose P-DATA-TF had a non-zero reserved byte.",
                "C-ECHO-RSP",
                describe(echo),
            )
        ]
    return []


def _undefined_items(source: st.SearchStrategy[UnknownItem]) -> st.SearchStrategy[UnknownItem]:
    return source.filter(lambda item: item.item_type not in _DEFINED_ITEM_TYPES)


def _item_bytes(item: UnknownItem) -> bytes:
    return bytes([item.item_type, 0]) + len(item.data).to_bytes(2, "big") + item.data


def _unknown_items(profile: Profile) -> st.SearchStrategy[Script]:
    encoded = _encode(profile.request)
    boundaries = [74]
    pos = 74
    while pos + 4 <= len(encoded):
        pos += 4 + int.from_bytes(encoded[pos + 2 : pos + 4], "big")
        boundaries.append(pos)

    def build(placed: list[tuple[UnknownItem, int]]) -> Script:
        wire = bytearray(encoded)
        for item, slot in sorted(placed, key=lambda p: -boundaries[p[1] % len(boundaries)]):
            at = boundaries[slot % len(boundaries)]
            wire[at:at] = _item_bytes(item)
        wire[2:6] = (len(wire) - 6).to_bytes(4, "big")
        types = ", ".join(f"0x{item.item_type:02X}" for item, _ in placed)
        return Script(
            (
                sc.associate(
                    profile.request, bytes(wire), f"A-ASSOCIATE-RQ with items of type {types}"
                ),
                sc.echo(),
                sc.release(),
            ),
            {"view": "same-contexts"},
        )

    placed = st.tuples(_undefined_items(ul.unknown_items()), st.integers(0, len(boundaries) - 1))
    return st.lists(placed, min_size=1, max_size=3).map(build)


def _unknown_sub_items(profile: Profile) -> st.SearchStrategy[Script]:
    def build(items: list[UnknownItem]) -> Script:
        info = attrs.evolve(profile.request.user_information, unknown_items=tuple(items))
        wire = _encode(attrs.evolve(profile.request, user_information=info))
        types = ", ".join(f"0x{item.item_type:02X}" for item in items)
        return Script(
            (
                sc.associate(
                    profile.request, wire, f"A-ASSOCIATE-RQ with user-information sub-items {types}"
                ),
                sc.echo(),
                sc.release(),
            ),
            {"view": "same-contexts"},
        )

    return st.lists(_undefined_items(ul.unknown_sub_items()), min_size=1, max_size=3).map(build)


# --- Sta6: on an established association ----------------------------------------------------


def _sta6(
    profile: Profile, wires: st.SearchStrategy[bytes], what: Callable[[bytes], str]
) -> st.SearchStrategy[Script]:
    return wires.map(
        lambda wire: Script((sc.associate(profile.request), sc.inject(wire, what(wire)), sc.echo()))
    )


def _judge_sta6(check: str, went_on: Severity, went_on_summary: str) -> Judge:
    def judge(script: Script, transcript: Transcript, profile: Profile) -> list[Verdict]:
        if not _associated(transcript):
            return []
        return expect_abort(
            check,
            "Table 9-10 (Sta6) -> AA-8",
            2,
            transcript.reaction(1),
            transcript.reaction(2),
            went_on=went_on,
            went_on_summary=went_on_summary,
        )

    return judge


_STA6_UNEXPECTED: Final = st.one_of(
    ul.a_associate_rqs(), ul.a_associate_acs(), ul.a_associate_rjs(), ul.a_release_rps()
)


def _invalid_sta6_pdus() -> st.SearchStrategy[tuple[bytes, str]]:
    echo = sc.echo_wire()[12:]  # the C-ECHO-RQ command set alone

    def pdv(context_id: int, item_length: int, data: bytes) -> bytes:
        body = item_length.to_bytes(4, "big") + bytes([context_id, 0x03]) + data
        return bytes([PduType.P_DATA_TF, 0]) + len(body).to_bytes(4, "big") + body

    overrun = st.integers(1, 4096).map(
        lambda extra: (
            pdv(1, len(echo) + 2 + extra, echo),
            f"P-DATA-TF whose PDV item length runs {extra} bytes past the PDU",
        )
    )
    short = st.integers(0, 1).map(
        lambda length: (pdv(1, length, echo[:0]), f"P-DATA-TF with a PDV item length of {length}")
    )
    empty = st.just((bytes([PduType.P_DATA_TF, 0, 0, 0, 0, 0]), "P-DATA-TF without any PDV item"))
    even = st.integers(0, 127).map(
        lambda n: (
            pdv(2 * n, len(echo) + 2, echo),
            f"C-ECHO-RQ in a PDV with the even presentation context ID {2 * n}",
        )
    )
    release = st.one_of(st.integers(0, 3), st.integers(5, 16)).map(
        lambda length: (
            bytes([PduType.A_RELEASE_RQ, 0]) + length.to_bytes(4, "big") + bytes(length),
            f"A-RELEASE-RQ with PDU-length {length} (PS3.8 fixes it at 4)",
        )
    )
    return st.one_of(empty, short, overrun, even, release)


def _sta6_invalid(profile: Profile) -> st.SearchStrategy[Script]:
    return _invalid_sta6_pdus().map(
        lambda pair: Script((sc.associate(profile.request), sc.inject(pair[0], pair[1]), sc.echo()))
    )


# --- presentation contexts -------------------------------------------------------------------


def _unknown_uid(n: int) -> str:
    return f"{_ROOT}.{n}"


def _rejected_contexts(profile: Profile) -> st.SearchStrategy[Script]:
    def build(kinds: list[tuple[bool, int]]) -> Script:
        contexts = [PresentationContextRQ(1, sc.VERIFICATION, (sc.IMPLICIT_VR_LE,))]
        for index, (unknown_abstract, n) in enumerate(kinds):
            if unknown_abstract:
                context = PresentationContextRQ(
                    3 + 2 * index, _unknown_uid(n), (sc.IMPLICIT_VR_LE,)
                )
            else:
                context = PresentationContextRQ(
                    3 + 2 * index, sc.SECONDARY_CAPTURE, (_unknown_uid(100000 + n),)
                )
            contexts.append(context)
        rq = attrs.evolve(profile.request, presentation_contexts=tuple(contexts))
        return Script(
            (
                sc.associate(rq, note=f"A-ASSOCIATE-RQ with {len(kinds)} unsupported context(s)"),
                sc.echo(),
                sc.release(),
            ),
            {"own_echo": 1},
        )

    return st.lists(st.tuples(st.booleans(), st.integers(1, 999)), min_size=1, max_size=3).map(
        build
    )


def _judge_rejected_contexts(
    script: Script, transcript: Transcript, profile: Profile
) -> list[Verdict]:
    check = "echo-after-rejected-context"
    reaction = transcript.reaction(0)
    if reaction is None:
        return []
    if not _associated(transcript):
        return [
            Verdict(
                check,
                "association-refused",
                Severity.ROBUSTNESS,
                "The peer refused the whole association because some proposed contexts were "
                "unsupported (PS3.8 lets the acceptor reject each context on its own).",
                "A-ASSOCIATE-AC rejecting only the unsupported contexts",
                describe(reaction),
            )
        ]
    echo = transcript.reaction(1)
    if (
        1 in transcript.accepted_contexts
        and echo is not None
        and not any(isinstance(m, CEchoRSP) for m in echo.responses)
    ):
        return [
            Verdict(
                check,
                "echo-not-answered",
                Severity.ERROR,
                "After rejecting some contexts the peer did not answer a C-ECHO on the "
                "accepted Verification context.",
                "C-ECHO-RSP",
                describe(echo),
            )
        ]
    return []


def _unaccepted_context(profile: Profile) -> st.SearchStrategy[Script]:
    contexts = (
        PresentationContextRQ(1, sc.VERIFICATION, (sc.IMPLICIT_VR_LE,)),
        PresentationContextRQ(3, _unknown_uid(1), (sc.IMPLICIT_VR_LE,)),
    )
    rq = attrs.evolve(profile.request, presentation_contexts=contexts)

    def build(context_id: int) -> Script:
        return Script(
            (
                sc.associate(rq, note="A-ASSOCIATE-RQ: Verification on 1, an unknown syntax on 3"),
                sc.inject(
                    sc.echo_wire(context_id),
                    f"C-ECHO-RQ on presentation context {context_id}, which was not accepted",
                ),
                sc.echo(),
            ),
            {"context": context_id},
        )

    return st.one_of(st.just(3), st.integers(2, 127).map(lambda n: 2 * n + 1)).map(build)


def _judge_unaccepted(script: Script, transcript: Transcript, profile: Profile) -> list[Verdict]:
    context_id = int(script.fact("context", 3))
    if not _associated(transcript) or context_id in transcript.accepted_contexts:
        return []
    check = "pdv-unaccepted-context"
    reaction, later = transcript.reaction(1), transcript.reaction(2)
    if reaction is None:
        return []
    if any(isinstance(m, CEchoRSP) for m in reaction.responses):
        return [
            Verdict(
                check,
                "served",
                Severity.WARNING,
                f"The peer served a C-ECHO sent on presentation context {context_id}, which it "
                "had not accepted.",
                "A-ABORT (or at least no service on that context)",
                describe(reaction),
            )
        ]
    if reaction.silent and later is not None and not later.closed:
        return [
            Verdict(
                check,
                "ignored",
                Severity.ROBUSTNESS,
                "The peer ignored a request on an unaccepted context without a word: the "
                "requestor waits for a response that never comes.",
                "A-ABORT",
                describe(reaction),
            )
        ]
    return []


def _max_length_scripts(profile: Profile) -> st.SearchStrategy[Script]:
    rq = attrs.evolve(profile.request)

    def build(half_excess: int, instance: int) -> Script:
        limit = profile.max_length
        uid = f"2.25.{instance + 1}"
        base = len(sc.sample_data_set(uid, 0))
        size = max(base, limit + 2 * half_excess - 6)
        size += size % 2  # DIMSE fragments have even lengths
        data_set = sc.sample_data_set(uid, size - base)
        pdu_length = len(data_set) + 6
        header = bytes([PduType.P_DATA_TF, 0]) + pdu_length.to_bytes(4, "big")
        pdv = (len(data_set) + 2).to_bytes(4, "big") + bytes([sc.STORE_CONTEXT, 0x02])
        wire = sc.store_command(sc.STORE_CONTEXT, uid) + header + pdv + data_set
        return Script(
            (
                sc.associate(rq, note="A-ASSOCIATE-RQ: Verification on 1, Secondary Capture on 3"),
                sc.inject(
                    wire,
                    f"C-STORE-RQ whose data set comes in one P-DATA-TF of PDU-length "
                    f"{pdu_length} (the peer's maximum: {limit})",
                ),
            ),
            {"pdu_length": pdu_length, "limit": limit},
        )

    return st.builds(build, st.integers(-4, 2048), st.integers(0, 2**32))


def _judge_max_length(script: Script, transcript: Transcript, profile: Profile) -> list[Verdict]:
    if not _associated(transcript):
        return []
    length, limit = int(script.fact("pdu_length")), int(script.fact("limit"))
    reaction = transcript.reaction(1)
    if reaction is None:
        return []
    served = any(isinstance(m, CStoreRSP) for m in reaction.responses)
    check = "pdata-max-length"
    if length > limit and served:
        return [
            Verdict(
                check,
                "accepted-oversized",
                Severity.WARNING,
                "The peer accepted a P-DATA-TF larger than its Maximum Length Received "
                f"({length} > {limit} bytes); an acceptor may be lenient.",
                "A-ABORT (strict) or acceptance (lenient)",
                describe(reaction),
            )
        ]
    if length <= limit and not served:
        return [
            Verdict(
                check,
                "refused-within-limit",
                Severity.ERROR,
                f"The peer did not accept a P-DATA-TF of {length} bytes, within its Maximum "
                f"Length Received of {limit}.",
                "C-STORE-RSP",
                describe(reaction),
            )
        ]
    if length > limit and reaction.silent:
        return [
            Verdict(
                check,
                "stalled",
                Severity.ROBUSTNESS,
                "The peer neither answered nor aborted an over-long P-DATA-TF.",
                "A-ABORT or C-STORE-RSP",
                describe(reaction),
            )
        ]
    return []


# --- time and TCP -----------------------------------------------------------------------------


def _artim(profile: Profile) -> st.SearchStrategy[Script]:
    partial = _encode(profile.request)[:3]
    return st.just(
        Script(
            (
                sc.idle(
                    partial,
                    profile.artim,
                    "the first 3 bytes of an A-ASSOCIATE-RQ, then nothing",
                ),
            ),
            {"seconds": str(profile.artim)},
        )
    )


def _judge_artim(script: Script, transcript: Transcript, profile: Profile) -> list[Verdict]:
    reaction = transcript.reaction(0)
    if reaction is None or reaction.closed:
        return []
    return [
        Verdict(
            "artim-closes-idle-connection",
            "not-closed",
            Severity.ROBUSTNESS,
            f"The peer kept a connection without a complete A-ASSOCIATE-RQ open for "
            f"{profile.artim:g} s (ARTIM's value is the implementation's choice).",
            f"the connection closed within {profile.artim:g} s",
            describe(reaction),
        )
    ]


def _cuts(pieces: Sequence[bytes]) -> tuple[int, ...]:
    return tuple(itertools.accumulate(len(piece) for piece in pieces))[:-1]


def _segmented(profile: Profile) -> st.SearchStrategy[Script]:
    rq = _encode(profile.request)
    echo = sc.echo_wire()

    def build(rq_pieces: list[bytes], echo_pieces: list[bytes]) -> Script:
        return Script(
            (
                attrs.evolve(
                    sc.associate(profile.request),
                    cuts=_cuts(rq_pieces),
                    note=f"A-ASSOCIATE-RQ in {len(rq_pieces)} TCP segments",
                ),
                attrs.evolve(
                    sc.inject(echo, f"C-ECHO-RQ in {len(echo_pieces)} TCP segments"),
                    cuts=_cuts(echo_pieces),
                ),
                sc.release(),
            )
        )

    return st.builds(build, ul.chunkings(rq, max_pieces=16), ul.chunkings(echo, max_pieces=16))


def _judge_segmented(script: Script, transcript: Transcript, profile: Profile) -> list[Verdict]:
    check = "tcp-segmentation"
    verdicts = _expect_baseline(
        check, "The peer answered an A-ASSOCIATE-RQ cut into TCP segments differently."
    )(script, transcript, profile)
    if verdicts:
        return [attrs.evolve(v, severity=Severity.ROBUSTNESS) for v in verdicts]
    echo = transcript.reaction(1)
    if echo is not None and not any(isinstance(m, CEchoRSP) for m in echo.responses):
        return [
            Verdict(
                check,
                "echo-not-answered",
                Severity.ROBUSTNESS,
                "The peer did not answer a C-ECHO-RQ cut into TCP segments.",
                "C-ECHO-RSP",
                describe(echo),
            )
        ]
    return []


def _baseline(profile: Profile) -> st.SearchStrategy[Script]:
    return st.just(baseline_script(profile.request))


def baseline_script(rq: AAssociateRQ) -> Script:
    return Script((sc.associate(rq), sc.echo(), sc.release()))


def _no_verdicts(script: Script, transcript: Transcript, profile: Profile) -> list[Verdict]:
    return []


def _needs_store(profile: Profile) -> str | None:
    if not profile.store:
        return "Secondary Capture storage was not accepted (or --no-store was given)"
    if not profile.max_length:
        return "the peer announces no Maximum Length Received (0: unlimited)"
    return None


def _needs_artim(profile: Profile) -> str | None:
    return None if profile.artim > 0 else "--artim 0"


PROBES: Final[tuple[Probe, ...]] = (
    Probe("baseline", (), _baseline, _no_verdicts, single=True),
    Probe(
        "sta2-unrecognized",
        ("sta2-unrecognized-pdu",),
        _sta2_unrecognized,
        _judge_sta2("sta2-unrecognized-pdu"),
    ),
    Probe(
        "sta2-unexpected",
        ("sta2-unexpected-pdu",),
        _sta2_unexpected,
        _judge_sta2("sta2-unexpected-pdu"),
    ),
    Probe(
        "sta2-invalid-rq",
        ("sta2-invalid-associate-rq", "associate-answered"),
        _sta2_invalid_rq,
        _judge_sta2_invalid_rq,
    ),
    Probe(
        "protocol-version",
        ("protocol-version-without-bit-0", "protocol-version-other-bits"),
        _protocol_versions,
        _judge_protocol_version,
    ),
    Probe(
        "reserved-fields",
        ("reserved-fields-not-tested", "ac-echoes-request-fields"),
        _reserved_fields,
        _judge_reserved,
    ),
    Probe(
        "unknown-items",
        ("unknown-items-ignored",),
        _unknown_items,
        _expect_baseline(
            "unknown-items-ignored",
            "The peer's answer changed when items of undefined types were added to the "
            "A-ASSOCIATE-RQ.",
        ),
    ),
    Probe(
        "unknown-sub-items",
        ("unknown-sub-items-ignored",),
        _unknown_sub_items,
        _expect_baseline(
            "unknown-sub-items-ignored",
            "The peer's answer changed when user-information sub-items of undefined types "
            "were added to the A-ASSOCIATE-RQ.",
        ),
    ),
    Probe(
        "sta6-unrecognized",
        ("sta6-unrecognized-pdu",),
        lambda profile: _sta6(
            profile, _undefined_pdus(), lambda wire: f"a PDU of undefined type 0x{wire[0]:02X}"
        ),
        _judge_sta6(
            "sta6-unrecognized-pdu",
            Severity.ERROR,
            "The peer ignored a PDU of undefined type and went on serving the association.",
        ),
    ),
    Probe(
        "sta6-unexpected",
        ("sta6-unexpected-pdu",),
        lambda profile: _sta6(
            profile, _STA6_UNEXPECTED.map(_encode), lambda wire: f"{pdu_name(wire)} in Sta6"
        ),
        _judge_sta6(
            "sta6-unexpected-pdu",
            Severity.ERROR,
            "The peer ignored a PDU that Table 9-10 does not allow in Sta6 and went on.",
        ),
    ),
    Probe(
        "sta6-invalid",
        ("sta6-invalid-pdu",),
        _sta6_invalid,
        _judge_sta6(
            "sta6-invalid-pdu",
            Severity.WARNING,
            "The peer accepted an invalid PDU and went on (lenient: Table 9-10 answers an "
            "invalid PDU with A-ABORT).",
        ),
    ),
    Probe(
        "unaccepted-context",
        ("pdv-unaccepted-context",),
        _unaccepted_context,
        _judge_unaccepted,
    ),
    Probe(
        "rejected-context",
        ("echo-after-rejected-context",),
        _rejected_contexts,
        _judge_rejected_contexts,
    ),
    Probe(
        "max-length",
        ("pdata-max-length",),
        _max_length_scripts,
        _judge_max_length,
        applicable=_needs_store,
    ),
    Probe("segmentation", ("tcp-segmentation",), _segmented, _judge_segmented),
    Probe(
        "artim",
        ("artim-closes-idle-connection",),
        _artim,
        _judge_artim,
        applicable=_needs_artim,
        single=True,
    ),
)
"""Every probe, in the order they run (the slow ARTIM probe last)."""
