"""The outcome of a run: findings with their reproducers, every check's status, as JSON and
as a summary a person reads.

The JSON is stable (``"schema": "oxidicom-conformance/1"``): a finding holds the check and
PS3.8 section it fails, what was expected and what the peer did, the minimal script that
reproduces it (every byte sent, in hex) and the transcript of its last run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from oxidicom.conformance.checks import CHECKS, Severity
from oxidicom.conformance.play import Transcript
from oxidicom.conformance.script import Script, script_from_json, script_to_json
from oxidicom.conformance.verdicts import Verdict, describe, pdu_name

SCHEMA: Final = "oxidicom-conformance/1"


@attrs.frozen
class Finding:
    id: str
    probe: str
    verdict: Verdict
    script: Script
    transcript: Transcript | None
    """The transcript of the last run of ``script`` (None when loaded from JSON)."""
    reproduced: tuple[int, int]
    """(times the verdict came back, times the script was replayed to confirm it)."""
    transcript_json: tuple[Mapping[str, Any], ...] = ()

    @property
    def severity(self) -> Severity:
        return self.verdict.severity


@attrs.frozen
class CheckStatus:
    name: str
    status: str
    """``pass``, ``finding``, ``not-exercised`` or ``not-applicable``."""
    examples: int
    note: str = ""


@attrs.frozen
class ProbeRun:
    name: str
    examples: int
    seconds: float
    note: str = ""


@attrs.frozen
class Report:
    host: str
    port: int
    address: str
    settings: Mapping[str, Any]
    peer: Mapping[str, Any]
    started: str
    seconds: float
    probes: tuple[ProbeRun, ...]
    checks: tuple[CheckStatus, ...]
    findings: tuple[Finding, ...]
    command: str = ""
    stopped: str = ""
    """Why the run ended early (the peer went down), or empty."""

    def counts(self) -> dict[str, int]:
        counts = {severity.value: 0 for severity in Severity}
        for finding in self.findings:
            counts[finding.severity.value] += 1
        return counts

    def worst(self) -> Severity | None:
        if not self.findings:
            return None
        return min((finding.severity for finding in self.findings), key=lambda s: s.rank)


# --- JSON -----------------------------------------------------------------------------------


def transcript_to_json(transcript: Transcript) -> list[dict[str, Any]]:
    out = []
    for exchange in transcript.exchanges:
        entry: dict[str, Any] = {
            "act": exchange.step.act.value,
            "note": exchange.step.note,
            "sent": exchange.step.wire.hex() if exchange.sent else None,
        }
        reaction = exchange.reaction
        if reaction is not None:
            entry.update(
                received=[{"pdu": pdu_name(pdu), "hex": pdu.hex()} for pdu in reaction.received],
                responses=[type(message).__name__ for message in reaction.responses],
                closed=reaction.closed,
                reset=reaction.reset,
                silent=reaction.silent,
                seconds=round(reaction.seconds, 3),
                summary=describe(reaction),
            )
            if reaction.protocol_error:
                entry["protocol_error"] = reaction.protocol_error
            if reaction.skipped:
                entry["skipped"] = reaction.skipped
        out.append(entry)
    return out


def finding_to_json(finding: Finding) -> dict[str, Any]:
    verdict = finding.verdict
    check = CHECKS[verdict.check]
    transcript = (
        transcript_to_json(finding.transcript)
        if finding.transcript is not None
        else [dict(entry) for entry in finding.transcript_json]
    )
    return {
        "id": finding.id,
        "check": verdict.check,
        "code": verdict.code,
        "severity": verdict.severity.value,
        "section": check.section,
        "requirement": check.requirement,
        "summary": verdict.summary,
        "expected": verdict.expected,
        "observed": verdict.observed,
        "probe": finding.probe,
        "reproduced": f"{finding.reproduced[0]}/{finding.reproduced[1]}",
        "reproducer": script_to_json(finding.script),
        "transcript": transcript,
    }


def to_json(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "target": {"host": report.host, "port": report.port, "address": report.address},
        "command": report.command,
        "settings": dict(report.settings),
        "peer": dict(report.peer),
        "started": report.started,
        "seconds": round(report.seconds, 1),
        "stopped": report.stopped,
        "counts": report.counts(),
        "probes": [attrs.asdict(probe) for probe in report.probes],
        "checks": [
            {
                "name": status.name,
                "section": CHECKS[status.name].section,
                "status": status.status,
                "examples": status.examples,
                "note": status.note,
            }
            for status in report.checks
        ],
        "findings": [finding_to_json(finding) for finding in report.findings],
    }


def from_json(data: Mapping[str, Any]) -> Report:
    """A report read back (for ``--replay``); transcripts stay as JSON."""
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not an {SCHEMA} report (schema: {data.get('schema')!r})")
    findings = []
    for raw in data["findings"]:
        rate = str(raw.get("reproduced", "0/0")).split("/")
        findings.append(
            Finding(
                id=str(raw["id"]),
                probe=str(raw["probe"]),
                verdict=Verdict(
                    str(raw["check"]),
                    str(raw["code"]),
                    Severity(raw["severity"]),
                    str(raw["summary"]),
                    str(raw["expected"]),
                    str(raw["observed"]),
                ),
                script=script_from_json(raw["reproducer"]),
                transcript=None,
                reproduced=(int(rate[0]), int(rate[1])),
                transcript_json=tuple(raw.get("transcript", ())),
            )
        )
    target = data["target"]
    return Report(
        host=str(target["host"]),
        port=int(target["port"]),
        address=str(target["address"]),
        settings=data.get("settings", {}),
        peer=data.get("peer", {}),
        started=str(data.get("started", "")),
        seconds=float(data.get("seconds", 0.0)),
        probes=tuple(ProbeRun(**probe) for probe in data.get("probes", ())),
        checks=tuple(
            CheckStatus(c["name"], c["status"], int(c["examples"]), c.get("note", ""))
            for c in data.get("checks", ())
        ),
        findings=tuple(findings),
        command=str(data.get("command", "")),
        stopped=str(data.get("stopped", "")),
    )


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(to_json(report), indent=2) + "\n")


def read_json(path: Path) -> Report:
    return from_json(json.loads(path.read_text()))


# --- for people -------------------------------------------------------------------------------


def _wrap(text: str, indent: str, width: int = 96) -> list[str]:
    lines: list[str] = []
    line = indent
    for word in text.split():
        if len(line) + len(word) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += word + " "
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _hex(data: str, limit: int = 160) -> str:
    return data if len(data) <= limit else f"{data[:limit]}... ({len(data) // 2} bytes)"


def render_finding(finding: Finding) -> list[str]:
    verdict = finding.verdict
    check = CHECKS[verdict.check]
    done, tries = finding.reproduced
    lines = [
        f"[{finding.id}] {verdict.severity.value.upper()}  {verdict.check} ({verdict.code})",
        f"     {check.section}",
    ]
    lines += _wrap(verdict.summary, "     ")
    lines += _wrap(f"expected: {verdict.expected}", "     ")
    lines += _wrap(f"observed: {verdict.observed}", "     ")
    lines.append(f"     reproducer ({done}/{tries} replays reproduced it):")
    for step in finding.script.steps:
        lines.append(f"       {step.act.value:9} {step.note}")
        lines.append(f"                 {_hex(step.wire.hex())}")
    return lines


def render(report: Report) -> str:
    peer = report.peer
    settings = report.settings
    counts = report.counts()
    lines = [
        f"DICOM Upper Layer conformance of {report.host} port {report.port} ({report.address})",
        f"peer: implementation {peer.get('implementation_class_uid') or '?'} "
        f"{peer.get('implementation_version_name') or ''}, maximum PDU length "
        f"{peer.get('max_length')}, contexts accepted {peer.get('accepted')}",
        f"seed {settings.get('seed')}, {settings.get('budget')}, timeout "
        f"{settings.get('timeout')} s: {sum(p.examples for p in report.probes)} inputs in "
        f"{report.seconds:.0f} s",
    ]
    if report.stopped:
        lines.append(f"STOPPED EARLY: {report.stopped}")
    lines.append("")
    lines.append(
        "findings: "
        + (
            ", ".join(f"{count} {name}" for name, count in counts.items() if count)
            if report.findings
            else "none"
        )
    )
    for finding in report.findings:
        lines.append("")
        lines += render_finding(finding)
    lines.append("")
    lines.append("checks:")
    for status in report.checks:
        note = f": {status.note}" if status.note else ""
        lines.append(f"  {status.status:15} {status.name} ({status.examples} inputs){note}")
    return "\n".join(lines)


def check_statuses(
    exercised: Mapping[str, int],
    findings: Sequence[Finding],
    not_applicable: Mapping[str, str],
) -> tuple[CheckStatus, ...]:
    failed = {finding.verdict.check for finding in findings}
    out = []
    for name in CHECKS:
        examples = exercised.get(name, 0)
        if name in failed:
            status = CheckStatus(name, "finding", examples)
        elif name in not_applicable and not examples:
            status = CheckStatus(name, "not-applicable", 0, not_applicable[name])
        elif examples:
            status = CheckStatus(name, "pass", examples)
        else:
            status = CheckStatus(name, "not-exercised", 0, "no input reached this situation")
        out.append(status)
    return tuple(out)
