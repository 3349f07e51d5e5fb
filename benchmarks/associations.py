"""What an association costs: many short ones, one instance each, one after the other.

Some PACS open an association per instance. Then what counts is not the instance path but
everything around it: TCP connect, negotiation, the release, and for oxidicom the end of the
series (final LONK messages and the registration, which must be on disk before the
A-RELEASE-RP goes out). The sender is :class:`~oxidicom.testing.scu.BlockingScu` (the same
for every receiver, no process start per association); the receivers are the runner's,
started in turn, rounds alternating, and the figure is the median wall time per association
and its ratio to DCMTK's default ``storescp``::

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


def push(port: int, instances: list[Instance]) -> list[float]:
    """One association per instance; the wall time of each (connect to closed)."""
    times = []
    for sop_class, sop_instance, transfer_syntax, data_set in instances:
        started = time.perf_counter()
        with BlockingScu(
            "127.0.0.1",
            port,
            contexts=((sop_class, (transfer_syntax,)),),
            called_ae_title=CALLED_AE,
        ) as scu:
            status = scu.store(sop_class, sop_instance, data_set).status
            scu.release()
        if status != 0x0000:
            raise RuntimeError(f"C-STORE answered 0x{status:04X}")
        times.append(time.perf_counter() - started)
    return times


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
    medians: dict[str, list[float]] = {receiver.name: [] for receiver in receivers}
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
                median = statistics.median(times) * 1000
                medians[receiver.name].append(median)
                print(f"round {round_number} {receiver.name}: {median:.2f} ms per association")
    baselines = medians.get("dcmtk-default")
    baseline = statistics.median(baselines) if baselines else None
    print(f"\n{len(instances)} associations of one {args.set!r} instance each, per round")
    print("| receiver | ms per association (median of rounds) | rounds | ÷ DCMTK default |")
    print("|---|---|---|---|")
    for name, values in medians.items():
        value = statistics.median(values)
        rounds = " ".join(f"{v:.2f}" for v in values)
        ratio = f"{value / baseline:.2f}x" if baseline else "-"  # DCMTK not in this run
        print(f"| {name} | {value:.2f} | {rounds} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
