"""The receivers under test, and how one is started, watched and stopped.

Each receiver is a command template: ``{port}``, ``{dir}``, ``{max_pdu}`` and ``{python}`` are
filled in per run, in arguments and environment alike. They all get the same maximum PDU and
accept every transfer syntax the benchmark data uses, so they differ only in how they
receive and store.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import attrs

from benchmarks.loopback import is_listening
from benchmarks.proctree import TreeSample, sample_tree

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
CALLED_AE = "BENCHSCP"
IDLE_CPU_SECONDS = 0.01  # one clock tick: what an idle receiver may still be charged


def project_python() -> str:
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


@attrs.frozen
class Receiver:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = attrs.field(factory=dict)

    def render(self, port: int, directory: Path, max_pdu: int) -> tuple[list[str], dict[str, str]]:
        values = {
            "port": str(port),
            "dir": str(directory),
            "max_pdu": str(max_pdu),
            "python": project_python(),
        }
        argv = [part.format_map(values) for part in self.argv]
        env = {key: value.format_map(values) for key, value in self.env.items()}
        return argv, env


# storescp writes nothing to disk before the data set is complete unless +B is given; with
# +B it streams the received bytes straight into the file (the only mode that never holds
# a whole instance in memory). -dhl skips reverse DNS of the peer.
_STORESCP_COMMON = ("+xa", "-dhl", "-aet", CALLED_AE, "-pdu", "{max_pdu}", "-od", "{dir}")

DCMTK_BITPRESERVING = Receiver(
    "dcmtk-bitpreserving", ("storescp", "+B", *_STORESCP_COMMON, "{port}")
)
DCMTK_DEFAULT = Receiver("dcmtk-default", ("storescp", *_STORESCP_COMMON, "{port}"))
# Without --fork storescp serves one association at a time; with it, each association gets
# a child process: DCMTK's way to use several cores (for --sender parallel-storescu).
DCMTK_FORK = Receiver("dcmtk-fork", ("storescp", "+B", "--fork", *_STORESCP_COMMON, "{port}"))
# pynetdicom's app accepts every transfer syntax it knows by default; its 30 s network and
# DIMSE timeouts are raised so that a slow 512 MB transfer is measured rather than aborted.
PYNETDICOM = Receiver(
    "pynetdicom",
    (
        "{python}", "-m", "pynetdicom", "storescp",
        "-aet", CALLED_AE, "-ba", "127.0.0.1", "-pdu", "{max_pdu}", "-od", "{dir}",
        "-ta", "600", "-td", "600", "-tn", "600",
        "{port}",
    ),
)  # fmt: skip


def oxidicom_receiver(command: str | None, queue_name: str) -> Receiver:
    """oxidicom, configured through its environment as in production (see CUBE_CONTRACT)."""
    # -P: the working directory (the checkout) does not go first on sys.path, so that a
    # variant's PYTHONPATH decides which oxidicom runs (the checkout's is installed anyway).
    argv = tuple(shlex.split(command)) if command else ("{python}", "-P", "-m", "oxidicom")
    env = {
        "OXIDICOM_LISTENER_PORT": "{port}",
        "OXIDICOM_FILES_ROOT": "{dir}",
        "OXIDICOM_AMQP_ADDRESS": "amqp://guest:guest@127.0.0.1:5672",
        "OXIDICOM_NATS_ADDRESS": "127.0.0.1:4222",
        "OXIDICOM_QUEUE_NAME": queue_name,
        "OXIDICOM_SCP_MAX_PDU_LENGTH": "{max_pdu}",
    }
    return Receiver("oxidicom", argv, env)


class ReceiverFailedError(Exception):
    """The receiver did not come up, or died: the message says why, with its log's tail."""


@attrs.frozen
class Exit:
    returncode: int
    cpu_seconds: float
    """User + system time of the root and every descendant it reaped, whole lifetime.

    (Its ru_maxrss is not kept: it includes the runner's own RSS from before exec.)"""


class RunningReceiver:
    """A receiver process, started as its own session so its whole tree can be found and
    stopped; use as a context manager so it never outlives the run."""

    def __init__(
        self, receiver: Receiver, port: int, directory: Path, max_pdu: int, log: Path
    ) -> None:
        self.receiver = receiver
        self.port = port
        self.log = log
        argv, env = receiver.render(port, directory, max_pdu)
        self.argv = argv
        with log.open("wb") as sink:
            try:
                self._process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "TCP_NODELAY": "1", **env},
                    cwd=REPO_ROOT,
                    start_new_session=True,
                )
            except OSError as error:
                raise ReceiverFailedError(f"cannot start {shlex.join(argv)}: {error}") from error
        self._exit: Exit | None = None
        self._reaper = threading.Thread(target=self._reap, daemon=True)
        self._reaper.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def _reap(self) -> None:
        _, status, usage = os.wait4(self._process.pid, 0)
        self._process.returncode = os.waitstatus_to_exitcode(status)
        self._exit = Exit(
            returncode=self._process.returncode,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not is_listening(self.port):
            if not self._reaper.is_alive():
                raise ReceiverFailedError(self._died_message("exited before listening"))
            if time.monotonic() > deadline:
                raise ReceiverFailedError(self._died_message(f"not listening after {timeout} s"))
            time.sleep(0.02)

    def wait_idle(self, quiet: float = 0.3, timeout: float = 10.0) -> TreeSample:
        """Wait until the tree has been idle (no CPU used) for ``quiet`` seconds; returns
        the last sample. Before a push, so that start-up work is not counted; after it, so
        that trailing work is."""
        deadline = time.monotonic() + timeout
        previous = sample_tree(self.pid)
        while time.monotonic() < deadline:
            time.sleep(quiet)
            current = sample_tree(self.pid)
            if current.cpu_seconds - previous.cpu_seconds <= IDLE_CPU_SECONDS:
                return current
            previous = current
        return previous

    def sample(self) -> TreeSample:
        return sample_tree(self.pid)

    def alive(self) -> bool:
        return self._reaper.is_alive()

    def stop(self, grace: float = 10.0) -> Exit:
        """SIGTERM to the receiver's process group, then SIGKILL to whatever is left of it
        after ``grace`` seconds (workers that ignore or outlive the root included)."""
        group = self._process.pid
        self._signal_group(group, signal.SIGTERM)
        self._reaper.join(grace)
        deadline = time.monotonic() + grace
        while sample_tree(group).processes and time.monotonic() < deadline:
            time.sleep(0.05)
        self._signal_group(group, signal.SIGKILL)
        self._reaper.join()
        assert self._exit is not None
        return self._exit

    @staticmethod
    def _signal_group(group: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(group, sig)

    def _died_message(self, what: str) -> str:
        tail = self.log.read_text(errors="replace").strip().splitlines()[-15:]
        lines = "\n    ".join(tail) if tail else "(no output)"
        return f"{self.receiver.name} {what}: {shlex.join(self.argv)}\n    {lines}"

    def __enter__(self) -> RunningReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
