"""Fuzz a running receiver with many clients at once while a well-behaved sender keeps storing.

    python -m fuzz.swarm --seconds 1800 --clients 4          # the long run
    python -m fuzz.swarm --seconds 30 --clients 3 --keep     # keep the work folder
    python -m fuzz.swarm --seconds 600 --set OXIDICOM_WRITER_THREADS=2

It starts its own receiver (``python -m oxidicom``, from ``tests.peers``; RabbitMQ and NATS
on loopback) and reads the registrations it publishes straight from its queue (the CI test,
``tests/reliability/test_live_fuzz.py``, uses the real Celery worker instead: a stub worker
cannot keep up with the registrations a long run makes). Then for ``--seconds``:

* ``--clients`` processes each play mutated DICOM conversations (:class:`fuzz.inputs.Mutator`
  over the seed corpus, the engine of :mod:`oxidicom.testing.strategies`) on fresh
  connections with :func:`fuzz.live.send_input`, which requires every answer to be
  well-framed PDUs and the receiver to close in time;
* a sender stores series of instances through the same receiver, one association each.

Then it checks what must hold after such a storm:

* the receiver is alive and still answers a C-ECHO, and its log has no traceback;
* every series of the sender is stored byte for byte (each file holds exactly the data set
  sent) and registered once, with the right ``ndicom`` and ``path``;
* its open file descriptors are back to their count before the storm, no temporary file is
  left under FILES_ROOT, every file under ``SERVICES/`` is a whole Part 10 file, nothing is
  written outside ``SERVICES/PACS/`` and ``.oxidicom/``;
* its resident memory (VmRSS) is within ``--rss-margin`` MiB of where it was before (after
  one series went through);
* its thread count (``Threads:`` of ``/proc/PID/status``) is within ``--thread-margin`` of
  where it was before: thread pools may have grown to their size, nothing per connection
  may stay. Its asyncio tasks cannot be counted from outside the process; threads can.

Exit status 1 if anything failed; ``--save-failures DIR`` keeps the inputs that broke a
property (replay one with ``python -m fuzz.harness --replay FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import errno
import json
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
from typing import Any, Protocol

import aio_pika
import aio_pika.abc
import attrs

from fuzz.inputs import FuzzInput, Mutator, load_seeds, split_pdus
from fuzz.live import LiveAnswer, send_input
from fuzz.target import BrokenPropertyError
from tests.peers.celery_worker import BROKER_URL, CeleryWorker, delete_queue
from tests.peers.oxidicom_receiver import Receiver, start_receiver
from tests.reliability.support import (
    Instance,
    Scu,
    data_set_of,
    files_outside,
    leftovers,
    make_series,
    open_fds,
    receiver_processes,
    rss_kib,
    settled_tree_fds,
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
            answer = _play(host, port, fuzz_input, timeout)
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


def _play(host: str, port: int, fuzz_input: FuzzInput, timeout: float) -> LiveAnswer:
    try:
        return send_input(host, port, fuzz_input, timeout)
    except OSError as error:
        if error.errno != errno.ENOTCONN:
            raise
        # send_input half-closes after sending; if the receiver has dropped the connection
        # by then, shutdown() fails with ENOTCONN. The receiver did nothing wrong.
        return LiveAnswer((), 0.0)


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


# --- where registrations are read -----------------------------------------------------------


class Registrations(Protocol):
    """The ``register_pacs_series`` tasks the receiver published, as kwargs."""

    def of_pacs(self, pacs_name: str) -> list[dict[str, Any]]: ...

    def total(self) -> int: ...


@attrs.frozen
class CeleryRegistrations:
    """What the real Celery worker (CUBE's stand-in) ran: the CI test's source. A stub
    worker runs a few dozen tasks a second at best, behind every registration fuzzing made."""

    worker: CeleryWorker

    def of_pacs(self, pacs_name: str) -> list[dict[str, Any]]:
        return [t.kwargs for t in self.worker.tasks() if t.kwargs["pacs_name"] == pacs_name]

    def total(self) -> int:
        return len(self.worker.tasks())


class QueueRegistrations:
    """Consumes the receiver's queue itself (kwargs from the Celery message body): the long
    run's source, as fuzzing makes registrations faster than a stub worker runs them."""

    def __init__(self, broker_url: str, queue: str, pacs_name: str) -> None:
        self._broker_url = broker_url
        self._queue = queue
        self._pacs_name = pacs_name
        self._kept: list[dict[str, Any]] = []
        self._total = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="swarm-queue", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"cannot consume {queue} on {broker_url}")

    def of_pacs(self, pacs_name: str) -> list[dict[str, Any]]:
        assert pacs_name == self._pacs_name
        with self._lock:
            return list(self._kept)

    def total(self) -> int:
        with self._lock:
            return self._total

    def close(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(30)

    def _run(self) -> None:
        self._loop.run_until_complete(self._consume())

    async def _consume(self) -> None:
        self._stopping = asyncio.Event()
        async with await aio_pika.connect(self._broker_url) as connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=1000)
            queue = await channel.declare_queue(
                self._queue, durable=True, exclusive=False, auto_delete=False
            )
            await queue.consume(self._on_message, no_ack=True)
            self._ready.set()
            await self._stopping.wait()

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        _, kwargs, _ = json.loads(message.body)
        with self._lock:
            self._total += 1
            if kwargs.get("pacs_name") == self._pacs_name:
                self._kept.append(kwargs)


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
    threads_before: int = 0
    threads_peak: int = 0
    threads_after: int = 0
    files: int = 0
    registrations: int = 0
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
            f"sender: {self.series_sent} series stored and registered; "
            f"{self.registrations} registrations in all",
            f"fds: {self.fds_before} before, {self.fds_after} after; files under SERVICES: "
            f"{self.files}",
            f"VmRSS: {self.rss_before_kib / 1024:.1f} MiB before, peak "
            f"{self.rss_peak_kib / 1024:.1f}, {self.rss_after_kib / 1024:.1f} after",
            "VmRSS over time: "
            + ", ".join(f"{t:.0f}s {kib / 1024:.1f}" for t, kib in self.rss_samples_kib[-12:]),
            f"threads: {self.threads_before} before, peak {self.threads_peak}, "
            f"{self.threads_after} after",
        ]
        lines += [f"PROBLEM: {problem}" for problem in self.problems]
        lines += [f"  failed input ({f.label}): {f.error}" for f in tally.failures[:5]]
        return "\n".join(lines)


def run_swarm(
    receiver: Receiver,
    registrations: Registrations,
    *,
    clients: int,
    seconds: float,
    seed: int = 0,
    rss_margin_mib: float = 32.0,
    thread_margin: int = 16,
    timeout: float = 15.0,
    chunk: float = 10.0,
    series_size: int = 5,
    sender_interval: float = 0.5,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Fuzz ``receiver`` with ``clients`` processes for ``seconds`` while a sender stores
    series; check everything the module docstring lists, reading the receiver's
    registrations from ``registrations``."""
    report = Report(clients)
    pid = receiver.process.pid
    sender = Sender(receiver, series_size=series_size, interval=sender_interval)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(clients, mp_context=context) as pool:
        # Warm-up: every client process started (nothing sent yet), one series through the
        # receiver, then the baselines: whatever fuzzing adds from here on must go again.
        warm_up = [
            pool.submit(fuzz_for, receiver.host, receiver.port, seed, 0.0, timeout)
            for _ in range(clients)
        ]
        sender.send_one()
        for future in warm_up:
            report.tally.add(future.result())
        report.fds_before = settled_tree_fds(pid)
        report.rss_before_kib = report.rss_peak_kib = _rss_kib(pid)
        report.threads_before = report.threads_peak = _threads(pid)
        workers_before = receiver_processes(pid)

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
            rss = _rss_kib(pid)
            report.rss_peak_kib = max(report.rss_peak_kib, rss)
            report.threads_peak = max(report.threads_peak, _threads(pid))
            now = time.monotonic()
            if now - last_note >= max(10.0, seconds / 60):
                last_note = now
                report.rss_samples_kib.append((now - started, rss))
                if progress is not None:
                    progress(
                        f"{now - started:6.0f} s: {report.tally.inputs} inputs, "
                        f"{report.tally.pdus} PDUs, {len(sender.sent)} series, "
                        f"VmRSS {rss / 1024:.1f} MiB, fds {_fds(pid)}, "
                        f"threads {_threads(pid)}"
                    )
        report.seconds = time.monotonic() - started
        sender.stop()
    report.series_sent = len(sender.sent)
    report.problems += sender.failures
    for failure in report.tally.failures:
        report.problems.append(f"input {failure.label}: {failure.error}")
    if receiver.process.process.poll() is None:
        if (workers_after := receiver_processes(pid)) != workers_before:
            report.problems.append(
                f"a worker process died: processes {workers_before} before, {workers_after} after"
            )
        _check_after(receiver, registrations, sender.sent, report, rss_margin_mib, thread_margin)
    return report


def _fds(pid: int) -> int:
    return sum(open_fds(p) for p in receiver_processes(pid))


def _rss_kib(pid: int) -> int:
    return sum(rss_kib(p) for p in receiver_processes(pid))


def _threads(pid: int) -> int:
    return sum(thread_count(p) for p in receiver_processes(pid))


def thread_count(pid: int) -> int:
    """How many threads process ``pid`` runs (``Threads:`` of its status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no Threads for {pid}")


def _check_after(
    receiver: Receiver,
    registrations: Registrations,
    sent: list[list[Instance]],
    report: Report,
    rss_margin_mib: float,
    thread_margin: int,
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
    problems += _check_sender(receiver, registrations, sent)
    report.registrations = registrations.total()

    deadline = time.monotonic() + 60
    while _fds(pid) > report.fds_before and time.monotonic() < deadline:
        time.sleep(0.1)
    report.fds_after = _fds(pid)
    if report.fds_after > report.fds_before:
        problems.append(f"{report.fds_after} fds after the run, {report.fds_before} before")
    report.rss_after_kib = _rss_kib(pid)
    if report.rss_after_kib - report.rss_before_kib > rss_margin_mib * 1024:
        problems.append(
            f"VmRSS grew from {report.rss_before_kib} to {report.rss_after_kib} KiB "
            f"(margin {rss_margin_mib:g} MiB)"
        )
    bound = report.threads_before + thread_margin  # pools grown to size, nothing more
    while _threads(pid) > bound and time.monotonic() < deadline:
        time.sleep(0.1)
    report.threads_after = _threads(pid)
    if report.threads_after > bound:
        problems.append(
            f"{report.threads_after} threads after the run, {report.threads_before} before "
            f"(margin {thread_margin})"
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
    receiver: Receiver, registrations: Registrations, sent: list[list[Instance]]
) -> list[str]:
    """Every series of the sender registered once, right, and stored byte for byte.

    Waits as long as registrations keep coming (the consumer may have a backlog of the
    fuzzers' ones), and at most a minute once they stop."""
    expected = {series[0].series_instance_uid: series for series in sent}
    total, progress_at = -1, time.monotonic()
    while True:
        tasks = collections.defaultdict(list)
        for kwargs in registrations.of_pacs(SENDER_AET):
            tasks[kwargs["SeriesInstanceUID"]].append(kwargs)
        missing = expected.keys() - tasks.keys()
        if registrations.total() != total:
            total, progress_at = registrations.total(), time.monotonic()
        if not missing or time.monotonic() - progress_at > 60:
            break
        time.sleep(0.5)
    problems = [f"series {uid} never registered" for uid in sorted(missing)]
    for uid, series in expected.items():
        if uid in missing:
            continue
        found = tasks[uid]
        if [kwargs["ndicom"] for kwargs in found] != [len(series)]:
            problems.append(f"series {uid} registered as {found}")
            continue
        folder = receiver.files_root / found[0]["path"]
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
    parser.add_argument("--rss-margin", type=float, default=32.0, metavar="MIB")
    parser.add_argument("--thread-margin", type=int, default=16, metavar="N")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per input [15]")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OXIDICOM_X=VALUE",
        help="a receiver setting (repeatable), e.g. --set OXIDICOM_WRITER_THREADS=2",
    )
    parser.add_argument("--save-failures", type=Path, metavar="DIR")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    workdir = Path(tempfile.mkdtemp(prefix="oxidicom-swarm-"))
    queue = f"oxidicom-swarm-{uuid.uuid4().hex[:12]}"
    print(f"work folder {workdir}, queue {queue}", flush=True)
    receiver = None
    registrations = QueueRegistrations(BROKER_URL, queue, SENDER_AET)
    try:
        settings = dict(item.partition("=")[::2] for item in args.set)
        receiver = start_receiver(
            workdir, queue=queue, **{"OXIDICOM_LOG_LEVEL": "warning", **settings}
        )
        report = run_swarm(
            receiver,
            registrations,
            clients=args.clients,
            seconds=args.seconds,
            seed=args.seed,
            rss_margin_mib=args.rss_margin,
            thread_margin=args.thread_margin,
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
        registrations.close()
        delete_queue(queue)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
