"""A real Celery worker, consuming a queue of its own, that records the tasks it runs.

The worker is the stub app :mod:`tests.peers.celery_stub_app` run by ``celery worker -P
prefork -c 1``: it has CUBE's ``register_pacs_series`` signature (so Celery itself rejects
kwargs CUBE would not accept) and writes every call to a JSON-lines file that the test reads.
The prefork pool, Celery's default: the solo pool, used before, left two delivered
messages unprocessed for 10 s at a time (RabbitMQ showing them unacknowledged, the worker
idle in epoll) when two receiver processes published at once, and the prefork pool does not.

Use from any test package::

    from tests.peers.celery_worker import celery_worker  # noqa: F401  (the fixture)

    async def test_something(celery_worker: CeleryWorker) -> None:
        ...  # publish to celery_worker.queue on celery_worker.broker_url
        [task] = await celery_worker.wait_for_tasks(1, where=lambda t: t.kwargs["pacs_name"] == aet)
        assert task.kwargs["ndicom"] == 3

The fixture is session-scoped (a worker takes seconds to start): tests share it, so they
must pick their tasks out by something unique to them (a calling AE title, a UID).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import attrs
import pytest

from tests.peers import celery_stub_app

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
REPO_ROOT = Path(__file__).resolve().parents[2]
_POLL = 0.05


class CeleryWorkerError(Exception):
    """The worker did not start, died, or failed to run a task."""


@attrs.frozen
class RegisteredTask:
    """One ``register_pacs_series`` call the worker ran."""

    id: str
    kwargs: dict[str, Any]


@attrs.define
class CeleryWorker:
    """A running worker process and what it recorded."""

    queue: str
    broker_url: str
    records_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def tasks(self) -> list[RegisteredTask]:
        """Every task run so far, in order; raises if any task failed to run."""
        tasks = []
        for event in self._events():
            if event["event"] == "failure":
                raise CeleryWorkerError(f"the worker failed a task: {event}\n{self.log()}")
            if event["event"] == "task":
                tasks.append(RegisteredTask(event["id"], event["kwargs"]))
        return tasks

    async def wait_for_tasks(
        self,
        count: int,
        *,
        where: Callable[[RegisteredTask], bool] = lambda _: True,
        timeout: float = 30.0,
    ) -> list[RegisteredTask]:
        """Wait until at least ``count`` tasks match ``where``; return the matching ones."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [task for task in self.tasks() if where(task)]
            if len(matching) >= count:
                return matching
            self._check_alive()
            if time.monotonic() > deadline:
                raise CeleryWorkerError(
                    f"{len(matching)} of {count} expected tasks after {timeout:g} s: "
                    f"{matching}\n{self.log()}"
                )
            await asyncio.sleep(_POLL)

    def wait_for_tasks_blocking(
        self,
        count: int,
        *,
        where: Callable[[RegisteredTask], bool] = lambda _: True,
        timeout: float = 30.0,
    ) -> list[RegisteredTask]:
        """:meth:`wait_for_tasks` for tests without an event loop of their own."""
        return asyncio.run(self.wait_for_tasks(count, where=where, timeout=timeout))

    def log(self) -> str:
        try:
            return "--- celery worker log ---\n" + self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no celery worker log)"

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _events(self) -> list[dict[str, Any]]:
        try:
            lines = self.records_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        # The worker may be halfway through a line: only complete lines count.
        return [json.loads(line) for line in lines if line.endswith("}")]

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise CeleryWorkerError(
                f"the celery worker exited with {self.process.returncode}\n{self.log()}"
            )


def start_celery_worker(
    queue: str, workdir: Path, *, broker_url: str = BROKER_URL, timeout: float = 60.0
) -> CeleryWorker:
    """Start a worker consuming ``queue`` and return once it is ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    records = workdir / f"{queue}.jsonl"
    log_path = workdir / f"{queue}.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        celery_stub_app.BROKER_ENV: broker_url,
        celery_stub_app.RECORDS_ENV: str(records),
    }
    argv = [
        sys.executable, "-m", "celery", "-A", celery_stub_app.__name__, "worker",
        "-P", "prefork", "-c", "1", "-Q", queue, "-n", f"stub-{queue}@%h", "-l", "INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    worker = CeleryWorker(queue, broker_url, records, log_path, process)
    deadline = time.monotonic() + timeout
    while not any(event["event"] == "ready" for event in worker._events()):
        try:
            worker._check_alive()
            if time.monotonic() > deadline:
                raise CeleryWorkerError(f"worker not ready after {timeout:g} s\n{worker.log()}")
        except CeleryWorkerError:
            worker.stop()
            raise
        time.sleep(_POLL)
    return worker


def delete_queue(queue: str, broker_url: str = BROKER_URL) -> None:
    """Remove a test queue (and the exchange Celery declares with it) from the broker.

    Blocking: call it outside any event loop (or in a thread).
    """

    async def delete() -> None:
        async with await aio_pika.connect(broker_url) as connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)
            await channel.exchange_delete(queue)

    asyncio.run(delete())


def unique_queue(prefix: str = "oxidicom-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def celery_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryWorker]:
    """One stub CUBE worker for the whole session, on a queue no other run uses."""
    queue = unique_queue()
    worker = start_celery_worker(queue, tmp_path_factory.mktemp("celery"))
    try:
        yield worker
    finally:
        worker.stop()
        delete_queue(queue)
