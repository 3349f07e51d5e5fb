"""Verdicts, and the judges that apply to everything the peer sends, whatever the input.

A :class:`Verdict` is one failed requirement seen in one transcript. The judges here look at
the raw PDUs the peer sent (reject and abort codes, reserved fields, the A-ASSOCIATE-AC),
at what our requestor state machine made of them (protocol errors), and at how the
well-behaved steps of a script were answered (C-ECHO, A-RELEASE, A-ASSOCIATE-RQ). The
judges specific to one kind of input live with its probe (:mod:`oxidicom.conformance.probes`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import attrs

from oxidicom.conformance.checks import Severity
from oxidicom.conformance.play import Reaction, Transcript
from oxidicom.conformance.script import Act, Script, Step
from oxidicom.dimse.messages import CEchoRSP
from oxidicom.ul.constants import REJECT_REASONS, PduType, describe_reject
from oxidicom.ul.errors import RemoteProtocolError
from oxidicom.ul.pdus import AAssociateAC, AAssociateRQ, decode_pdu, encode_pdu

PDU_NAMES = {
    0x01: "A-ASSOCIATE-RQ",
    0x02: "A-ASSOCIATE-AC",
    0x03: "A-ASSOCIATE-RJ",
    0x04: "P-DATA-TF",
    0x05: "A-RELEASE-RQ",
    0x06: "A-RELEASE-RP",
    0x07: "A-ABORT",
}
_ABORT_REASONS = frozenset({0, 1, 2, 4, 5, 6})


@attrs.frozen
class Verdict:
    check: str
    code: str
    """The way the check failed, e.g. ``closed-without-abort``: one finding per code."""
    severity: Severity
    summary: str
    """One sentence, plain words."""
    expected: str
    observed: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.check, self.code)


def pdu_name(pdu: bytes) -> str:
    if not pdu:
        return "nothing"
    return PDU_NAMES.get(pdu[0], f"PDU of undefined type 0x{pdu[0]:02X}")


def describe(reaction: Reaction | None) -> str:
    """What the peer did, in words: "A-ABORT (source 0, reason 0), then closed"."""
    if reaction is None:
        return "nothing: the connection was already closed"
    if reaction.skipped:
        return f"not sent: {reaction.skipped}"
    parts = []
    for pdu in reaction.received:
        name = pdu_name(pdu)
        if len(pdu) == 10 and pdu[0] == PduType.A_ABORT:
            name += f" (source {pdu[8]}, reason {pdu[9]})"
        elif len(pdu) == 10 and pdu[0] == PduType.A_ASSOCIATE_RJ:
            name += f" ({describe_reject(pdu[7], pdu[8], pdu[9])})"
        parts.append(name)
    parts.extend(type(message).__name__ for message in reaction.responses)
    if reaction.closed:
        parts.append("reset the connection" if reaction.reset else "closed the connection")
    if reaction.silent:
        parts.append(f"sent nothing and kept the connection open for {reaction.seconds:.1f} s")
    return ", then ".join(parts) if parts else "nothing"


def request_on_wire(step: Step) -> AAssociateRQ | None:
    """The A-ASSOCIATE-RQ that actually went on the wire, if it decodes."""
    wire = step.wire
    if len(wire) < 6 or wire[0] != PduType.A_ASSOCIATE_RQ:
        return None
    try:
        decoded = decode_pdu(PduType.A_ASSOCIATE_RQ, wire[6 : 6 + int.from_bytes(wire[2:6])])
    except RemoteProtocolError:
        return None
    return decoded if isinstance(decoded, AAssociateRQ) else None


def view_is_exact(script: Script) -> bool:
    """Whether our requestor knew what went on the wire before the first injection."""
    view = script.fact("view", "")
    if view in ("exact", "same-contexts"):
        return True
    if view == "unreliable":
        return False
    first = script.steps[0] if script.steps else None
    return (
        first is not None
        and first.act is Act.ASSOCIATE
        and first.request is not None
        and first.wire == encode_pdu(first.request)
    )


def is_clean_until(script: Script, index: int) -> bool:
    """No step before ``index`` was an injection: the association is as the requestor
    believes, and its requests must be served."""
    return view_is_exact(script) and all(
        step.act is not Act.INJECT and not step.cuts for step in script.steps[:index]
    )


# --- the judges that always apply -----------------------------------------------------------


def judge_common(transcript: Transcript) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for reaction in transcript.reactions():
        for pdu in reaction.received:
            verdicts += _judge_pdu_fields(pdu)
    verdicts += _judge_association(transcript)
    verdicts += _judge_steps(transcript)
    for index, exchange in enumerate(transcript.exchanges):
        # After an injection the requestor's idea of the state is stale: what it finds
        # unexpected may be the peer's right answer to the injected PDU.
        answer = exchange.reaction
        clean = is_clean_until(transcript.script, index + 1)
        if clean and answer is not None and answer.protocol_error is not None:
            verdicts.append(
                Verdict(
                    "peer-pdus-valid",
                    "invalid-or-unexpected-pdu",
                    Severity.ERROR,
                    "Our requestor state machine found a PDU from the peer invalid or "
                    "unexpected, and aborted.",
                    "well-formed PDUs that Table 9-10 expects in the requestor's state",
                    answer.protocol_error,
                )
            )
    return _unique(verdicts)


def _unique(verdicts: list[Verdict]) -> list[Verdict]:
    seen: set[tuple[str, str]] = set()
    out = []
    for verdict in verdicts:
        if verdict.key not in seen:
            seen.add(verdict.key)
            out.append(verdict)
    return out


def _judge_pdu_fields(pdu: bytes) -> Iterator[Verdict]:
    if len(pdu) < 6:
        return
    name = pdu_name(pdu)
    if pdu[1] != 0:
        yield _reserved(f"{name} byte 2 (reserved) is 0x{pdu[1]:02X}")
    if pdu[0] == PduType.A_ASSOCIATE_RJ and len(pdu) == 10:
        result, source, reason = pdu[7], pdu[8], pdu[9]
        if pdu[6]:
            yield _reserved(f"A-ASSOCIATE-RJ byte 7 (reserved) is 0x{pdu[6]:02X}")
        if (
            result not in (1, 2)
            or (source, reason) not in REJECT_REASONS
            or (source == 3 and reason == 0)
        ):
            yield Verdict(
                "reject-fields",
                "undefined-code",
                Severity.ERROR,
                "The peer sent an A-ASSOCIATE-RJ with a result, source or reason that Table "
                "9-21 does not define.",
                "result 1 or 2; source 1, 2 or 3 with one of that source's reasons",
                f"result {result}, source {source}, reason {reason}",
            )
    elif pdu[0] == PduType.A_ABORT and len(pdu) == 10:
        source, reason = pdu[8], pdu[9]
        if pdu[6] or pdu[7]:
            yield _reserved(f"A-ABORT bytes 7-8 (reserved) are {pdu[6:8].hex()}")
        if source not in (0, 2) or (source == 2 and reason not in _ABORT_REASONS):
            yield Verdict(
                "abort-fields",
                "undefined-code",
                Severity.ERROR,
                "The peer sent an A-ABORT with a source or reason that Table 9-26 does not define.",
                "source 0, or source 2 with reason 0, 1, 2, 4, 5 or 6",
                f"source {source}, reason {reason}",
            )
        elif source == 0 and reason != 0:
            yield Verdict(
                "abort-fields",
                "user-abort-reason-not-zero",
                Severity.WARNING,
                "The peer sent a service-user A-ABORT whose reason is not 0; PS3.8 says it is "
                "sent as 00H (and not tested).",
                "reason 0 with source 0",
                f"source 0, reason {reason}",
            )
    elif pdu[0] in (PduType.A_RELEASE_RQ, PduType.A_RELEASE_RP) and len(pdu) == 10:
        if any(pdu[6:10]):
            yield _reserved(f"{name} bytes 7-10 (reserved) are {pdu[6:10].hex()}")
    elif pdu[0] == PduType.A_ASSOCIATE_AC and len(pdu) >= 74 and any(pdu[8:10]):
        yield _reserved(f"A-ASSOCIATE-AC bytes 9-10 (reserved) are {pdu[8:10].hex()}")


def _reserved(observed: str) -> Verdict:
    return Verdict(
        "reserved-fields-sent-as-zero",
        "non-zero",
        Severity.WARNING,
        "The peer sent a reserved field with a value other than zero (receivers do not "
        "test it, so this is harmless).",
        "reserved fields sent as zero",
        observed,
    )


def _judge_association(transcript: Transcript) -> Iterator[Verdict]:
    """The A-ASSOCIATE-AC against the A-ASSOCIATE-RQ that went on the wire."""
    for exchange in transcript.exchanges:
        reaction = exchange.reaction
        if exchange.step.act is not Act.ASSOCIATE or reaction is None:
            continue
        ac_pdu = reaction.first(PduType.A_ASSOCIATE_AC)
        if ac_pdu is None:
            continue
        wire = exchange.step.wire
        if len(ac_pdu) >= 74 and len(wire) >= 74 and ac_pdu[10:74] != wire[10:74]:
            yield Verdict(
                "ac-echoes-request-fields",
                "not-echoed",
                Severity.WARNING,
                "The A-ASSOCIATE-AC does not repeat bytes 11-74 of the A-ASSOCIATE-RQ as "
                "received (the requestor shall not test them, so this is harmless).",
                f"bytes 11-74 = {wire[10:74].hex()}",
                f"bytes 11-74 = {ac_pdu[10:74].hex()}",
            )
        try:
            ac = decode_pdu(PduType.A_ASSOCIATE_AC, ac_pdu[6:])
        except RemoteProtocolError:
            continue  # reported as peer-pdus-valid by our requestor
        assert isinstance(ac, AAssociateAC)
        yield from _judge_ac(ac, request_on_wire(exchange.step))


def _ac_verdict(code: str, summary: str, expected: str, observed: str) -> Verdict:
    return Verdict("associate-ac-valid", code, Severity.ERROR, summary, expected, observed)


def _judge_ac(ac: AAssociateAC, rq: AAssociateRQ | None) -> Iterator[Verdict]:
    if not ac.protocol_version & 1:
        yield _ac_verdict(
            "protocol-version",
            "The A-ASSOCIATE-AC does not set protocol version bit 0.",
            "bit 0 set",
            f"0x{ac.protocol_version:04X}",
        )
    if ac.user_information.maximum_length is None:
        yield Verdict(
            "associate-ac-valid",
            "no-maximum-length",
            Severity.WARNING,
            "The A-ASSOCIATE-AC has no Maximum Length sub-item (Annex D.1: its support is "
            "required of every implementation).",
            "a Maximum Length sub-item in the user information",
            "none",
        )
    for answer in ac.presentation_contexts:
        if answer.result > 4:
            yield _ac_verdict(
                "undefined-result",
                "A presentation context is answered with a result Table 9-18 does not define.",
                "0 to 4",
                f"context {answer.context_id}: {answer.result}",
            )
    if rq is None:
        return
    proposed = {context.context_id: context for context in rq.presentation_contexts}
    answers = Counter(answer.context_id for answer in ac.presentation_contexts)
    missing = sorted(set(proposed) - set(answers))
    extra = sorted(set(answers) - set(proposed))
    repeated = sorted(cid for cid, count in answers.items() if count > 1)
    if missing or extra or repeated:
        yield _ac_verdict(
            "context-answers",
            "The A-ASSOCIATE-AC does not answer each proposed presentation context exactly "
            "once (§7.1.1.14: one result per proposed context).",
            f"one answer for each of {sorted(proposed)}",
            f"missing {missing}, never proposed {extra}, answered twice {repeated}",
        )
    for answer in ac.presentation_contexts:
        context = proposed.get(answer.context_id)
        if context is None or answer.result != 0:
            continue
        if answer.transfer_syntax not in context.transfer_syntaxes:
            yield _ac_verdict(
                "transfer-syntax",
                "A presentation context is accepted with a transfer syntax that was not "
                "proposed for it.",
                f"one of {list(context.transfer_syntaxes)}",
                f"context {answer.context_id}: {answer.transfer_syntax}",
            )


def _judge_steps(transcript: Transcript) -> Iterator[Verdict]:
    """Well-behaved steps on a healthy association must be served."""
    script = transcript.script
    for index, exchange in enumerate(transcript.exchanges):
        step, reaction = exchange.step, exchange.reaction
        if reaction is None or reaction.skipped:
            continue
        if step.act is Act.ASSOCIATE and reaction.silent and script.fact("complete", 1):
            yield Verdict(
                "associate-answered",
                "no-answer",
                Severity.ROBUSTNESS,
                "The peer did not answer a complete A-ASSOCIATE-RQ (no AC, RJ, A-ABORT or "
                "close) within the timeout.",
                "A-ASSOCIATE-AC, -RJ or A-ABORT",
                describe(reaction),
            )
        if not is_clean_until(script, index):
            continue
        own_echo = bool(script.fact("own_echo", 0))
        if (
            step.act is Act.ECHO
            and step.context_id in transcript.accepted_contexts
            and not own_echo
        ):
            statuses = [m.status for m in reaction.responses if isinstance(m, CEchoRSP)]
            if not statuses:
                yield Verdict(
                    "echo-response",
                    "not-answered",
                    Severity.ERROR,
                    "A C-ECHO-RQ on an accepted Verification context was not answered.",
                    "C-ECHO-RSP",
                    describe(reaction),
                )
            elif statuses[0] != 0:
                yield Verdict(
                    "echo-response",
                    "not-success",
                    Severity.WARNING,
                    "A C-ECHO-RQ was answered with a status other than Success.",
                    "status 0x0000",
                    f"status 0x{statuses[0]:04X}",
                )
        if step.act is Act.RELEASE and PduType.A_RELEASE_RP not in reaction.pdu_types:
            yield Verdict(
                "release-answered",
                "not-answered",
                Severity.ERROR,
                "An A-RELEASE-RQ on an established association was not answered with an "
                "A-RELEASE-RP.",
                "A-RELEASE-RP",
                describe(reaction),
            )
