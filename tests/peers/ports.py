"""Loopback ports for test peers, the processes that listen on them, and their logs.

Peers that run as separate programs (DCMTK's storescp, Orthanc, the receiver
under test) need a port chosen *before* they start, because they take it on the
command line or in a config file. :func:`free_port` asks the kernel for one by
binding port 0 and releasing it. Between that release and the peer's own bind
another process may take the same port. Three things keep that harmless:

* Linux picks port-0 ports at a random offset in the ephemeral range, so two
  test runs asking at the same moment almost never get the same port;
* :func:`start_listener` recognises a peer that died with "address already in
  use", and :func:`retry_on_address_in_use` starts it again on a new port;
* readiness is decided by finding the listening socket among the *peer
  process's own* file descriptors (``/proc``), never by connecting, so a test
  cannot mistake somebody else's server on a recycled port for its peer, and
  the peer never sees a probe connection it would log as a broken association.

Peers that run in this process (pynetdicom) bind port 0 themselves and have no
race at all.

This module is also a pytest plugin: its report hook appends the logs of the
peers a test used (registered with :func:`attach_log`) to the test's failure
report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import attrs
import pytest

LOOPBACK = "127.0.0.1"

# DCMTK says "Address already in use", Orthanc "privileged or already in use".
_ADDRESS_IN_USE_MARKER = "already in use"
_POLL_INTERVAL = 0.02
_LISTEN_STATE = "0A"  # TCP_LISTEN in /proc/net/tcp{,6}

T = TypeVar("T")

PEER_LOGS = pytest.StashKey[list[Callable[[], str]]]()
"""Per test item: how to render the logs of the peers it used (read by
:func:`pytest_runtest_makereport` when the test fails)."""


class PeerError(Exception):
    """A test peer is missing, failed to start, or died."""


class AddressInUse(PeerError):
    """The peer lost the race for the port it was given; retry on another."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on `host` that was free a moment ago (see module doc)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def listening_ports(pid: int) -> frozenset[int]:
    """TCP ports on which process `pid` holds a listening socket (Linux ``/proc``)."""
    inodes = _socket_inodes(pid)
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN_STATE and inode in inodes:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return frozenset(ports)


def _socket_inodes(pid: int) -> frozenset[str]:
    fd_dir = Path(f"/proc/{pid}/fd")
    inodes: set[str] = set()
    try:
        fds = list(fd_dir.iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return frozenset()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:  # the fd closed while we looked
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return frozenset(inodes)


def wait_until_listening(
    ports: Iterable[int],
    *,
    pid: int | None = None,
    host: str = LOOPBACK,
    timeout: float = 10.0,
    still_starting: Callable[[], None] = lambda: None,
) -> None:
    """Block until every port in `ports` accepts connections, or raise :class:`PeerError`.

    With `pid`, the listening sockets must belong to that process (no probe
    connection is made). Without it, fall back to connecting, which is the only
    option for a peer whose process we do not know. `still_starting` is called
    on every poll and raises to abort the wait early (e.g. the peer exited).
    """
    wanted = frozenset(ports)
    deadline = time.monotonic() + timeout
    while True:
        still_starting()
        if pid is not None:
            missing = wanted - listening_ports(pid)
        else:
            missing = frozenset(p for p in wanted if not _accepts(host, p))
        if not missing:
            return
        if time.monotonic() > deadline:
            owner = f"process {pid}" if pid is not None else host
            raise PeerError(
                f"{owner} is not listening on port(s) {sorted(missing)} after {timeout:g} s"
            )
        time.sleep(_POLL_INTERVAL)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@attrs.define
class ListenerProcess:
    """A peer program we started, its log file, and how to stop it."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        """Everything the peer wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def check_running(self) -> None:
        """Raise :class:`PeerError` (or :class:`AddressInUse`) if the peer has exited."""
        code = self.process.poll()
        if code is None:
            return
        log = self.log()
        error = AddressInUse if _ADDRESS_IN_USE_MARKER in log else PeerError
        raise error(f"{self.name} exited with code {code}\n{_tail(log)}")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the peer (SIGTERM, then SIGKILL) and raise if it had died on its own."""
        died_early = self.process.poll()
        if died_early is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise PeerError(
                    f"{self.name} ignored SIGTERM for {timeout:g} s\n{_tail(self.log())}"
                ) from None
            return
        if died_early != 0:
            raise PeerError(
                f"{self.name} died during the test with code {died_early}\n{_tail(self.log())}"
            )

    def describe_log(self) -> str:
        """The log, titled, for attaching to a failing test's report."""
        return f"--- {self.name} log ({self.log_path}) ---\n{self.log()}"


def start_listener(
    name: str,
    argv: Sequence[str],
    *,
    ports: Iterable[int],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 10.0,
) -> ListenerProcess:
    """Start `argv` and return once it listens on all `ports`.

    stdout and stderr go to `log_path` (a pipe nobody reads could fill up and
    stall the peer). Raises :class:`AddressInUse` if the peer lost its port,
    :class:`PeerError` if it exited or did not listen in time; the process is
    never left running on failure.
    """
    merged_env = {**os.environ, **(env or {})}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=merged_env,
            cwd=cwd,
        )
    listener = ListenerProcess(name=name, process=process, log_path=log_path)
    try:
        wait_until_listening(
            ports, pid=process.pid, timeout=timeout, still_starting=listener.check_running
        )
    except PeerError as exc:
        if process.poll() is None:
            process.kill()
            process.wait()
            exc.add_note(_tail(listener.log()))
        raise
    return listener


def retry_on_address_in_use(start: Callable[[], T], attempts: int = 5) -> T:
    """Call `start` (which picks fresh ports each time) until its peer wins a port."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except AddressInUse:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def attach_log(request: pytest.FixtureRequest, describe: Callable[[], str]) -> None:
    """Show ``describe()`` in the report of the requesting test if it fails.

    The text is rendered only then, so it includes everything the peer logged
    during the test.
    """
    request.node.stash.setdefault(PEER_LOGS, []).append(describe)


def _tail(log: str, lines: int = 60) -> str:
    kept = log.splitlines()[-lines:]
    return "\n".join(kept) if kept else "(no output)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Append the logs registered with :func:`attach_log` to a failed test's report."""
    report = yield
    if report.when == "call" and report.failed:
        for describe in item.stash.get(PEER_LOGS, []):
            report.sections.append(("peer log", describe()))
    return report
