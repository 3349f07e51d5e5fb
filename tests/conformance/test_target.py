"""The fuzzer talks to the address it is given and to nothing else."""

from __future__ import annotations

import socket

import pytest

from oxidicom.cli import main
from oxidicom.conformance import Target, UnsafeTargetError
from oxidicom.net.server import DicomServer
from tests.conformance.conftest import fuzz, quick


def test_non_loopback_addresses_are_refused() -> None:
    with pytest.raises(UnsafeTargetError, match="not a loopback address"):
        Target.resolve("192.0.2.1", 104)  # TEST-NET-1: resolving a literal sends nothing


def test_the_operator_may_allow_a_host_of_theirs() -> None:
    target = Target.resolve("192.0.2.1", 104, allow_remote=True)
    assert (target.address, target.port) == ("192.0.2.1", 104)


def test_names_resolve_to_one_address() -> None:
    target = Target.resolve("localhost", 11112)
    assert target.address in ("127.0.0.1", "::1")


def test_cli_refuses_a_non_loopback_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "192.0.2.1", "104"]) == 2
    assert "not a loopback address" in capsys.readouterr().err


async def test_every_connection_goes_to_the_target(
    oxidicom_scp: DicomServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    connected: list[object] = []
    real_connect = socket.socket.connect

    def spy(sock: socket.socket, address: object) -> None:
        connected.append(address)
        real_connect(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", spy)
    await fuzz(oxidicom_scp.port, quick(probes=("sta2-unrecognized", "segmentation")))

    assert connected
    assert set(connected) == {("127.0.0.1", oxidicom_scp.port)}
