"""Port allocation and listener start-up, checked against real sockets and processes."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from tests.peers.ports import (
    AddressInUse,
    PeerError,
    free_port,
    listening_ports,
    retry_on_address_in_use,
    start_listener,
    wait_until_listening,
)


def test_free_port_can_be_listened_on() -> None:
    port = free_port()

    with socket.create_server(("127.0.0.1", port)) as server:
        assert server.getsockname()[1] == port


def test_listening_ports_sees_a_socket_while_it_listens() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        assert port in listening_ports(os.getpid())
        wait_until_listening([port], pid=os.getpid(), timeout=1)
    assert port not in listening_ports(os.getpid())


def test_wait_until_listening_gives_up_with_the_missing_port() -> None:
    port = free_port()

    with pytest.raises(PeerError, match=str(port)):
        wait_until_listening([port], pid=os.getpid(), timeout=0.1)


def test_wait_until_listening_can_probe_by_connecting() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        wait_until_listening([server.getsockname()[1]], timeout=1)


def _python_server(port: int) -> list[str]:
    code = f"import socket, time\ns = socket.create_server(('127.0.0.1', {port}))\ntime.sleep(60)\n"
    return [sys.executable, "-c", code]


def test_start_listener_returns_once_the_child_listens(tmp_path: Path) -> None:
    port = free_port()

    listener = start_listener(
        "child", _python_server(port), ports=[port], log_path=tmp_path / "log"
    )
    try:
        assert port in listening_ports(listener.pid)
    finally:
        listener.stop()
    assert listener.process.returncode is not None


def test_start_listener_recognises_a_lost_port_race(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]

        with pytest.raises(AddressInUse, match="child exited"):
            start_listener("child", _python_server(port), ports=[port], log_path=tmp_path / "log")


def test_retry_on_address_in_use_tries_fresh_ports(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        taken_port: int = taken.getsockname()[1]
        ports = iter([taken_port, free_port()])

        def start() -> int:
            port = next(ports)
            listener = start_listener(
                "child", _python_server(port), ports=[port], log_path=tmp_path / f"{port}.log"
            )
            listener.stop()
            return port

        assert retry_on_address_in_use(start) != taken_port


def test_stop_reports_a_peer_that_died_on_its_own(tmp_path: Path) -> None:
    port = free_port()
    listener = start_listener("child", _python_server(port), ports=[port], log_path=tmp_path / "l")
    listener.process.kill()
    listener.process.wait()

    with pytest.raises(PeerError, match="died during the test"):
        listener.stop()
