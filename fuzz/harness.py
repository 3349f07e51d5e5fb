"""Fuzz the sans-IO DICOM acceptor (or, with ``--live``, a running server).

    python -m fuzz.harness --examples 5000 --seed 1      # both modes, 5000 inputs each
    python -m fuzz.harness --mode mutate --seconds 120   # as many as fit in two minutes
    python -m fuzz.harness --mode generated --examples 300
    python -m fuzz.harness --live 127.0.0.1 11112 --examples 200
    python -m fuzz.harness --replay crash.bin

Two sources of inputs (see :mod:`fuzz.inputs`): ``generated`` conversations drawn with
hypothesis (a failure is shrunk to a small reproducer), and ``mutate``, seed conversations
(``fuzz/corpus/*.bin`` recorded from DCMTK, pynetdicom and our own requestor, plus synthetic
ones) damaged with a seeded :class:`random.Random` (fast; a failure is reported with the
index and seed that reproduce it, and the input is saved with ``--save-failures``). Each
input runs against :class:`fuzz.target.Acceptor`, which checks the properties listed there.

Prints how many inputs ran, how fast, how the associations ended, and every failure; exits
1 if any property broke.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import attrs
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from fuzz.inputs import FuzzInput, Mutator, conversations, load_seeds, split_pdus
from fuzz.live import RefusedHostError, check_target, send_input
from fuzz.target import Acceptor, BrokenPropertyError
from oxidicom.net import AssociationError
from oxidicom.testing.scu import BlockingScu

MODES = ("generated", "mutate", "both")


@attrs.define
class Failure:
    mode: str
    label: str
    error: str
    reproduce: str
    data: bytes


@attrs.define
class Summary:
    """Counts of one run."""

    inputs: int = 0
    seconds: float = 0.0
    responses: int = 0
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    labels: collections.Counter[str] = attrs.field(factory=collections.Counter)
    failures: list[Failure] = attrs.field(factory=list)

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0

    def render(self) -> str:
        lines = [
            f"inputs: {self.inputs} in {self.seconds:.1f} s ({self.rate:.0f}/s), "
            f"DIMSE responses sent: {self.responses}, failures: {len(self.failures)}",
            "outcomes: "
            + ", ".join(f"{name} {count}" for name, count in self.outcomes.most_common()),
            "damage: "
            + ", ".join(f"{name} {count}" for name, count in self.labels.most_common(16)),
        ]
        for failure in self.failures:
            lines += [
                f"FAILURE ({failure.mode}, {failure.label}): {failure.error}",
                f"  reproduce: {failure.reproduce}",
            ]
        return "\n".join(lines)


def run_one(fuzz_input: FuzzInput, summary: Summary) -> None:
    """Run one input against a fresh acceptor and count it; raises on a broken property."""
    result = Acceptor().run(fuzz_input.steps)
    summary.inputs += 1
    summary.responses += result.responses
    summary.outcomes[result.outcome.value] += 1
    for label in fuzz_input.label.split("+"):
        if label:
            summary.labels[label] += 1


def _describe(error: BaseException) -> str:
    if isinstance(error, BrokenPropertyError | AssociationError):
        return str(error)
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{type(error).__name__}: {error} (at {frame.filename}:{frame.lineno})"


def run_mutations(
    summary: Summary, *, seed: int, examples: int | None, until: float | None
) -> None:
    """Mutation mode: seeded, fast, stops at the first failure."""
    mutator = Mutator(load_seeds(), random.Random(seed))
    index = 0
    while (examples is None or index < examples) and (until is None or time.monotonic() < until):
        fuzz_input = mutator.next()
        try:
            run_one(fuzz_input, summary)
        except Exception as error:
            summary.failures.append(
                Failure(
                    "mutate",
                    fuzz_input.label,
                    _describe(error),
                    f"--mode mutate --seed {seed} --examples {index + 1} (the last input)",
                    fuzz_input.data,
                )
            )
            return
        index += 1


def run_generated(
    summary: Summary, *, seed: int, examples: int | None, until: float | None
) -> None:
    """Generated mode: hypothesis draws conversations and shrinks a failure."""
    batch = 200 if examples is None else examples
    batch_seed = seed
    while True:
        last: list[FuzzInput] = []
        try:
            _generated_batch(summary, batch, batch_seed, last)
        except Exception as error:
            shrunk = last[0] if last else FuzzInput((), "")
            summary.failures.append(
                Failure(
                    "generated",
                    shrunk.label,
                    _describe(error),
                    f"--mode generated --seed {batch_seed} --examples {batch}",
                    shrunk.data,
                )
            )
            return
        batch_seed += 1
        if until is None or time.monotonic() >= until:
            return


def _generated_batch(summary: Summary, batch: int, seed: int, last: list[FuzzInput]) -> None:
    """``batch`` hypothesis examples; ``last`` ends up holding the one run last (after
    shrinking, the minimal failing one)."""

    @settings(
        max_examples=batch,
        database=None,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis_seed(seed)
    @given(conversations())
    def check(fuzz_input: FuzzInput) -> None:
        last[:] = [fuzz_input]
        run_one(fuzz_input, summary)

    check()


def run_live(
    host: str,
    port: int,
    summary: Summary,
    *,
    seed: int,
    examples: int | None,
    until: float | None,
    timeout: float,
) -> None:
    """Send mutated inputs to a server; it must answer each, and still serve a C-ECHO."""
    mutator = Mutator(load_seeds(), random.Random(seed))
    index = 0
    while (examples is None or index < examples) and (until is None or time.monotonic() < until):
        fuzz_input = mutator.next()
        try:
            answer = send_input(host, port, fuzz_input, timeout)
            if index % 50 == 49:
                _health_check(host, port, timeout)
        except (BrokenPropertyError, AssociationError, OSError) as error:
            summary.failures.append(
                Failure(
                    "live",
                    fuzz_input.label,
                    _describe(error),
                    f"--live {host} {port} --seed {seed} --examples {index + 1}",
                    fuzz_input.data,
                )
            )
            return
        summary.inputs += 1
        summary.outcomes[_live_outcome(answer.pdu_types)] += 1
        for label in fuzz_input.label.split("+"):
            summary.labels[label] += 1
        index += 1
    try:
        _health_check(host, port, timeout)
    except (BrokenPropertyError, AssociationError, OSError) as error:
        summary.failures.append(Failure("live", "health check", _describe(error), "", b""))


def _health_check(host: str, port: int, timeout: float) -> None:
    client = BlockingScu(host, port, calling_ae_title="OXIDICOM-FUZZ", timeout=timeout)
    status = client.echo()
    client.release()
    if status != 0:
        raise BrokenPropertyError(f"health check C-ECHO answered 0x{status:04X}")


def _live_outcome(pdu_types: tuple[int, ...]) -> str:
    names = {1: "rq", 2: "ac", 3: "rj", 4: "p-data", 5: "release-rq", 6: "release-rp", 7: "abort"}
    if not pdu_types:
        return "closed"
    return f"{names[pdu_types[0]]}..{names[pdu_types[-1]]}"


def replay(path: Path) -> str:
    """Run one saved input (its bytes, unchunked); describe how it ended."""
    data = path.read_bytes()
    result = Acceptor().run([data])
    pdus = len(split_pdus(data))
    return f"{path}: {pdus} PDUs in, {result.outcome.value}, sent {result.sent!r}"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fuzz.harness", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--mode", choices=MODES, default="both")
    parser.add_argument("--examples", type=int, help="inputs per mode (default: 1000)")
    parser.add_argument("--seconds", type=float, help="run for this long (per mode)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--live", nargs=2, metavar=("HOST", "PORT"))
    parser.add_argument("--i-own-this-host", action="store_true")
    parser.add_argument("--timeout", type=float, default=10.0, help="live: seconds per input")
    parser.add_argument("--replay", type=Path, metavar="FILE")
    parser.add_argument("--save-failures", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    if args.examples is None and args.seconds is None:
        args.examples = 1000
    return args


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    args = _parse(argv)
    if args.replay is not None:
        try:
            out(replay(args.replay))
        except Exception as error:
            out(f"FAILURE: {_describe(error)}")
            return 1
        return 0
    summary = Summary()
    started = time.monotonic()
    if args.live is not None:
        host, port = args.live[0], int(args.live[1])
        try:
            check_target(host, i_own_this_host=args.i_own_this_host)
        except RefusedHostError as error:
            out(f"refused: {error}")
            return 2
        until = started + args.seconds if args.seconds is not None else None
        run_live(
            host,
            port,
            summary,
            seed=args.seed,
            examples=args.examples,
            until=until,
            timeout=args.timeout,
        )
    else:
        for run in _modes(args.mode):
            until = time.monotonic() + args.seconds if args.seconds is not None else None
            run(summary, seed=args.seed, examples=args.examples, until=until)
            if summary.failures:
                break
    summary.seconds = time.monotonic() - started
    out(summary.render())
    if args.save_failures is not None:
        args.save_failures.mkdir(parents=True, exist_ok=True)
        for number, failure in enumerate(summary.failures):
            path = args.save_failures / f"failure-{args.seed}-{number}.bin"
            path.write_bytes(failure.data)
            out(f"saved {path}")
    return 1 if summary.failures else 0


class _Mode(Protocol):
    def __call__(
        self, summary: Summary, *, seed: int, examples: int | None, until: float | None
    ) -> None: ...


def _modes(mode: str) -> Iterator[_Mode]:
    if mode in ("generated", "both"):
        yield run_generated
    if mode in ("mutate", "both"):
        yield run_mutations


if __name__ == "__main__":
    sys.exit(main())
