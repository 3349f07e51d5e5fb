"""The receiver's application in process: what its storage observer hears, and when.

A stored instance is announced after its C-STORE-RSP has gone out (the peer does not wait
for our notifications), and the series' next file is created meanwhile. Neither may change
what the observer hears, nor in which order, nor leave a file descriptor behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import pytest

from oxidicom import receiver as receiver_module
from oxidicom.net import AssociationAbortedError
from oxidicom.net.server import DicomServer, ServerConfig
from oxidicom.receiver import CubeApplication, CubeAssociation, ThreadedInstanceSink
from oxidicom.settings import Settings
from oxidicom.storage.events import (
    AssociationEnded,
    AssociationInfo,
    InstanceRejected,
    InstanceStored,
)
from oxidicom.storage.instance import InstanceReceiver, Store
from tests.e2e.waiting import until
from tests.reliability.support import Instance, Scu, make_instance, make_series


class RecordingObserver:
    def __init__(self) -> None:
        self.heard: list[str] = []

    def association_started(self, info: AssociationInfo) -> None:
        self.heard.append("started")

    def instance_stored(self, event: InstanceStored) -> None:
        self.heard.append(f"stored {(event.tags.InstanceNumber or '').strip()}")

    def instance_rejected(self, event: InstanceRejected) -> None:
        self.heard.append("rejected")

    def association_ended(self, event: AssociationEnded) -> Awaitable[None] | None:
        self.heard.append("ended")
        return None


def _unnamed_files_open(under: Path) -> list[str]:
    """Files of ours under ``under`` that have no name (made ahead, or half written)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith(str(under)) and target.endswith("(deleted)"):
                found.append(target)
    return found


def _push(port: int, instances: list[Instance], pipelined: bool) -> list[int]:
    with Scu("127.0.0.1", port) as scu:
        if pipelined:
            return [response.status for response in scu.store_pipelined(instances)]
        return [scu.store_instance(instance).status for instance in instances]


@pytest.mark.parametrize("pipelined", [False, True], ids=["one-by-one", "pipelined"])
async def test_the_observer_hears_an_association_in_order(tmp_path: Path, pipelined: bool) -> None:
    # Pipelined, all four requests arrive in one read: the rejection is known before the
    # stored instances ahead of it have been announced, and must still come after them.
    series = make_series(4)
    series[2] = make_instance(series[2].series_instance_uid, 3, values={"StudyDate": None})
    settings = Settings.from_env(
        {"OXIDICOM_FILES_ROOT": str(tmp_path), "OXIDICOM_AMQP_ADDRESS": "amqp://unused"}
    )
    observer = RecordingObserver()
    store = Store(tmp_path)
    server = DicomServer(
        CubeApplication(settings, store, observer), ServerConfig(host="127.0.0.1", port=0)
    )
    await server.start()

    statuses = await asyncio.to_thread(_push, server.port, series, pipelined)
    await server.close(grace=5)

    assert [status == 0 for status in statuses] == [True, True, False, True]
    assert observer.heard == ["started", "stored 1", "stored 2", "rejected", "stored 4", "ended"]
    assert sorted(path.name[:4] for path in tmp_path.rglob("*.dcm")) == ["0001", "0002", "0004"]
    # The file made ahead for the series' next instance went with the association.
    assert _unnamed_files_open(tmp_path) == []
    store.close()


async def test_the_next_file_is_made_ahead_only_for_a_series_that_keeps_coming(
    tmp_path: Path,
) -> None:
    # One instance of series A, then three of B: a file made ahead for A's second instance
    # would be made for nothing. B gets one after its second instance, and after its third.
    lone = make_series(1)
    stream = make_series(3)
    settings = Settings.from_env(
        {"OXIDICOM_FILES_ROOT": str(tmp_path), "OXIDICOM_AMQP_ADDRESS": "amqp://unused"}
    )
    store = Store(tmp_path)
    prepared: list[str] = []
    real_prepare = store.prepare

    def recording_prepare(series_folder: str) -> None:
        prepared.append(series_folder.rsplit("-", 1)[-1])  # the folder ends with a hash
        real_prepare(series_folder)

    store.prepare = recording_prepare  # type: ignore[method-assign]
    server = DicomServer(
        CubeApplication(settings, store, RecordingObserver()),
        ServerConfig(host="127.0.0.1", port=0),
    )
    await server.start()

    statuses = await asyncio.to_thread(_push, server.port, [*lone, *stream], False)
    await server.close(grace=5)
    store.close()

    assert statuses == [0, 0, 0, 0]
    assert len(prepared) == 2
    assert len(set(prepared)) == 1
    assert _unnamed_files_open(tmp_path) == []


class GatedObserver(RecordingObserver):
    """Its ``association_ended`` settles only when the test says so (an outbox that is
    still writing the registrations)."""

    def __init__(self, gate: asyncio.Future[None]) -> None:
        super().__init__()
        self.gate = gate

    def association_ended(self, event: AssociationEnded) -> Awaitable[None] | None:
        super().association_ended(event)
        return self.gate


def _store_and_release(port: int, instances: list[Instance]) -> str:
    """Push, then release; how the release went."""
    with Scu("127.0.0.1", port) as scu:
        for instance in instances:
            scu.store_instance(instance)
        try:
            scu.release()
        except AssociationAbortedError:
            return "aborted"
        return "released"


async def _gated_server(tmp_path: Path, gate: asyncio.Future[None]) -> tuple[DicomServer, Store]:
    settings = Settings.from_env(
        {"OXIDICOM_FILES_ROOT": str(tmp_path), "OXIDICOM_AMQP_ADDRESS": "amqp://unused"}
    )
    store = Store(tmp_path)
    server = DicomServer(
        CubeApplication(settings, store, GatedObserver(gate)),
        ServerConfig(host="127.0.0.1", port=0),
    )
    await server.start()
    return server, store


async def test_the_release_is_answered_once_the_series_are_settled(tmp_path: Path) -> None:
    # The PACS counts its instances delivered when it has our A-RELEASE-RP: by then their
    # registrations must be on disk (the observer's awaitable), or a crash would lose them.
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    server, store = await _gated_server(tmp_path, gate)
    push = asyncio.ensure_future(asyncio.to_thread(_store_and_release, server.port, make_series(2)))
    await until(lambda: "ended" in server_observer(server).heard, "the association's end")
    done, _ = await asyncio.wait([push], timeout=0.5)
    assert not done, "A-RELEASE-RP sent before the registrations were settled"
    gate.set_result(None)
    assert await push == "released"
    await server.close(grace=5)
    store.close()
    assert server_observer(server).heard == ["started", "stored 1", "stored 2", "ended"]


async def test_a_release_whose_series_cannot_be_settled_is_aborted(tmp_path: Path) -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    gate.set_exception(OSError("outbox: no space left on device"))
    server, store = await _gated_server(tmp_path, gate)
    assert await asyncio.to_thread(_store_and_release, server.port, make_series(1)) == "aborted"
    await server.close(grace=5)
    store.close()


def server_observer(server: DicomServer) -> RecordingObserver:
    app = server.app
    assert isinstance(app, CubeApplication)
    observer = app.observer
    assert isinstance(observer, RecordingObserver)
    return observer


async def test_a_release_waits_for_a_stuck_outbox_only_so_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A full disk under the outbox: the PACS still gets its answer (its instances are
    # stored), and the log says the registrations are only in memory.
    monkeypatch.setattr(receiver_module, "_SETTLE_TIMEOUT", 0.2)
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    server, store = await _gated_server(tmp_path, gate)
    with caplog.at_level(logging.WARNING, logger="oxidicom.receiver"):
        assert await asyncio.to_thread(_store_and_release, server.port, make_series(1)) == (
            "released"
        )
    await server.close(grace=5)
    store.close()
    assert any("not on disk" in record.getMessage() for record in caplog.records)


class SlowReceiver:
    """An InstanceReceiver on a disk that takes its time; records the abort."""

    def __init__(self) -> None:
        self.aborted = asyncio.get_running_loop().create_future()

    def data(self, chunks: object) -> None:
        time.sleep(0.3)

    def abort(self) -> None:
        self.aborted.get_loop().call_soon_threadsafe(self._aborted)

    def _aborted(self) -> None:
        if not self.aborted.done():
            self.aborted.set_result(None)


async def test_a_sink_aborted_while_the_writer_pool_shuts_down_still_discards() -> None:
    # The receiver stops while a write runs in the pool: the abort waits for that write, and
    # by then the pool refuses new work; the instance must be discarded all the same.
    executor = ThreadPoolExecutor(1)
    receiver = SlowReceiver()
    sink = ThreadedInstanceSink(
        cast(CubeAssociation, None), cast(InstanceReceiver, receiver), executor
    )
    writing = sink.write([memoryview(b"data set bytes")])
    sink.abort()
    await asyncio.to_thread(executor.shutdown, wait=True)
    await writing
    await asyncio.wait_for(receiver.aborted, 5)
