"""The run: baseline, every probe under hypothesis, shrinking, confirmation, health checks.

1. A baseline association (C-ECHO, release) tells the :class:`Profile` of the peer: which
   contexts it accepts, its Maximum Length Received. A peer that cannot do this much is
   reported as unusable (:class:`TargetUnusableError`), not fuzzed.
2. Each probe draws scripts from its strategy with a fixed seed (``@given`` + ``@seed``),
   plays them, and judges the transcripts. A verdict makes the example fail, with an
   exception type of its own per (check, code), so hypothesis shrinks each kind of failure
   separately. The smallest failing script seen for each kind is kept (our own record, so
   that a peer whose answers vary, or the end of the time budget, cannot lose it).
3. Each kept script is replayed ``confirm`` times: the finding says how often it came back.
4. After each probe (and every ``health_every`` inputs) a fresh association must still be
   served; if not, the run stops with a critical finding naming the last input.

Nothing here knows about any address but the :class:`~oxidicom.conformance.target.Target`.
"""

from __future__ import annotations

import contextlib
import datetime
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Final

import attrs
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import HypothesisWarning

from oxidicom.conformance import script as sc
from oxidicom.conformance.checks import CHECKS, Severity
from oxidicom.conformance.play import Transcript, play
from oxidicom.conformance.probes import PROBES, Probe, Profile, baseline_script
from oxidicom.conformance.report import (
    Finding,
    ProbeRun,
    Report,
    check_statuses,
)
from oxidicom.conformance.script import Act, Script
from oxidicom.conformance.target import Target
from oxidicom.conformance.verdicts import Verdict, describe, judge_common
from oxidicom.dimse.messages import CEchoRSP
from oxidicom.ul.constants import PduType
from oxidicom.ul.pdus import AAssociateAC, decode_pdu


class TargetUnusableError(Exception):
    """The peer cannot be fuzzed: no connection, or no baseline association and C-ECHO."""


class _PeerDownError(Exception):
    """The peer stopped answering in the middle of a probe."""


class _ProbeOverError(BaseException):
    """Raised from an example to end its probe now (time is up, or the peer is down).

    Not an :class:`Exception`, so hypothesis does not take it for a failing example to
    shrink: it ends the run at once. Without it a time budget could not govern, as hypothesis
    stops only after ``max_examples`` inputs."""


@attrs.frozen
class FuzzConfig:
    seed: int = 0
    examples: int = 20
    """Inputs per probe (hypothesis ``max_examples``), when there is no time budget."""
    seconds: float | None = None
    """Total time budget, shared evenly by the probes; ``examples`` is then ignored: each
    probe plays inputs until its share runs out (or its strategy has no new input)."""
    timeout: float = 3.0
    """How long to wait for the peer's reaction to each step."""
    artim: float = 40.0
    """How long the ARTIM probe waits for the peer to close an idle connection (0: skip)."""
    store: bool = True
    """Allow probes that C-STORE test instances (the maximum length probe)."""
    calling_ae_title: str = "OXIDICOM-FUZZ"
    called_ae_title: str = "ANY-SCP"
    confirm: int = 2
    shrink_seconds: float = 60.0
    """Per probe, how long hypothesis may spend shrinking once a failure is found."""
    health_every: int = 25
    recovery: float = 120.0
    """After the peer stopped answering, how long to wait for it to serve again."""
    probes: tuple[str, ...] = ()
    """Run only these probes (empty: all)."""


@attrs.define
class _Record:
    probe: str
    verdict: Verdict
    script: Script
    transcript: Transcript


class _ExampleFailedError(Exception):
    """Base of the per-verdict exception types that make a hypothesis example fail."""


_FAILURE_TYPES: dict[tuple[str, str], type[_ExampleFailedError]] = {}


def _failure(key: tuple[str, str]) -> type[_ExampleFailedError]:
    if key not in _FAILURE_TYPES:
        name = "".join(part.title() for part in "-".join(key).split("-"))
        _FAILURE_TYPES[key] = type(f"{name}Error", (_ExampleFailedError,), {})
    return _FAILURE_TYPES[key]


@attrs.define
class _ProbeState:
    deadline: float
    shrink_seconds: float
    examples: int = 0
    failing_since: float | None = None
    dead: str = ""
    """Why the peer seems down ("" while it answers)."""

    def out_of_time(self) -> bool:
        now = time.monotonic()
        if self.dead:
            return True
        if self.failing_since is not None:
            return now > self.failing_since + self.shrink_seconds
        return now > self.deadline


Log = Callable[[str], None]

_UNBOUNDED: Final = 10**12
"""``max_examples`` under a time budget: never reached, the deadline ends the probe."""

_SEVERITY_ORDER: Final = {severity: severity.rank for severity in Severity}


class Fuzzer:
    """One run against one target. :meth:`run` returns the :class:`Report`."""

    def __init__(self, target: Target, config: FuzzConfig, log: Log | None = None) -> None:
        self.target = target
        self.config = config
        self.log = log or (lambda line: None)
        self.records: dict[tuple[str, str], _Record] = {}
        self.exercised: Counter[str] = Counter()
        self.last_script: Script | None = None
        self.connections = 0
        self.health_request = sc.request(
            calling_ae_title=config.calling_ae_title, called_ae_title=config.called_ae_title
        )

    # --- playing ------------------------------------------------------------------------

    def play(self, script: Script) -> Transcript:
        transcript = play(self.target, script, timeout=self.config.timeout)
        self.connections += 1
        if transcript.refused:
            raise _PeerDownError("connection refused")
        self.last_script = script
        return transcript

    def judge(
        self, probe: Probe, profile: Profile, transcript: Transcript, *, count: bool = True
    ) -> list[Verdict]:
        if count:
            for name in probe.checks:
                self.exercised[name] += 1
            self.exercised.update(_exercised_common(transcript))
        verdicts = judge_common(transcript) + probe.judge(transcript.script, transcript, profile)
        return sorted(verdicts, key=lambda v: _SEVERITY_ORDER[v.severity])

    def record(self, probe: Probe, transcript: Transcript, verdicts: Iterable[Verdict]) -> None:
        for verdict in verdicts:
            kept = self.records.get(verdict.key)
            # Hypothesis tries simpler inputs as it shrinks: of equal sizes keep the latest.
            if kept is None or transcript.script.size <= kept.script.size:
                self.records[verdict.key] = _Record(
                    probe.name, verdict, transcript.script, transcript
                )

    def alive(self) -> bool:
        """A fresh association serves a C-ECHO (tried three times, a second apart)."""
        self.exercised["peer-alive"] += 1
        for attempt in range(3):
            transcript = play(
                self.target, baseline_script(self.health_request), timeout=self.config.timeout
            )
            self.connections += 1
            echo = transcript.reaction(1)
            if echo is not None and any(isinstance(m, CEchoRSP) for m in echo.responses):
                return True
            if attempt < 2:
                time.sleep(1.0)
        return False

    # --- the run ------------------------------------------------------------------------

    def profile(self) -> tuple[Profile, Transcript]:
        config = self.config
        rq = sc.request(
            calling_ae_title=config.calling_ae_title,
            called_ae_title=config.called_ae_title,
            store=True,
        )
        transcript = play(self.target, baseline_script(rq), timeout=config.timeout)
        self.connections += 1
        if transcript.refused:
            raise TargetUnusableError(f"cannot connect to {self.target}")
        first = transcript.reaction(0)
        ac = first.first(PduType.A_ASSOCIATE_AC) if first is not None else None
        if ac is None:
            raise TargetUnusableError(
                "the peer did not accept a plain association (Verification, Secondary "
                f"Capture; calling {config.calling_ae_title}, called {config.called_ae_title})"
                f": it {describe(first)}. Check --calling-ae and --called-ae."
            )
        if sc.ECHO_CONTEXT not in transcript.accepted_contexts:
            raise TargetUnusableError("the peer does not accept Verification (C-ECHO)")
        echo = transcript.reaction(1)
        if echo is None or not any(isinstance(m, CEchoRSP) for m in echo.responses):
            raise TargetUnusableError(f"the peer did not answer C-ECHO: it {describe(echo)}")
        decoded = decode_pdu(PduType.A_ASSOCIATE_AC, ac[6:])
        assert isinstance(decoded, AAssociateAC)
        info = decoded.user_information
        profile = Profile(
            request=rq,
            accepted=transcript.accepted_contexts,
            max_length=transcript.peer_max_length or 0,
            store=config.store and sc.STORE_CONTEXT in transcript.accepted_contexts,
            artim=config.artim,
            implementation=" ".join(
                part
                for part in (info.implementation_class_uid, info.implementation_version_name)
                if part
            ),
        )
        return profile, transcript

    def run(self, command: str = "") -> Report:
        started = time.monotonic()
        started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        profile, baseline = self.profile()
        self.log(
            f"peer profile: {profile.implementation or 'no implementation UID'}, "
            f"maximum PDU length {profile.max_length}, contexts {list(profile.accepted)}"
        )
        probes = [p for p in PROBES if not self.config.probes or p.name in self.config.probes]
        baseline_probe = PROBES[0]
        self.record(baseline_probe, baseline, self.judge(baseline_probe, profile, baseline))
        runs: list[ProbeRun] = []
        not_applicable: dict[str, str] = {}
        stopped = ""
        timed = [p for p in probes if not p.single]
        slice_seconds = (
            self.config.seconds / max(1, len(timed)) if self.config.seconds is not None else None
        )
        for probe in probes:
            if probe is baseline_probe:
                continue
            reason = probe.applicable(profile)
            if reason is not None:
                for name in probe.checks:
                    not_applicable[name] = reason
                runs.append(ProbeRun(probe.name, 0, 0.0, f"not applicable: {reason}"))
                self.log(f"{probe.name}: not applicable ({reason})")
                continue
            probe_started = time.monotonic()
            before = len(self.records)
            examples, trouble = self._run_probe(probe, profile, slice_seconds)
            if trouble is None and not self.alive():
                trouble = "no C-ECHO on a fresh association after the probe"
            if trouble is not None:
                recovered = self._recover()
                self._peer_down(probe, examples, trouble, recovered)
                if recovered is None:
                    stopped = f"the peer stopped answering during probe {probe.name}"
                    runs.append(
                        ProbeRun(probe.name, examples, time.monotonic() - probe_started, stopped)
                    )
                    break
            seconds = time.monotonic() - probe_started
            runs.append(ProbeRun(probe.name, examples, round(seconds, 1)))
            self.log(
                f"{probe.name}: {examples} inputs in {seconds:.1f} s, "
                f"{len(self.records) - before} new kind(s) of finding"
            )
        findings = self._confirm(profile, stopped)
        return Report(
            host=self.target.host,
            port=self.target.port,
            address=self.target.address,
            settings={
                "seed": self.config.seed,
                "budget": (
                    f"{self.config.seconds:g} s"
                    if self.config.seconds is not None
                    else f"{self.config.examples} examples per probe"
                ),
                "examples": self.config.examples,
                "seconds": self.config.seconds,
                "timeout": self.config.timeout,
                "artim": self.config.artim,
                "store": self.config.store,
                "calling_ae_title": self.config.calling_ae_title,
                "called_ae_title": self.config.called_ae_title,
                "probes": list(self.config.probes),
            },
            peer={
                "implementation_class_uid": profile.implementation.split(" ")[0],
                "implementation_version_name": " ".join(profile.implementation.split(" ")[1:]),
                "max_length": profile.max_length,
                "accepted": list(profile.accepted),
            },
            started=started_at,
            seconds=time.monotonic() - started,
            probes=tuple(runs),
            checks=check_statuses(self.exercised, findings, not_applicable),
            findings=tuple(findings),
            command=command,
            stopped=stopped,
        )

    def _run_probe(
        self, probe: Probe, profile: Profile, slice_seconds: float | None
    ) -> tuple[int, str | None]:
        """Run one probe; how many inputs it played, and why the peer seems down (if so)."""
        config = self.config
        if probe.single:
            script = _only_example(probe, profile)
            try:
                transcript = self.play(script)
            except _PeerDownError as down:
                return 0, str(down)
            self.record(probe, transcript, self.judge(probe, profile, transcript))
            return 1, None
        deadline = time.monotonic() + (slice_seconds if slice_seconds is not None else 1e9)
        state = _ProbeState(deadline, config.shrink_seconds)
        max_examples = config.examples if config.seconds is None else _UNBOUNDED
        probe_index = [p.name for p in PROBES].index(probe.name)

        @settings(
            max_examples=max_examples,
            database=None,
            deadline=None,
            phases=(Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=True,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        @hypothesis_seed(config.seed * 1000 + probe_index)
        @given(probe.scripts(profile))
        def example(script: Script) -> None:
            if state.out_of_time():
                raise _ProbeOverError
            try:
                transcript = self.play(script)
            except _PeerDownError as down:
                state.dead = str(down)
                return
            state.examples += 1
            if state.examples % config.health_every == 0 and not self.alive():
                state.dead = f"no C-ECHO on a fresh association after {state.examples} inputs"
                return
            verdicts = self.judge(probe, profile, transcript)
            if verdicts:
                self.record(probe, transcript, verdicts)
                if state.failing_since is None:
                    state.failing_since = time.monotonic()
                raise _failure(verdicts[0].key)(verdicts[0].summary)

        # The failures are in self.records; hypothesis' own exception (one failure, a group
        # of them, or Flaky when a peer answers differently) adds nothing.
        with contextlib.suppress(Exception, _ProbeOverError), warnings.catch_warnings():
            warnings.simplefilter("ignore", HypothesisWarning)  # reprs of large scripts
            example()
        return state.examples, state.dead or None

    def _recover_if_needed(self) -> None:
        if not self.alive():
            self._recover()

    def _recover(self) -> float | None:
        """Seconds until the peer serves again (polled every 5 s), or None if it does not
        within ``config.recovery``."""
        started = time.monotonic()
        while time.monotonic() - started < self.config.recovery:
            time.sleep(5.0)
            if self.alive():
                return time.monotonic() - started
        return None

    def _peer_down(self, probe: Probe, examples: int, why: str, recovered: float | None) -> None:
        script = self.last_script or Script(())
        if recovered is None:
            code, observed = (
                "stopped-answering",
                (f"no C-ECHO served for {self.config.recovery:g} s; the run stopped"),
            )
        else:
            code, observed = (
                "unavailable-for-a-while",
                (f"no C-ECHO served for about {recovered:.0f} s, then it recovered"),
            )
        verdict = Verdict(
            "peer-alive",
            code,
            Severity.CRITICAL,
            f"The peer stopped serving new associations after {examples} input(s) of probe "
            f"{probe.name} ({why}). The reproducer is the last input played; the cause may be "
            "the inputs before it together (held connections, exhausted slots).",
            "a C-ECHO answered on a fresh association after every input",
            observed,
        )
        if verdict.key not in self.records:
            self.records[verdict.key] = _Record(
                probe.name, verdict, script, Transcript(script, True, ())
            )
        self.log(f"{probe.name}: the peer stopped answering ({why}); {observed}")

    def _confirm(self, profile: Profile, stopped: str) -> list[Finding]:
        findings = []
        ordered = sorted(
            self.records.values(),
            key=lambda r: (
                _SEVERITY_ORDER[r.verdict.severity],
                list(CHECKS).index(r.verdict.check),
            ),
        )
        probes = {probe.name: probe for probe in PROBES}
        for index, record in enumerate(ordered, 1):
            hits, tries, transcript = 0, 0, record.transcript
            if not stopped and record.verdict.check != "peer-alive":
                self._recover_if_needed()
                probe = probes[record.probe]
                for _ in range(self.config.confirm):
                    try:
                        replayed = self.play(record.script)
                    except _PeerDownError:
                        break
                    tries += 1
                    verdicts = self.judge(probe, profile, replayed, count=False)
                    if record.verdict.key in {verdict.key for verdict in verdicts}:
                        hits += 1
                        transcript = replayed
            findings.append(
                Finding(
                    f"F{index}",
                    record.probe,
                    record.verdict,
                    record.script,
                    transcript,
                    (hits, tries),
                )
            )
        return findings


def _only_example(probe: Probe, profile: Profile) -> Script:
    """The one script of a single-input probe (its strategy is ``st.just``)."""
    found: list[Script] = []

    @settings(max_examples=1, database=None, phases=(Phase.generate,), verbosity=Verbosity.quiet)
    @given(probe.scripts(profile))
    def take(script: Script) -> None:
        found.append(script)

    take()
    return found[0]


def _exercised_common(transcript: Transcript) -> set[str]:
    """The common checks a transcript gave something to judge."""
    names: set[str] = set()
    for exchange in transcript.exchanges:
        reaction = exchange.reaction
        if reaction is None:
            continue
        types = reaction.pdu_types
        if types:
            names.add("reserved-fields-sent-as-zero")
            names.add("peer-pdus-valid")
        if PduType.A_ASSOCIATE_RJ in types:
            names.add("reject-fields")
        if PduType.A_ABORT in types:
            names.add("abort-fields")
        if PduType.A_ASSOCIATE_AC in types:
            names.update(("associate-ac-valid", "ac-echoes-request-fields"))
        if exchange.step.act is Act.ASSOCIATE:
            names.add("associate-answered")
        if exchange.step.act is Act.ECHO and reaction.responses:
            names.add("echo-response")
        if exchange.step.act is Act.RELEASE and not reaction.skipped:
            names.add("release-answered")
    return names


def run(
    target: Target, config: FuzzConfig | None = None, *, log: Log | None = None, command: str = ""
) -> Report:
    """Fuzz ``target`` (and nothing else) and report the findings."""
    return Fuzzer(target, config or FuzzConfig(), log).run(command)


@attrs.frozen
class Replayed:
    finding: Finding
    verdicts: tuple[Verdict, ...]
    transcript: Transcript

    @property
    def reproduced(self) -> bool:
        return self.finding.verdict.key in {verdict.key for verdict in self.verdicts}


def replay(target: Target, finding: Finding, config: FuzzConfig, profile: Profile) -> Replayed:
    """Play a finding's reproducer again and judge it as the run did."""
    probes = {probe.name: probe for probe in PROBES}
    transcript = play(target, finding.script, timeout=config.timeout)
    if transcript.refused:
        raise TargetUnusableError(f"cannot connect to {target}")
    probe = probes.get(finding.probe, PROBES[0])
    verdicts = judge_common(transcript) + probe.judge(finding.script, transcript, profile)
    return Replayed(finding, tuple(verdicts), transcript)


def replay_profile(target: Target, config: FuzzConfig) -> Profile:
    return Fuzzer(target, config).profile()[0]
