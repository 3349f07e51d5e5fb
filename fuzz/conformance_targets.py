"""Run ``oxidicom fuzz`` against the four reference peers and keep the reports.

    python -m fuzz.conformance_targets                       # all four, the committed settings
    python -m fuzz.conformance_targets --only dcmtk,oxidicom --examples 5

Each peer is started on a free loopback port with its stock settings (DCMTK ``storescp``,
pynetdicom's ``storescp``, Orthanc with a temporary configuration, and our own receiver,
``python -m oxidicom``, with RabbitMQ on loopback: once as shipped and once with
``OXIDICOM_SCP_STRICT=true``), fuzzed with the very command line a user would type, and
stopped. ``fuzz/reports/<peer>.json`` gets the JSON report and
``fuzz/reports/<peer>.txt`` the summary printed on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.peers.orthanc import orthanc
from tests.peers.ports import ListenerProcess, free_port, retry_on_address_in_use, start_listener

REPORTS = Path(__file__).parent / "reports"
PEERS = ("dcmtk", "pynetdicom", "orthanc", "oxidicom", "oxidicom-strict")


@contextlib.contextmanager
def _listening(
    name: str,
    workdir: Path,
    argv: Callable[[int], list[str]],
    env: Callable[[int], dict[str, str]] | None = None,
    timeout: float = 10.0,
) -> Iterator[int]:
    """Run ``argv(port)`` on a free port until the block ends; yield the port."""

    def start() -> tuple[int, ListenerProcess]:
        port = free_port()
        listener = start_listener(
            name,
            argv(port),
            ports=[port],
            log_path=workdir / f"{name}.log",
            env=env(port) if env is not None else None,
            timeout=timeout,
        )
        return port, listener

    port, listener = retry_on_address_in_use(start)
    try:
        yield port
    finally:
        listener.stop()


def _dcmtk(workdir: Path) -> contextlib.AbstractContextManager[int]:
    return _listening(
        "storescp",
        workdir,
        lambda port: ["storescp", "-od", str(workdir), str(port)],
        env=lambda _: {**os.environ, "TCP_NODELAY": "1"},
    )


def _pynetdicom(workdir: Path) -> contextlib.AbstractContextManager[int]:
    return _listening(
        "pynetdicom",
        workdir,
        lambda port: [
            sys.executable,
            "-m",
            "pynetdicom",
            "storescp",
            str(port),
            "-od",
            str(workdir),
        ],
    )


@contextlib.contextmanager
def _orthanc(workdir: Path) -> Iterator[int]:
    with orthanc(workdir) as server:
        yield server.dicom_port


def _oxidicom(workdir: Path, **settings: str) -> contextlib.AbstractContextManager[int]:
    files = workdir / "files"
    files.mkdir()
    queue = f"oxidicom-conformance-{uuid.uuid4().hex[:12]}"
    return _listening(
        "oxidicom",
        workdir,
        lambda _: [sys.executable, "-m", "oxidicom"],
        env=lambda port: {
            **os.environ,
            "OXIDICOM_AMQP_ADDRESS": "amqp://guest:guest@127.0.0.1:5672",
            "OXIDICOM_FILES_ROOT": str(files),
            "OXIDICOM_LISTENER_ADDRESS": "127.0.0.1",
            "OXIDICOM_LISTENER_PORT": str(port),
            "OXIDICOM_QUEUE_NAME": queue,
            **settings,
        },
        timeout=30.0,
    )


STARTERS: dict[str, Callable[[Path], contextlib.AbstractContextManager[int]]] = {
    "dcmtk": _dcmtk,
    "pynetdicom": _pynetdicom,
    "orthanc": _orthanc,
    "oxidicom": _oxidicom,
    "oxidicom-strict": lambda workdir: _oxidicom(workdir, OXIDICOM_SCP_STRICT="true"),
}


def fuzz_command(port: int, name: str, args: argparse.Namespace) -> list[str]:
    return [
        "oxidicom",
        "fuzz",
        "127.0.0.1",
        str(port),
        "--seed",
        str(args.seed),
        "--examples",
        str(args.examples),
        "--timeout",
        str(args.timeout),
        "--artim",
        str(args.artim),
        "--shrink-seconds",
        str(args.shrink_seconds),
        "--fail-on",
        "never",
        "--report",
        os.path.relpath(REPORTS / f"{name}.json"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.conformance_targets")
    parser.add_argument("--only", default=",".join(PEERS), help="comma-separated peers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--artim", type=float, default=40.0)
    parser.add_argument("--shrink-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    REPORTS.mkdir(exist_ok=True)
    for name in args.only.split(","):
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"conformance-{name}-"))
            port = stack.enter_context(STARTERS[name](Path(tmp)))
            argv_fuzz = fuzz_command(port, name, args)
            print(f"$ {shlex.join(argv_fuzz)}", flush=True)
            done = subprocess.run(
                [sys.executable, "-m", "oxidicom", *argv_fuzz[1:]],
                capture_output=True,
                text=True,
                check=False,
            )
            (REPORTS / f"{name}.txt").write_text(done.stdout)
            print(done.stdout.split("\n\n")[0], flush=True)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
