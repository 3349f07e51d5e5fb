"""No registration is lost to a RabbitMQ outage, even if the receiver crashes meanwhile.

A TCP proxy we control stands between the receiver and the shared RabbitMQ. With the
proxy cut, a series arrives; its registration can only go to the durable outbox (on
FILES_ROOT). The receiver is then killed (SIGKILL: nothing flushed, no goodbye) and
started again with the same environment; once the proxy is back, the real Celery worker
must get that registration exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.e2e.cube_contract import expected_registration
from tests.e2e.dicom_files import write_series
from tests.e2e.waiting import until
from tests.peers.amqp_nats_proxy import BrokerProxy
from tests.peers.celery_worker import CeleryWorker, RegisteredTask
from tests.peers.dcmtk import storescu
from tests.peers.oxidicom_receiver import Receiver, start_receiver
from tests.peers.ports import attach_log

RABBITMQ_PORT = 5672
STUDY = {"PatientID": "OUTAGE1", "PatientName": "Broker^Down", "StudyDate": "20240301"}


async def test_registration_survives_broker_outage_and_crash(
    request: pytest.FixtureRequest, tmp_path: Path, celery_worker: CeleryWorker
) -> None:
    # The session's Celery worker is shared: AE titles of our own pick out our tasks.
    unique = uuid.uuid4().hex[:8].upper()
    outage_aet, sentinel_aet = f"OUTAGE{unique}", f"SENTINEL{unique}"
    proxy = BrokerProxy(RABBITMQ_PORT)
    await proxy.start()
    files_root = tmp_path / "files"
    receivers: list[Receiver] = []

    async def start(root_subject: str | None = None) -> Receiver:
        receiver = await asyncio.to_thread(
            start_receiver,
            tmp_path,
            files_root=files_root,
            queue=celery_worker.queue,
            root_subject=root_subject,
            OXIDICOM_AMQP_ADDRESS=f"amqp://guest:guest@127.0.0.1:{proxy.port}",
        )
        attach_log(request, receiver.process.describe_log)
        receivers.append(receiver)
        return receiver

    def registered(aet: str) -> list[RegisteredTask]:
        return [task for task in celery_worker.tasks() if task.kwargs["pacs_name"] == aet]

    try:
        first = await start()
        await until(lambda: proxy.connections >= 1, "the receiver to connect to RabbitMQ")
        await proxy.cut()
        series = write_series(tmp_path / "series", STUDY, 3)
        outbox = files_root / ".oxidicom" / "outbox"

        result = await asyncio.to_thread(
            storescu, first.host, first.port, series, calling_aet=outage_aet
        )

        result.check()
        await until(lambda: any(outbox.rglob("*.json")), "the registration in the outbox")
        first.kill()
        assert registered(outage_aet) == []
        second = await start(root_subject=first.root_subject)
        await proxy.restore()
        # The new receiver may have tried RabbitMQ before the proxy was back, and backs off
        # (up to 30 s between attempts) before it tries again.
        await celery_worker.wait_for_tasks(
            1, where=lambda t: t.kwargs["pacs_name"] == outage_aet, timeout=90
        )
        # A later series through the same path: once its registration is in, a duplicate
        # of the first (published before it) would be too.
        sentinel = write_series(tmp_path / "sentinel", STUDY, 1)
        await asyncio.to_thread(
            storescu, second.host, second.port, sentinel, calling_aet=sentinel_aet
        )
        await celery_worker.wait_for_tasks(1, where=lambda t: t.kwargs["pacs_name"] == sentinel_aet)

        [task] = registered(outage_aet)
        first_instance = dcmread(series[0], stop_before_pixels=True)
        assert task.kwargs == expected_registration(outage_aet, first_instance, ndicom=3)
        # Stopped from a thread: the proxy runs on this event loop and must go on relaying
        # the broker's confirms while the receiver shuts down.
        assert await asyncio.to_thread(second.stop) == 0
        left = sorted(str(path.relative_to(outbox)) for path in outbox.rglob("*.json"))
        assert not left, f"delivered registrations stay in the outbox: {left}\n{second.log()}"
    finally:
        for receiver in receivers:
            receiver.kill()
        await proxy.aclose()
