"""An in-process oxidicom SCP (the asyncio DicomServer) to fuzz, well-behaved or with a
deliberate bug, and a helper to run the blocking fuzzer next to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from oxidicom.conformance import FuzzConfig, Report, Target, run
from oxidicom.dimse.messages import CEchoRQ, CStoreRQ
from oxidicom.net.handlers import (
    AssociationContext,
    AssociationEnd,
    Peer,
    StoreResult,
)
from oxidicom.net.server import DicomServer, ServerConfig
from oxidicom.ul.association import AcceptedContext
from oxidicom.ul.constants import RejectResult, RejectSource
from oxidicom.ul.negotiation import AcceptorPolicy, negotiate
from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ

POLICY = AcceptorPolicy(
    ae_title="OXIDICOM",
    transfer_syntaxes=("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"),
    abstract_syntaxes=("1.2.840.10008.1.1", "1.2.840.10008.5.1.4.1.1.7"),
    implementation_class_uid="1.2.826.0.1.3680043.10.1341.97",
)


class _Discard:
    def write(self, chunks: Sequence[memoryview]) -> None:
        return None

    def finish(self) -> StoreResult:
        return StoreResult()

    def abort(self) -> None:
        return None


class _Handler:
    def on_echo(self, request: CEchoRQ) -> int:
        return 0

    def on_store(self, request: CStoreRQ, context: AcceptedContext) -> _Discard:
        return _Discard()

    def on_end(self, end: AssociationEnd) -> None:
        return None


class App:
    """Verification and Secondary Capture; ``refuse`` says which requests to reject."""

    def __init__(self, refuse: Callable[[AAssociateRQ], bool] = lambda rq: False) -> None:
        self.refuse = refuse

    def connection_allowed(self, peer: Peer) -> bool:
        return True

    def negotiate(self, request: AAssociateRQ, peer: Peer) -> AAssociateAC | AAssociateRJ:
        if self.refuse(request):
            return AAssociateRJ(RejectResult.REJECTED_PERMANENT, RejectSource.SERVICE_USER, 1)
        return negotiate(request, POLICY)

    def open(self, association: AssociationContext) -> _Handler:
        return _Handler()


async def start_server(app: App, *, strict: bool = True) -> DicomServer:
    server = DicomServer(
        app,
        ServerConfig(host="127.0.0.1", port=0, artim_timeout=1.0, strict_max_length=strict),
    )
    await server.start()
    return server


@pytest.fixture
async def oxidicom_scp() -> AsyncIterator[DicomServer]:
    """Our server as shipped, strict about the Maximum Length Received."""
    server = await start_server(App())
    yield server
    await server.close(grace=2.0)


def quick(**overrides: object) -> FuzzConfig:
    """A small budget: a few inputs per probe, short waits."""
    settings: dict[str, object] = {
        "seed": 0,
        "examples": 4,
        "timeout": 1.0,
        "artim": 3.0,
        "shrink_seconds": 20.0,
        "confirm": 1,
    }
    settings.update(overrides)
    return FuzzConfig(**settings)  # type: ignore[arg-type]


async def fuzz(port: int, config: FuzzConfig) -> Report:
    """Run the (blocking) fuzzer in a thread while the event loop serves."""
    return await asyncio.to_thread(run, Target.resolve("127.0.0.1", port), config)


def finding_keys(report: Report) -> set[tuple[str, str]]:
    return {(f.verdict.check, f.verdict.code) for f in report.findings}
