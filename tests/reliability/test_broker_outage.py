"""Brokers gone: while RabbitMQ and NATS are unreachable (cut at a TCP proxy between them and
the receiver), receiving goes on; every registration made meanwhile waits in the outbox and
is delivered, exactly once, when RabbitMQ is back, even across a receiver restart. NATS
progress resumes too.

The issue asks for an outage of a minute. Here it lasts as long as the test needs to store,
restart and store again (seconds), plus ``OXIDICOM_TEST_OUTAGE_SECONDS`` (default 0):
``OXIDICOM_TEST_OUTAGE_SECONDS=60 pytest tests/reliability/test_broker_outage.py`` is the
long run.
"""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from oxidicom.cube import lonk
from tests.peers.amqp_nats_proxy import BrokerProxy
from tests.peers.celery_worker import CeleryWorker, RegisteredTask
from tests.peers.nats_lonk_subscriber import LonkRecorder
from tests.peers.oxidicom_receiver import NATS_ADDRESS, Receiver, start_receiver
from tests.reliability.support import Instance, make_series, store_all

pytestmark = [pytest.mark.interop, pytest.mark.slow]

EXTRA_OUTAGE = float(os.environ.get("OXIDICOM_TEST_OUTAGE_SECONDS", "0"))
AET = f"OUTAGE{uuid.uuid4().hex[:8].upper()}"  # the Celery worker is shared


async def _store(receiver: Receiver, series: list[Instance]) -> None:
    statuses = await asyncio.to_thread(
        store_all, receiver.host, receiver.port, series, calling_ae_title=AET
    )
    assert statuses == [0] * len(series)


def _subject(root: str, series: list[Instance]) -> str:
    return f"{root}.{AET}.{series[0].series_instance_uid.replace('.', '_')}"


def _of(series: list[Instance]) -> Callable[[RegisteredTask], bool]:
    uid = series[0].series_instance_uid
    return lambda task: task.kwargs["SeriesInstanceUID"] == uid


def _outbox_entries(outbox: Path) -> int:
    return sum(1 for _ in outbox.rglob("*.json"))


async def _wait(condition: object, what: str, timeout: float = 30.0) -> None:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} after {timeout:g} s")
        await asyncio.sleep(0.05)


async def test_registrations_wait_out_a_broker_outage_and_a_restart(
    tmp_path: Path, celery_worker: CeleryWorker
) -> None:
    amqp, nats = BrokerProxy(5672), BrokerProxy(4222)
    await amqp.start()
    await nats.start()
    root = f"outage{uuid.uuid4().hex[:12]}"
    files_root = tmp_path / "files"
    outbox = files_root / ".oxidicom" / "outbox"
    recorder = await LonkRecorder.subscribe(NATS_ADDRESS, f"{root}.>")
    receivers: list[Receiver] = []

    async def start() -> Receiver:
        receiver = await asyncio.to_thread(
            functools.partial(
                start_receiver,
                tmp_path,
                files_root=files_root,
                queue=celery_worker.queue,
                root_subject=root,
                OXIDICOM_AMQP_ADDRESS=f"amqp://guest:guest@127.0.0.1:{amqp.port}",
                OXIDICOM_NATS_ADDRESS=f"127.0.0.1:{nats.port}",
            )
        )
        receivers.append(receiver)
        return receiver

    def registered(series: list[Instance]) -> list[int]:
        uid = series[0].series_instance_uid
        return [
            task.kwargs["ndicom"]
            for task in celery_worker.tasks()
            if task.kwargs["SeriesInstanceUID"] == uid
        ]

    try:
        receiver = await start()
        before = make_series(2)
        await _store(receiver, before)
        await celery_worker.wait_for_tasks(1, where=_of(before))
        # Confirmed by the broker too (else the cut could catch it between the two).
        await _wait(lambda: _outbox_entries(outbox) == 0, "an empty outbox")

        await amqp.cut()
        await nats.cut()
        during = [make_series(3), make_series(2)]
        for series in during:
            await _store(receiver, series)  # receiving goes on
        await _wait(lambda: _outbox_entries(outbox) == 2, "2 registrations in the outbox")

        assert await asyncio.to_thread(receiver.stop) == 0, receiver.log()
        receiver = await start()  # the broker is still unreachable
        after_restart = make_series(4)
        await _store(receiver, after_restart)
        await _wait(lambda: _outbox_entries(outbox) == 3, "3 registrations in the outbox")
        if EXTRA_OUTAGE:
            await asyncio.sleep(EXTRA_OUTAGE)  # the outage itself, not a synchronisation
        assert all(registered(s) == [] for s in [*during, after_restart])

        await amqp.restore()
        await nats.restore()
        for series in [*during, after_restart]:
            await celery_worker.wait_for_tasks(1, where=_of(series), timeout=90)
        await _wait(lambda: _outbox_entries(outbox) == 0, "an empty outbox")
        assert [registered(s) for s in [before, *during, after_restart]] == [[2], [3], [2], [4]]

        # NATS is back for the receiver too: a new series gets its progress and done.
        last = make_series(2)
        await _store(receiver, last)
        subject = _subject(root, last)
        await recorder.wait_until(lambda r: r.done(subject), timeout=60)
        assert recorder.messages[subject][-2:] == [lonk.Progress(2), lonk.Done()]
    finally:
        for receiver in receivers:
            assert await asyncio.to_thread(receiver.stop) == 0, receiver.log()
        await recorder.aclose()
        await amqp.aclose()
        await nats.aclose()
