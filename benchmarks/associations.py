"""What an association costs: many short ones, one instance each, one after the other.

Some PACS open an association per instance. Then what counts is not the instance path but
everything around it: TCP connect, negotiation, the release, and for oxidicom the end of the
series (final LONK messages and the registration, which must be in the outbox before the
A-RELEASE-RP goes out). The sender is :class:`~oxidicom.testing.scu.BlockingScu` (the same
for every receiver, no process start per association); the receivers are the runner's,
started in turn, rounds alternating, and the figure is the median wall time per association
and its ratio to DCMTK's default ``storescp``, with where it goes as the SCU sees it:
connect and negotiate, the C-STORE, the release (each a median, so they need not add up)::

    python -m benchmarks.associations --set small --count 300 --rounds 3
    python -m benchmarks.associations --variant before:PYTHONPATH=/tmp/before

``--variant`` is the runner's: oxidicom with other settings or another checkout's code.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.datasets import DATA_ROOT, read_manifest
from benchmarks.loopback import free_port
from benchmarks.receivers import CALLED_AE, RunningReceiver
from benchmarks.run import (
    OTHER_RECEIVER_NAMES,
    READY_TIMEOUT,
    RECEIVER_NAMES,
    UsageError,
    known_names,
    parse_variants,
    receivers_named,
)
from oxidicom.part10 import read_part10_header
from oxidicom.testing.scu import BlockingScu

Instance = tuple[str, str, str, bytes]
"""SOP class, SOP instance, transfer syntax, data set."""
PHASES = ("total", "associate", "store", "release")
Timing = tuple[float, float, float, float]
"""Seconds of one association, in the order of PHASES."""


def load(set_name: str, count: int, data_root: Path) -> list[Instance]:
    manifest = read_manifest(set_name, data_root)
    if manifest is None:
        raise UsageError(f"no {set_name!r} set: python -m benchmarks.generate --sets {set_name}")
    instances = []
    for path in sorted((data_root / set_name).glob("*.dcm"))[:count]:
        header = read_part10_header(path)
        data_set = path.read_bytes()[header.data_set_offset :]
        instances.append(
            (header.sop_class_uid, header.sop_instance_uid, header.transfer_syntax_uid, data_set)
        )
    return instances


def push(port: int, instances: list[Instance]) -> list[Timing]:
    """One association per instance; the wall time of each (connect to closed) and of its
    phases."""
    times = []
    for sop_class, sop_instance, transfer_syntax, data_set in instances:
        started = time.perf_counter()
        with BlockingScu(
            "127.0.0.1",
            port,
            contexts=((sop_class, (transfer_syntax,)),),
            called_ae_title=CALLED_AE,
        ) as scu:
            associated = time.perf_counter()
            status = scu.store(sop_class, sop_instance, data_set).status
            stored = time.perf_counter()
            scu.release()
        if status != 0x0000:
            raise RuntimeError(f"C-STORE answered 0x{status:04X}")
        ended = time.perf_counter()
        times.append((ended - started, associated - started, stored - associated, ended - stored))
    return times


def median_ms(times: list[Timing]) -> tuple[float, ...]:
    """The median of each phase, in milliseconds."""
    return tuple(statistics.median(column) * 1000 for column in zip(*times, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.associations", description=__doc__)
    parser.add_argument("--set", default="small")
    parser.add_argument("--count", type=int, default=300, help="associations per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--receivers", default=",".join(RECEIVER_NAMES))
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...")
    parser.add_argument("--data-dir", type=Path, default=DATA_ROOT)
    args = parser.parse_args(argv)
    try:
        variants = parse_variants(args.variant)
        known = (*RECEIVER_NAMES, *OTHER_RECEIVER_NAMES)
        names = [*known_names(args.receivers, known, "receiver(s)"), *variants]
        receivers = receivers_named(names, None, f"bench-assoc-{uuid.uuid4().hex[:8]}", variants)
        instances = load(args.set, args.count, args.data_dir)
    except UsageError as error:
        print(f"benchmarks.associations: {error}", file=sys.stderr)
        return 2
    medians: dict[str, list[tuple[float, ...]]] = {receiver.name: [] for receiver in receivers}
    with tempfile.TemporaryDirectory(prefix="bench-assoc-") as scratch:
        for round_number in range(1, args.rounds + 1):
            for receiver in receivers:
                target = Path(scratch, f"{receiver.name}-{round_number}")
                target.mkdir()
                port = free_port()
                log = Path(scratch, f"{receiver.name}-{round_number}.log")
                with RunningReceiver(receiver, port, target, 16384, log) as running:
                    running.wait_ready(READY_TIMEOUT)
                    running.wait_idle()
                    times = push(port, instances)
                median = median_ms(times)
                medians[receiver.name].append(median)
                phases = ", ".join(
                    f"{p} {v:.2f}" for p, v in zip(PHASES[1:], median[1:], strict=True)
                )
                total = f"{median[0]:.2f} ms per association"
                print(f"round {round_number} {receiver.name}: {total} ({phases})")
    print_table(args.set, len(instances), medians)
    return 0


def print_table(set_name: str, count: int, medians: dict[str, list[tuple[float, ...]]]) -> None:
    """Markdown: per receiver the median over rounds of each phase's per-round median."""

    def overall(values: list[tuple[float, ...]], phase: int) -> float:
        return statistics.median(value[phase] for value in values)

    baselines = medians.get("dcmtk-default")
    baseline = overall(baselines, 0) if baselines else None
    print(f"\n{count} associations of one {set_name!r} instance each, per round")
    columns = "ms per association (median of rounds) | rounds | ÷ DCMTK default"
    print(f"| receiver | {columns} | associate ms | store ms | release ms |")
    print("|---|---|---|---|---|---|---|")
    for name, values in medians.items():
        value = overall(values, 0)
        rounds = " ".join(f"{v[0]:.2f}" for v in values)
        ratio = f"{value / baseline:.2f}x" if baseline else "-"  # DCMTK not in this run
        phases = " | ".join(f"{overall(values, phase):.2f}" for phase in range(1, len(PHASES)))
        print(f"| {name} | {value:.2f} | {rounds} | {ratio} | {phases} |")


if __name__ == "__main__":
    sys.exit(main())
