"""Fuzz a running receiver with many clients at once while a well-behaved sender keeps storing.

    python -m fuzz.swarm --seconds 1800 --clients 4          # the long run
    python -m fuzz.swarm --seconds 30 --clients 3 --keep     # keep the work folder

It starts its own receiver (``python -m oxidicom``) and a Celery worker standing in for
CUBE (both from ``tests.peers``; RabbitMQ and NATS on loopback), then for ``--seconds``:

* ``--clients`` processes each play mutated DICOM conversations (:class:`fuzz.inputs.Mutator`
  over the seed corpus, the engine of :mod:`oxidicom.testing.strategies`) on fresh
  connections with :func:`fuzz.live.send_input`, which requires every answer to be
  well-framed PDUs and the receiver to close in time;
* a sender stores series of instances through the same receiver, one association each.

Then it checks what must hold after such a storm:

* the receiver is alive and still answers a C-ECHO, and its log has no traceback;
* every series of the sender is stored byte for byte (each file holds exactly the data set
  sent) and registered by the real Celery worker once, with the right ``ndicom`` and ``path``;
* its open file descriptors are back to their count before the storm, no temporary file is
  left under FILES_ROOT, every file under ``SERVICES/`` is a whole Part 10 file, nothing is
  written outside ``SERVICES/PACS/`` and ``.oxidicom/``;
* its resident memory (VmRSS) is within ``--rss-margin`` MiB of where it was after warm-up.

Exit status 1 if anything failed; ``--save-failures DIR`` keeps the inputs that broke a
property (replay one with ``python -m fuzz.harness --replay FILE``).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import multiprocessing
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from fuzz.inputs import Mutator, load_seeds, split_pdus
from fuzz.live import send_input
from fuzz.target import BrokenPropertyError
from tests.peers.celery_worker import CeleryWorker, delete_queue, start_celery_worker
from tests.peers.oxidicom_receiver import Receiver, start_receiver
from tests.reliability.support import (
    Instance,
    Scu,
    data_set_of,
    files_outside,
    leftovers,
    make_series,
    open_fds,
    rss_kib,
    settled_fds,
    store_all,
)

SENDER_AET = "SWARM-SENDER"
_PDU_NAMES = {1: "rq", 2: "ac", 3: "rj", 4: "p-data", 5: "release-rq", 6: "release-rp", 7: "abort"}
_KEPT_FAILURES = 20


# --- one fuzzing client (runs in a worker process) ----------------------------------------


@attrs.frozen
class InputFailure:
    """An input after which the receiver broke a property (or could not be reached)."""

    label: str
    error: str
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")


@attrs.define
class Tally:
    """What some fuzzing did: inputs (connections), the PDUs and bytes in them, how each
    ended (first..last PDU type the receiver sent) and the failures (the first few kept)."""

    inputs: int = 0
    pdus: int = 0
    bytes: int = 0
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    failures: list[InputFailure] = attrs.field(factory=list)
    failure_count: int = 0

    def add(self, other: Tally) -> None:
        self.inputs += other.inputs
        self.pdus += other.pdus
        self.bytes += other.bytes
        self.outcomes.update(other.outcomes)
        self.failures += other.failures[: max(0, _KEPT_FAILURES - len(self.failures))]
        self.failure_count += other.failure_count


def fuzz_for(host: str, port: int, seed: int, seconds: float, timeout: float) -> Tally:
    """Play mutated conversations against ``host:port`` for ``seconds``."""
    mutator = Mutator(load_seeds(), random.Random(seed))
    tally = Tally()
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        fuzz_input = mutator.next()
        data = fuzz_input.data
        try:
            answer = send_input(host, port, fuzz_input, timeout)
        except (BrokenPropertyError, OSError) as error:
            tally.failure_count += 1
            if len(tally.failures) < _KEPT_FAILURES:
                tally.failures.append(InputFailure(fuzz_input.label, repr(error), data))
            if isinstance(error, ConnectionRefusedError):
                break  # the receiver is gone: the caller will notice
            continue
        tally.inputs += 1
        tally.pdus += len(split_pdus(data))
        tally.bytes += len(data)
        types = answer.pdu_types
        outcome = f"{_PDU_NAMES[types[0]]}..{_PDU_NAMES[types[-1]]}" if types else "closed"
        tally.outcomes[outcome] += 1
    return tally


# --- the well-behaved sender --------------------------------------------------------------


class Sender(threading.Thread):
    """Stores a new series (one association) every ``interval`` seconds until stopped."""

    def __init__(self, receiver: Receiver, *, series_size: int, interval: float) -> None:
        super().__init__(name="swarm-sender", daemon=True)
        self.receiver = receiver
        self.series_size = series_size
        self.interval = interval
        self.sent: list[list[Instance]] = []
        self.failures: list[str] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            self.send_one()
            self._stopping.wait(self.interval)

    def send_one(self) -> None:
        series = make_series(
            self.series_size, pixel_bytes=16 * 1024, PatientID="SWARM", StudyDescription="swarm"
        )
        try:
            statuses = store_all(
                self.receiver.host, self.receiver.port, series, calling_ae_title=SENDER_AET
            )
        except Exception as error:
            self.failures.append(f"series {series[0].series_instance_uid}: {error!r}")
            return
        if statuses != [0] * len(series):
            self.failures.append(f"series {series[0].series_instance_uid}: statuses {statuses}")
            return
        self.sent.append(series)

    def stop(self) -> None:
        self._stopping.set()
        self.join()


# --- the run --------------------------------------------------------------------------------


@attrs.define
class Report:
    """Numbers of one run, and every property that failed (``problems``)."""

    clients: int
    seconds: float = 0.0
    tally: Tally = attrs.field(factory=Tally)
    series_sent: int = 0
    fds_before: int = 0
    fds_after: int = 0
    rss_before_kib: int = 0
    rss_peak_kib: int = 0
    rss_after_kib: int = 0
    rss_samples_kib: list[tuple[float, int]] = attrs.field(factory=list)
    files: int = 0
    problems: list[str] = attrs.field(factory=list)

    def render(self) -> str:
        tally = self.tally
        rate = tally.inputs / self.seconds if self.seconds else 0.0
        lines = [
            f"{tally.inputs} inputs ({tally.pdus} PDUs, {tally.bytes / 1e6:.1f} MB) from "
            f"{self.clients} clients in {self.seconds:.0f} s ({rate:.0f} inputs/s); "
            f"{tally.failure_count} inputs broke a property",
            "receiver answers: "
            + ", ".join(f"{name} {count}" for name, count in tally.outcomes.most_common(12)),
            f"sender: {self.series_sent} series stored intact and registered",
            f"fds: {self.fds_before} before, {self.fds_after} after; files under SERVICES: "
            f"{self.files}",
            f"VmRSS: {self.rss_before_kib / 1024:.1f} MiB after warm-up, peak "
            f"{self.rss_peak_kib / 1024:.1f}, {self.rss_after_kib / 1024:.1f} after",
            "VmRSS over time: "
            + ", ".join(f"{t:.0f}s {kib / 1024:.1f}" for t, kib in self.rss_samples_kib[-12:]),
        ]
        lines += [f"PROBLEM: {problem}" for problem in self.problems]
        lines += [f"  failed input ({f.label}): {f.error}" for f in tally.failures[:5]]
        return "\n".join(lines)


def run_swarm(
    receiver: Receiver,
    worker: CeleryWorker,
    *,
    clients: int,
    seconds: float,
    seed: int = 0,
    rss_margin_mib: float = 64.0,
    timeout: float = 15.0,
    chunk: float = 10.0,
    series_size: int = 5,
    sender_interval: float = 0.5,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Fuzz ``receiver`` with ``clients`` processes for ``seconds`` while a sender stores
    series; check everything the module docstring lists. The receiver must register into
    ``worker``'s queue."""
    report = Report(clients)
    pid = receiver.process.pid
    sender = Sender(receiver, series_size=series_size, interval=sender_interval)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(clients, mp_context=context) as pool:
        # Warm-up: every client process started and fuzzing, one series through, then the
        # baselines (the first connections fill caches and pools that then stay).
        warm_up = [
            pool.submit(fuzz_for, receiver.host, receiver.port, seed * 1000 + n, 2.0, timeout)
            for n in range(clients)
        ]
        sender.send_one()
        for future in warm_up:
            report.tally.add(future.result())
        report.fds_before = settled_fds(pid)
        report.rss_before_kib = report.rss_peak_kib = rss_kib(pid)

        started = time.monotonic()
        until = started + seconds
        sender.start()
        jobs: dict[concurrent.futures.Future[Tally], int] = {}
        rounds = collections.Counter[int]()

        def submit(client: int) -> None:
            rounds[client] += 1
            job_seed = (seed * 1000 + client) * 100_000 + rounds[client]
            length = min(chunk, until - time.monotonic())
            job = pool.submit(fuzz_for, receiver.host, receiver.port, job_seed, length, timeout)
            jobs[job] = client

        for client in range(clients):
            submit(client)
        last_note = started
        while jobs:
            done, _ = concurrent.futures.wait(
                jobs, timeout=1.0, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for job in done:
                client = jobs.pop(job)
                report.tally.add(job.result())
                if time.monotonic() < until - 0.5:
                    submit(client)
            if receiver.process.process.poll() is not None:
                report.problems.append(f"the receiver died: {receiver.log()[-2000:]}")
                break
            rss = rss_kib(pid)
            report.rss_peak_kib = max(report.rss_peak_kib, rss)
            now = time.monotonic()
            if now - last_note >= max(10.0, seconds / 60):
                last_note = now
                report.rss_samples_kib.append((now - started, rss))
                if progress is not None:
                    progress(
                        f"{now - started:6.0f} s: {report.tally.inputs} inputs, "
                        f"{report.tally.pdus} PDUs, {len(sender.sent)} series, "
                        f"VmRSS {rss / 1024:.1f} MiB, fds {open_fds(pid)}"
                    )
        report.seconds = time.monotonic() - started
        sender.stop()
    report.series_sent = len(sender.sent)
    report.problems += sender.failures
    for failure in report.tally.failures:
        report.problems.append(f"input {failure.label}: {failure.error}")
    if receiver.process.process.poll() is None:
        _check_after(receiver, worker, sender.sent, report, rss_margin_mib)
    return report


def _check_after(
    receiver: Receiver,
    worker: CeleryWorker,
    sent: list[list[Instance]],
    report: Report,
    rss_margin_mib: float,
) -> None:
    pid = receiver.process.pid
    problems = report.problems
    try:
        scu = Scu(receiver.host, receiver.port)
        if scu.echo() != 0:
            problems.append("the final C-ECHO failed")
        scu.release()
    except Exception as error:
        problems.append(f"the final C-ECHO failed: {error!r}")
    problems += _check_sender(receiver, worker, sent)

    deadline = time.monotonic() + 60
    while open_fds(pid) > report.fds_before and time.monotonic() < deadline:
        time.sleep(0.1)
    report.fds_after = open_fds(pid)
    if report.fds_after > report.fds_before:
        problems.append(f"{report.fds_after} fds after the run, {report.fds_before} before")
    report.rss_after_kib = rss_kib(pid)
    if report.rss_after_kib - report.rss_before_kib > rss_margin_mib * 1024:
        problems.append(
            f"VmRSS grew from {report.rss_before_kib} to {report.rss_after_kib} KiB "
            f"(margin {rss_margin_mib:g} MiB)"
        )
    root = receiver.files_root
    problems += [f"temporary file left: {path}" for path in leftovers(root)]
    strays = files_outside(root, [root / "SERVICES" / "PACS", root / ".oxidicom"])
    problems += [f"file outside SERVICES/PACS: {path}" for path in strays]
    files = list(_files(root / "SERVICES"))
    report.files = len(files)
    problems += [f"not a whole Part 10 file: {path}" for path in files if not _whole(path)]
    if "Traceback" in receiver.log():
        problems.append("the receiver logged a traceback")


def _check_sender(
    receiver: Receiver, worker: CeleryWorker, sent: list[list[Instance]]
) -> list[str]:
    expected = {series[0].series_instance_uid: series for series in sent}
    deadline = time.monotonic() + 120
    while True:
        tasks = collections.defaultdict(list)
        for task in worker.tasks():
            if task.kwargs["pacs_name"] == SENDER_AET:
                tasks[task.kwargs["SeriesInstanceUID"]].append(task.kwargs)
        missing = expected.keys() - tasks.keys()
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    problems = [f"series {uid} never registered" for uid in sorted(missing)]
    for uid, series in expected.items():
        if uid in missing:
            continue
        registrations = tasks[uid]
        if [kwargs["ndicom"] for kwargs in registrations] != [len(series)]:
            problems.append(f"series {uid} registered as {registrations}")
            continue
        folder = receiver.files_root / registrations[0]["path"]
        stored = sorted(folder.iterdir()) if folder.is_dir() else []
        if [data_set_of(path) for path in stored] != [i.data_set for i in series]:
            problems.append(f"series {uid}: files in {folder} differ from what was sent")
    return problems


def _files(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from (path for path in folder.rglob("*") if path.is_file())


def _whole(path: Path) -> bool:
    """A preamble, ``DICM``, a file meta group as long as it says, and a data set."""
    raw = path.read_bytes()
    if len(raw) < 144 or raw[128:132] != b"DICM" or raw[132:136] != b"\x02\x00\x00\x00":
        return False
    group_length = int.from_bytes(raw[140:144], "little")
    return len(raw) > 144 + group_length


# --- command line ----------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fuzz.swarm", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz [60]")
    parser.add_argument("--clients", type=int, default=4, help="fuzzing processes [4]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rss-margin", type=float, default=64.0, metavar="MIB")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per input [15]")
    parser.add_argument("--save-failures", type=Path, metavar="DIR")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    workdir = Path(tempfile.mkdtemp(prefix="oxidicom-swarm-"))
    queue = f"oxidicom-swarm-{uuid.uuid4().hex[:12]}"
    print(f"work folder {workdir}, queue {queue}", flush=True)
    worker = start_celery_worker(queue, workdir / "celery")
    receiver = None
    try:
        receiver = start_receiver(workdir, queue=queue, OXIDICOM_LOG_LEVEL="warning")
        report = run_swarm(
            receiver,
            worker,
            clients=args.clients,
            seconds=args.seconds,
            seed=args.seed,
            rss_margin_mib=args.rss_margin,
            timeout=args.timeout,
            progress=lambda line: print(line, flush=True),
        )
        code = receiver.stop()
        if code != 0:
            report.problems.append(f"the receiver exited {code} on SIGTERM")
        print(report.render(), flush=True)
        if args.save_failures is not None and report.tally.failures:
            args.save_failures.mkdir(parents=True, exist_ok=True)
            for number, failure in enumerate(report.tally.failures):
                path = args.save_failures / f"swarm-{args.seed}-{number}.bin"
                path.write_bytes(failure.data)
                print(f"saved {path}")
        return 1 if report.problems else 0
    finally:
        if receiver is not None:
            receiver.kill()
        worker.stop()
        delete_queue(queue)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
