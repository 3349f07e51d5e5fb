"""Push the same data into each receiver in turn and compare them (``python -m benchmarks.run``).

For every set and round, each receiver is started on a free loopback port, writing into a
fresh folder; the sender pushes the whole set; the receiver's process tree is sampled for
CPU and peak memory just before it is stopped; the files are counted and one is compared
byte for byte. Receivers alternate within each round (A B C, A B C, ...) so that slow
drifts of the shared machine hit all of them alike, and medians over rounds are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika
import attrs
import cattrs

from benchmarks.cpuquota import CpuQuota, QuotaUnavailableError
from benchmarks.datasets import DATA_ROOT, SETS, Manifest, parse_set_names, read_manifest
from benchmarks.floor import Floor, measure_floor
from benchmarks.fsprobe import (
    PROBE_FILES,
    SLOW_CREATE_US,
    create_cost_us,
    spread_subdirectories,
)
from benchmarks.loopback import free_port
from benchmarks.machine import Machine, describe
from benchmarks.proctree import tree_pids
from benchmarks.receivers import (
    DCMTK_BITPRESERVING,
    DCMTK_DEFAULT,
    DCMTK_FORK,
    PYNETDICOM,
    REPO_ROOT,
    Receiver,
    ReceiverFailedError,
    RunningReceiver,
    oxidicom_receiver,
    project_python,
)
from benchmarks.replay import ReplaySender
from benchmarks.report import MIB, RunRecord, Summary, metrics_table, rate, ratio_table, summarize
from benchmarks.senders import (
    DEFAULT_OXIDICOM_SCU,
    ParallelStoreScu,
    Push,
    Sender,
    StoreScu,
    TemplateSender,
    run_push,
)
from benchmarks.systemcpu import read_system_cpu
from benchmarks.verify import compare_sample, wait_for_files

OUT_ROOT = Path(__file__).resolve().parent / "out"
RECEIVER_NAMES = ("dcmtk-bitpreserving", "dcmtk-default", "pynetdicom", "oxidicom")
"""The default --receivers."""
OTHER_RECEIVER_NAMES = ("dcmtk-fork",)
SENDER_NAMES = ("storescu", "parallel-storescu", "oxidicom-scu", "replay")
AMQP_ADDRESS = "amqp://guest:guest@127.0.0.1:5672"
READY_TIMEOUT = 30.0
DRAIN_TIMEOUT = 30.0


class UsageError(Exception):
    """A problem with the command line or the environment, reported without a traceback."""


def receivers_named(
    names: list[str], oxidicom_cmd: str | None, queue: str, variants: dict[str, dict[str, str]]
) -> list[Receiver]:
    oxidicom = oxidicom_receiver(oxidicom_cmd, queue)
    known = {
        DCMTK_BITPRESERVING.name: DCMTK_BITPRESERVING,
        DCMTK_DEFAULT.name: DCMTK_DEFAULT,
        DCMTK_FORK.name: DCMTK_FORK,
        PYNETDICOM.name: PYNETDICOM,
        "oxidicom": oxidicom,
    }
    for name, env in variants.items():
        known[name] = attrs.evolve(oxidicom, name=name, env={**oxidicom.env, **env})
    return [known[name] for name in names]


def parse_variants(specs: list[str]) -> dict[str, dict[str, str]]:
    """``NAME:KEY=VALUE,KEY=VALUE`` -> {NAME: {KEY: VALUE}}: oxidicom with other settings,
    or (``PYTHONPATH=CHECKOUT``) another checkout's code, for before/after comparisons."""
    variants: dict[str, dict[str, str]] = {}
    for spec in specs:
        name, _, assignments = spec.partition(":")
        env = {}
        for assignment in filter(None, assignments.split(",")):
            key, equals, value = assignment.partition("=")
            if not equals or not (key.startswith("OXIDICOM_") or key == "PYTHONPATH"):
                raise UsageError(f"--variant {spec!r}: expected NAME:OXIDICOM_X=VALUE,...")
            env[key] = value
        if not name or name in (*RECEIVER_NAMES, *OTHER_RECEIVER_NAMES):
            raise UsageError(f"--variant {spec!r}: needs a new receiver name")
        variants[name] = env
    return variants


def _sender(name: str, oxidicom_scu_cmd: str) -> Sender:
    if name == "storescu":
        return StoreScu()
    if name == "parallel-storescu":
        return ParallelStoreScu()
    if name == "replay":
        return ReplaySender()
    return TemplateSender("oxidicom-scu", oxidicom_scu_cmd)


def known_names(text: str, known: tuple[str, ...], what: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise UsageError(
            f"unknown {what} {', '.join(unknown) or '(none)'}; known: {', '.join(known)}"
        )
    return names


def _check_template_sender(sender: TemplateSender) -> None:
    """Run the template's command up to its first placeholder with ``--help``: enough to
    tell a sender that does not exist yet from one that fails during a push."""
    argv: list[str] = []
    for part in shlex.split(sender.template):
        if "{" in part and part != "{python}":
            break
        argv.append(part.replace("{python}", project_python()))
    argv.append("--help")
    try:
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"sender {sender.name} not available: {error}") from error
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise UsageError(
            f"sender {sender.name} not available ({shlex.join(argv)} exited "
            f"{done.returncode}):\n    " + "\n    ".join(tail)
        )


def _preflight(receiver: Receiver, scratch: Path, max_pdu: int, log_root: Path) -> str | None:
    """Start and stop the receiver once, without data: None if it works, else why not."""
    folder = Path(tempfile.mkdtemp(prefix=f"preflight-{receiver.name}-", dir=scratch))
    try:
        with RunningReceiver(
            receiver, free_port(), folder, max_pdu, log_root / f"preflight-{receiver.name}.log"
        ) as running:
            running.wait_ready(READY_TIMEOUT)
    except ReceiverFailedError as error:
        return str(error)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return None


def _fresh_target(scratch: Path, prefix: str, attempts: int) -> tuple[Path, float]:
    """A new folder for one run where creating files is cheap, and what it cost there.

    ``scratch`` is a top directory (see fsprobe), so each new folder lands in some block
    group; while the probe inside it is slow, try another one. The probe files are hidden
    and stay, so the receiver's file count ignores them and nothing is deleted here.
    """
    best: tuple[Path, float] | None = None
    for _ in range(max(1, attempts)):
        target = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch))
        cost = create_cost_us(target)
        if best is None or cost < best[1]:
            best = (target, cost)
        if cost <= SLOW_CREATE_US:
            break
    assert best is not None
    return best


def _warm(manifests: list[Manifest], data_root: Path) -> None:
    """Read every input file once so that all rounds read them from the page cache."""
    for manifest in manifests:
        started = time.perf_counter()
        for path in manifest.file_paths(data_root):
            with path.open("rb") as f:
                while f.read(1 << 22):
                    pass
        print(
            f"warmed {manifest.spec.name}: {manifest.total_bytes / 1e6:,.1f} MB "
            f"in {time.perf_counter() - started:.2f} s"
        )


def _failed(
    base: dict[str, object], error: str, wall: float = 0.0, files: tuple[int, int] = (0, 0)
) -> RunRecord:
    return RunRecord(
        **base,  # type: ignore[arg-type]
        ok=False,
        error=error,
        wall_seconds=wall,
        receiver_cpu_seconds=0.0,
        receiver_user_seconds=0.0,
        receiver_system_seconds=0.0,
        receiver_startup_cpu_seconds=0.0,
        receiver_lifetime_cpu_seconds=None,
        peak_rss_max_bytes=0,
        peak_rss_sum_bytes=0,
        receiver_processes=0,
        sender_cpu_seconds=0.0,
        sender_processes=0,
        drain_seconds=0.0,
        create_probe_us=0.0,
        other_cpu_seconds=0.0,
        steal_seconds=0.0,
        received_files=files[0],
        received_bytes=files[1],
        sample_check="-",
    )


def run_once(
    receiver: Receiver,
    manifest: Manifest,
    sender: Sender,
    args: argparse.Namespace,
    round_number: int,
    scratch: Path,
    log_root: Path,
) -> RunRecord:
    spec = manifest.spec
    base: dict[str, object] = {
        "set_name": spec.name,
        "receiver": receiver.name,
        "sender": sender.name,
        "round": round_number,
        "instances": manifest.files,
        "bytes_sent": manifest.total_bytes,
    }
    log_dir = log_root / f"{spec.name}-r{round_number}-{receiver.name}"
    log_dir.mkdir(parents=True)
    prefix = f"{spec.name}-r{round_number}-{receiver.name}-"
    target, create_us = _fresh_target(scratch, prefix, args.create_attempts)
    port = free_port()
    try:
        with RunningReceiver(receiver, port, target, args.max_pdu, log_dir / "receiver.log") as rx:
            rx.wait_ready(READY_TIMEOUT)
            baseline = rx.wait_idle()
            if args.quota is not None:
                args.quota.confine(tree_pids(rx.pid))
            system_before = read_system_cpu()
            push = run_push(
                sender,
                Push(
                    host="127.0.0.1",
                    port=port,
                    directory=manifest.directory(args.data_dir),
                    files=tuple(manifest.file_paths(args.data_dir)),
                    transfer_syntax=spec.transfer_syntax,
                    max_pdu=args.max_pdu,
                    associations=args.associations,
                ),
                log_dir,
                args.timeout,
            )
            pushed = time.perf_counter()
            files = wait_for_files(target, manifest.files, DRAIN_TIMEOUT if push.ok else 1.0)
            drain = time.perf_counter() - pushed
            # Trailing work (closing files, publishing notifications) belongs to the push.
            final = rx.wait_idle()
            system_after = read_system_cpu()
            receiver_alive = rx.alive()
            ended = rx.stop()

        if not push.ok:
            codes = ", ".join(str(p.returncode) for p in push.processes)
            why = "timed out" if push.timed_out else f"exit code(s) {codes}"
            return _failed(base, f"sender {why}; logs in {log_dir}", push.wall_seconds, files)
        if not receiver_alive:
            return _failed(base, f"receiver died during the push; see {log_dir}", 0.0, files)
        if files[0] != manifest.files:
            return _failed(
                base, f"received {files[0]} of {manifest.files} files", push.wall_seconds, files
            )
        receiver_cpu = final.cpu_seconds - baseline.cpu_seconds
        busy = system_after.busy_seconds - system_before.busy_seconds
        sample = compare_sample(
            manifest.directory(args.data_dir) / manifest.sample_file,
            target,
            manifest.sample_sop_instance_uid,
        )
        return RunRecord(
            **base,  # type: ignore[arg-type]
            ok=True,
            error=None,
            wall_seconds=push.wall_seconds,
            receiver_cpu_seconds=receiver_cpu,
            receiver_user_seconds=final.user_seconds - baseline.user_seconds,
            receiver_system_seconds=final.system_seconds - baseline.system_seconds,
            receiver_startup_cpu_seconds=baseline.cpu_seconds,
            receiver_lifetime_cpu_seconds=ended.cpu_seconds,
            peak_rss_max_bytes=final.peak_rss_max_bytes,
            peak_rss_sum_bytes=final.peak_rss_sum_bytes,
            receiver_processes=len(final.processes),
            sender_cpu_seconds=push.cpu_seconds,
            sender_processes=len(push.processes),
            drain_seconds=drain,
            create_probe_us=create_us,
            other_cpu_seconds=max(0.0, busy - receiver_cpu - push.cpu_seconds),
            steal_seconds=system_after.steal_seconds - system_before.steal_seconds,
            received_files=files[0],
            received_bytes=files[1],
            sample_check=sample,
            busiest_process_share=final.busiest_share_since(baseline),
        )
    except ReceiverFailedError as error:
        return _failed(base, str(error))
    finally:
        if args.quota is not None:
            args.quota.close()
        # Received files stay until the end of the invocation (see fsprobe: deleting them
        # now would make the next receiver's file creation slower). Flushing them now keeps
        # their writeback out of the next receiver's measurement.
        os.sync()


def _busiest(record: RunRecord) -> str:
    if record.receiver_processes < 2:
        return ""
    return f" (busiest {record.busiest_process_share:.0%})"


def _progress(record: RunRecord) -> str:
    head = f"{record.set_name} r{record.round} {record.receiver:<20}"
    if not record.ok:
        return f"{head} FAILED: {record.error}"
    return (
        f"{head} {record.received_files}/{record.instances} files "
        f"{record.wall_seconds:7.2f} s {rate(record.instances_per_second):>8} inst/s "
        f"{record.mb_per_second:7,.1f} MB/s  rx CPU {record.receiver_cpu_seconds:6.2f} s "
        f"({record.cpu_seconds_per_gb:5.2f}/GB)  RSS {record.peak_rss_max_bytes / MIB:7.1f} MiB "
        f"x{record.receiver_processes}{_busiest(record)}  "
        f"tx CPU {record.sender_cpu_seconds:5.2f} s  "
        f"other {record.other_cpu_seconds:5.2f} s  steal {record.steal_seconds:4.2f} s  "
        f"create {record.create_probe_us:4.0f} µs  "
        f"{record.sample_check}"
    )


async def _delete_queue(name: str) -> None:
    connection = await aio_pika.connect(AMQP_ADDRESS, timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


def _write_results(
    out_dir: Path,
    machine: Machine,
    floor: Floor,
    argv: list[str],
    records: list[RunRecord],
    summaries: list[Summary],
    set_seconds: dict[str, float],
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"results-{stamp}.json"
    converter = cattrs.Converter()
    document = {
        "command": argv,
        "machine": converter.unstructure(machine),
        "kernel_floor": {
            **converter.unstructure(floor),
            "cpu_seconds_per_gb": floor.cpu_seconds_per_gb,
        },
        "set_seconds": set_seconds,
        "runs": [
            {
                **converter.unstructure(r),
                "instances_per_second": r.instances_per_second if r.ok else None,
                "mb_per_second": r.mb_per_second if r.ok else None,
                "cpu_seconds_per_gb": r.cpu_seconds_per_gb if r.ok else None,
            }
            for r in records
        ],
        "summaries": converter.unstructure(summaries),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--sets", default="small,medium,large")
    parser.add_argument("--receivers", default=",".join(RECEIVER_NAMES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-pdu", type=int, default=16384)
    parser.add_argument("--sender", choices=SENDER_NAMES, default="storescu")
    parser.add_argument(
        "--associations",
        type=int,
        default=None,
        help="parallel associations (oxidicom-scu, replay) or storescu processes "
        "(parallel-storescu; default: usable CPUs); storescu always uses one",
    )
    parser.add_argument(
        "--oxidicom-cmd", help="receiver command template (default: {python} -P -m oxidicom)"
    )
    parser.add_argument("--oxidicom-scu-cmd", default=DEFAULT_OXIDICOM_SCU)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:OXIDICOM_X=VALUE,...",
        help="another oxidicom receiver with these settings, named NAME in --receivers "
        "(e.g. oxidicom-2w:OXIDICOM_WORKERS=2), or with another checkout's code "
        "(e.g. before:PYTHONPATH=/tmp/before); repeatable",
    )
    parser.add_argument(
        "--cpu-quota",
        type=float,
        metavar="CPUS",
        help="cap each receiver process at CPUS of a CPU, in a cgroup of its own, from just "
        "before the push (emulates one slow core per worker; see cpuquota.py)",
    )
    parser.add_argument("--tmpfs", action="store_true", help="receivers write to /dev/shm")
    parser.add_argument(
        "--scratch", type=Path, help="where receivers write (default: benchmarks/out/scratch)"
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_ROOT)
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="results and logs")
    parser.add_argument(
        "--create-attempts",
        type=int,
        default=8,
        help="folders tried per run until creating a file there is cheap (see fsprobe.py)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per push")
    parser.add_argument(
        "--keep-output", action="store_true", help="keep received files after the invocation"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _main(args, sys.argv[1:] if argv is None else argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _validate(args: argparse.Namespace) -> tuple[list[Manifest], list[str]]:
    """Check the command line and the environment; returns the sets and receiver names."""
    try:
        set_names = parse_set_names(args.sets)
    except ValueError as error:
        raise UsageError(str(error)) from error
    args.variant_env = parse_variants(args.variant)
    receiver_names = known_names(
        args.receivers, (*RECEIVER_NAMES, *OTHER_RECEIVER_NAMES, *args.variant_env), "receiver(s)"
    )
    if args.rounds < 1:
        raise UsageError("--rounds must be at least 1")
    if not 4096 <= args.max_pdu <= 131072:
        raise UsageError("--max-pdu must be within 4096..131072 (DCMTK's limits)")
    if args.associations is None:
        parallel = args.sender in {"parallel-storescu", "replay"}
        args.associations = len(os.sched_getaffinity(0)) if parallel else 1
    if args.associations < 1:
        raise UsageError("--associations must be at least 1")
    if args.sender == "storescu" and args.associations != 1:
        raise UsageError("storescu uses one association; use --sender parallel-storescu")
    for tool in ("storescp", "storescu"):
        if shutil.which(tool) is None:
            raise UsageError(f"{tool} (DCMTK) is not on PATH")
    manifests = []
    for name in set_names:
        manifest = read_manifest(name, args.data_dir)
        if manifest is None:
            raise UsageError(
                f"set {name} is not generated; "
                f"run: .venv/bin/python -m benchmarks.generate --sets {name}"
            )
        manifests.append(manifest)
    return manifests, receiver_names


def _print_header(args: argparse.Namespace, argv: list[str], machine: Machine) -> None:
    command = shlex.join(["python", "-m", "benchmarks.run", *argv])
    print(f"## oxidicom receiver benchmark\n\n`{command}`\n")
    print(machine.markdown())
    print(
        f"- sender: {args.sender} (associations/processes: {args.associations}), "
        f"max PDU {args.max_pdu}, rounds {args.rounds}, TCP_NODELAY=1\n"
        "- input files are read from the page cache (warmed below), which is never dropped"
    )
    if args.quota is not None:
        print(
            f"- each receiver process capped at {args.quota.cpus} CPU in a cgroup of its own "
            "from just before the push (--cpu-quota, see cpuquota.py)"
        )


def _available(
    receivers: list[Receiver], scratch: Path, max_pdu: int, log_root: Path
) -> list[Receiver]:
    usable = []
    for receiver in receivers:
        problem = _preflight(receiver, scratch, max_pdu, log_root)
        if problem is None:
            usable.append(receiver)
        else:
            print(f"receiver {receiver.name} is not available, continuing without it:")
            print(f"  {problem}\n")
    if not usable:
        raise UsageError("no receiver is available")
    return usable


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    manifests, receiver_names = _validate(args)
    args.quota = None
    if args.cpu_quota is not None:
        try:
            args.quota = CpuQuota(args.cpu_quota)
        except QuotaUnavailableError as error:
            raise UsageError(str(error)) from error
    sender = _sender(args.sender, args.oxidicom_scu_cmd)
    if isinstance(sender, TemplateSender):
        _check_template_sender(sender)

    scratch_root = Path("/dev/shm") if args.tmpfs else (args.scratch or args.out / "scratch")
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="oxidicom-bench-", dir=scratch_root))
    spread = spread_subdirectories(scratch)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_root = args.out / "logs" / stamp
    log_root.mkdir(parents=True)
    queue = f"bench-{uuid.uuid4()}"

    machine = describe(scratch, args.data_dir)
    _print_header(args, argv, machine)
    receivers: list[Receiver] = []
    records: list[RunRecord] = []
    set_seconds: dict[str, float] = {}
    try:
        print(
            f"- before each run, {PROBE_FILES} files are created in its target folder; above "
            f"{SLOW_CREATE_US:.0f} µs per file another folder is tried (see fsprobe.py)"
        )
        if not spread and not args.tmpfs:
            print(f"- (could not mark {scratch} as an ext4 top directory; see fsprobe.py)")
        floor = measure_floor(scratch, chunk=args.max_pdu)
        print(
            f"- kernel floor on the target: {floor.cpu_seconds_per_gb:.2f} CPU-s/GB "
            f"(loopback recv + write in {floor.chunk}-byte chunks, see benchmarks/floor.py)\n"
        )
        receivers = _available(
            receivers_named(receiver_names, args.oxidicom_cmd, queue, args.variant_env),
            scratch,
            args.max_pdu,
            log_root,
        )
        _warm(manifests, args.data_dir)
        print()
        for manifest in manifests:
            started = time.perf_counter()
            for round_number in range(1, args.rounds + 1):
                for receiver in receivers:
                    record = run_once(
                        receiver, manifest, sender, args, round_number, scratch, log_root
                    )
                    records.append(record)
                    print(_progress(record), flush=True)
            set_seconds[manifest.spec.name] = time.perf_counter() - started
    finally:
        if args.keep_output:
            print(f"received files kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
            # Clean inode table blocks shorten the time during which the next invocation's
            # file creation is slowed by these deletions (see fsprobe).
            os.sync()
        if any(r.name == "oxidicom" for r in receivers):
            try:
                asyncio.run(_delete_queue(queue))
            except Exception as error:
                print(f"warning: could not delete AMQP queue {queue}: {error}", file=sys.stderr)

    summaries = summarize(records)
    failures = [r for r in records if not r.ok]
    print()
    for name, seconds in set_seconds.items():
        print(f"- set {name} ({SETS[name].summary}): {seconds:.0f} s for all rounds")
    print(f"\n{metrics_table(summaries, failures)}\n\n{ratio_table(summaries)}\n")
    path = _write_results(args.out, machine, floor, argv, records, summaries, set_seconds)
    print(f"results: {path}\nlogs: {log_root}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
