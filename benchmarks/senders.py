"""The senders that push a data set, and the timing of one push.

A push is timed from just before the first sender process is started until the last one
has exited: storescu exits only after the receiver confirmed (C-STORE-RSP) every instance
and released the association, so the wall time covers start-up, reading the files,
negotiation, transfer and every confirmation.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Protocol

import attrs

from benchmarks.datasets import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_LE,
    JPEG_BASELINE,
    JPEG_LOSSLESS_SV1,
)
from benchmarks.receivers import CALLED_AE, REPO_ROOT, project_python

CALLING_AE = "BENCHSCU"

# storescu proposes these and all uncompressed syntaxes, so every file goes out in its own
# transfer syntax: no conversion on the sending side.
_STORESCU_PROPOSAL = {
    EXPLICIT_VR_LE: "-xe",
    DEFLATED_EXPLICIT_VR_LE: "-xd",
    JPEG_LOSSLESS_SV1: "-xs",
    JPEG_BASELINE: "-xy",
}


@attrs.frozen
class Push:
    host: str
    port: int
    directory: Path
    files: tuple[Path, ...]
    transfer_syntax: str
    max_pdu: int
    associations: int


class Sender(Protocol):
    @property
    def name(self) -> str: ...

    def commands(self, push: Push) -> list[list[str]]:
        """One argv per sender process, all started together."""
        ...


def _storescu(push: Push, inputs: list[str]) -> list[str]:
    return [
        "storescu",
        "-aet", CALLING_AE, "-aec", CALLED_AE,
        "-pdu", str(push.max_pdu),
        _STORESCU_PROPOSAL[push.transfer_syntax],
        push.host, str(push.port),
        *inputs,
    ]  # fmt: skip


@attrs.frozen
class StoreScu:
    """One DCMTK storescu, one association, scanning the set's folder."""

    name: str = "storescu"

    def commands(self, push: Push) -> list[list[str]]:
        return [_storescu(push, ["+sd", str(push.directory)])]


@attrs.frozen
class ParallelStoreScu:
    """``associations`` storescu processes, each with every N-th file: the multi-core push."""

    name: str = "parallel-storescu"

    def commands(self, push: Push) -> list[list[str]]:
        count = max(1, min(push.associations, len(push.files)))
        shares = [push.files[i::count] for i in range(count)]
        return [_storescu(push, [str(f) for f in share]) for share in shares]


DEFAULT_OXIDICOM_SCU = (
    "{python} -m oxidicom send {host} {port} {paths} --associations {associations}"
)


@attrs.frozen
class TemplateSender:
    """A sender given as a command template; ``{paths}`` stands for the set's folder."""

    name: str
    template: str

    def commands(self, push: Push) -> list[list[str]]:
        values = {
            "python": project_python(),
            "host": push.host,
            "port": str(push.port),
            "associations": str(push.associations),
            "max_pdu": str(push.max_pdu),
        }
        argv: list[str] = []
        for part in shlex.split(self.template):
            if part == "{paths}":
                argv.append(str(push.directory))
            else:
                argv.append(part.format_map(values))
        return [argv]


@attrs.frozen
class SenderExit:
    argv: tuple[str, ...]
    returncode: int
    seconds: float
    cpu_seconds: float
    log: str


@attrs.frozen
class PushResult:
    wall_seconds: float
    processes: tuple[SenderExit, ...]
    timed_out: bool

    @property
    def ok(self) -> bool:
        return not self.timed_out and all(p.returncode == 0 for p in self.processes)

    @property
    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self.processes)


def run_push(sender: Sender, push: Push, log_dir: Path, timeout: float) -> PushResult:
    """Run every sender process at once; return when all exited (or were killed)."""
    commands = sender.commands(push)
    env = {**os.environ, "TCP_NODELAY": "1"}
    exits: list[SenderExit | None] = [None] * len(commands)
    threads: list[threading.Thread] = []
    processes: list[subprocess.Popen[bytes]] = []

    started = time.perf_counter()
    for index, argv in enumerate(commands):
        log = log_dir / f"sender-{index}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        processes.append(process)

        def reap(index: int = index, process: subprocess.Popen[bytes] = process) -> None:
            _, status, usage = os.wait4(process.pid, 0)
            ended = time.perf_counter()
            process.returncode = os.waitstatus_to_exitcode(status)
            exits[index] = SenderExit(
                argv=tuple(commands[index]),
                returncode=process.returncode,
                seconds=ended - started,
                cpu_seconds=usage.ru_utime + usage.ru_stime,
                log=str(log_dir / f"sender-{index}.log"),
            )

        thread = threading.Thread(target=reap, daemon=True)
        thread.start()
        threads.append(thread)

    deadline = started + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.perf_counter()))
    timed_out = any(thread.is_alive() for thread in threads)
    if timed_out:
        for process, thread in zip(processes, threads, strict=True):
            if thread.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for thread in threads:
            thread.join()
    done = tuple(e for e in exits if e is not None)
    wall = max((e.seconds for e in done), default=time.perf_counter() - started)
    return PushResult(wall_seconds=wall, processes=done, timed_out=timed_out)
