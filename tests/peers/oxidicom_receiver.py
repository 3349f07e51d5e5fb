"""The receiver under test, run as the real command (``python -m oxidicom``) in a subprocess.

Each receiver gets its own FILES_ROOT, queue name and NATS root subject, so tests (and
concurrent runs) never see each other's files or messages.

    def test_x(receiver_factory):
        rx = receiver_factory(OXIDICOM_SCP_STRICT="true")
        storescu(rx.host, rx.port, [path]).check()
        rx.files()  # paths relative to FILES_ROOT
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from tests.peers.ports import (
    ListenerProcess,
    free_port,
    retry_on_address_in_use,
    start_listener,
)

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672"
NATS_ADDRESS = "127.0.0.1:4222"
HOST = "127.0.0.1"


@attrs.define
class Receiver:
    port: int
    files_root: Path
    queue: str
    root_subject: str
    env: dict[str, str]
    process: ListenerProcess
    host: str = HOST

    def files(self) -> list[str]:
        """Every stored file, relative to FILES_ROOT (our own .oxidicom folder excluded)."""
        found = []
        for folder, dirs, names in os.walk(self.files_root):
            dirs[:] = [d for d in dirs if d != ".oxidicom"]
            for name in names:
                found.append(str(Path(folder, name).relative_to(self.files_root)))
        return sorted(found)

    def log(self) -> str:
        return self.process.log()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, and return the exit code."""
        popen = self.process.process
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired as error:
                popen.kill()
                popen.wait()
                raise AssertionError(
                    f"receiver ignored SIGTERM for {timeout}s:\n{self.log()}"
                ) from error
        return popen.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        popen = self.process.process
        if popen.poll() is None:
            popen.kill()
            popen.wait()


def start_receiver(
    workdir: Path,
    *,
    files_root: Path | None = None,
    queue: str | None = None,
    root_subject: str | None = None,
    port: int | None = None,
    **settings: str,
) -> Receiver:
    """Start the receiver and wait until it listens. ``settings`` are extra OXIDICOM_* values."""
    unique = uuid.uuid4().hex[:12]
    root = files_root or workdir / f"files-{unique}"
    root.mkdir(parents=True, exist_ok=True)
    queue = queue or f"oxidicom-test-{unique}"
    root_subject = root_subject or f"test{unique}"

    def start() -> Receiver:
        chosen = port or free_port()
        env = {
            "OXIDICOM_AMQP_ADDRESS": AMQP_URL,
            "OXIDICOM_FILES_ROOT": str(root),
            "OXIDICOM_QUEUE_NAME": queue,
            "OXIDICOM_NATS_ADDRESS": NATS_ADDRESS,
            "OXIDICOM_ROOT_SUBJECT": root_subject,
            "OXIDICOM_LISTENER_ADDRESS": HOST,
            "OXIDICOM_LISTENER_PORT": str(chosen),
            "OXIDICOM_LOG_LEVEL": "debug",
            **settings,
        }
        process = start_listener(
            "oxidicom",
            [sys.executable, "-m", "oxidicom"],
            ports=[chosen],
            log_path=workdir / f"oxidicom-{chosen}-{unique}.log",
            env=env,
            timeout=30.0,
        )
        return Receiver(chosen, root, queue, root_subject, env, process)

    return retry_on_address_in_use(start)


ReceiverFactory = Callable[..., Receiver]


@pytest.fixture
def receiver_factory(tmp_path: Path) -> Iterator[ReceiverFactory]:
    """Start receivers with ``receiver_factory(**settings)``; all are stopped after the test
    (a receiver that does not exit 0 on SIGTERM fails the test)."""
    started: list[Receiver] = []

    def factory(
        *,
        files_root: Path | None = None,
        queue: str | None = None,
        root_subject: str | None = None,
        port: int | None = None,
        **settings: str,
    ) -> Receiver:
        receiver = start_receiver(
            tmp_path,
            files_root=files_root,
            queue=queue,
            root_subject=root_subject,
            port=port,
            **settings,
        )
        started.append(receiver)
        return receiver

    yield factory
    failures = []
    for receiver in started:
        code = receiver.stop()
        if code not in (0, -signal.SIGKILL):
            failures.append(f"receiver on port {receiver.port} exited {code}:\n{receiver.log()}")
    if failures:
        pytest.fail("\n".join(failures))


@pytest.fixture
def receiver(receiver_factory: ReceiverFactory) -> Receiver:
    """A receiver with default settings (NATS and RabbitMQ on loopback)."""
    return receiver_factory()
