from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aio_pika.abc
import aio_pika.exceptions
import pytest

from oxidicom.cube.amqp_publisher import AmqpPublisher, redacted
from oxidicom.cube.celery_message import (
    CeleryTaskMessage,
    SeriesRegistration,
    registration_message,
)
from oxidicom.cube.outbox import Outbox
from tests.peers.amqp_nats_proxy import BrokerProxy
from tests.peers.celery_worker import (
    CeleryWorker,
    RegisteredTask,
    delete_queue,
    start_celery_worker,
    unique_queue,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
AMQP_PORT = 5672


def registration(pacs: str, ndicom: int, **overrides: Any) -> SeriesRegistration:
    values: dict[str, Any] = {
        "PatientID": "1449c1d",
        "StudyDate": "2013-03-08",
        "StudyInstanceUID": "1.2.826.0.1.3680043.2.1143.1",
        "SeriesInstanceUID": f"1.2.826.0.1.3680043.2.1143.{ndicom}",
        "pacs_name": pacs,
        "path": f"SERVICES/PACS/{pacs}/p/s/{ndicom:05d}-series-abcdef0",
        "ndicom": ndicom,
        "PatientName": "Jane^Doe",
        "PatientAge": 10957,
        "Modality": "MR",
        "StudyDescription": "MR-Brain w/o Contrast",
        **overrides,
    }
    return SeriesRegistration(**values)


def from_pacs(pacs: str) -> Any:
    return lambda task: task.kwargs["pacs_name"] == pacs


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    box = Outbox(tmp_path / "outbox")
    await box.open()
    yield box
    await box.aclose()


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractConnection]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        yield connection


@pytest.fixture
async def channel(
    connection: aio_pika.abc.AbstractConnection,
) -> aio_pika.abc.AbstractChannel:
    return await connection.channel()


@pytest.fixture
async def plain_queue(channel: aio_pika.abc.AbstractChannel) -> AsyncIterator[str]:
    """A queue name nobody consumes; deleted afterwards."""
    name = unique_queue("oxidicom-plain")
    yield name
    await channel.queue_delete(name)


async def receive(
    connection: aio_pika.abc.AbstractConnection, queue: str, count: int, timeout: float = 20.0
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take ``count`` messages from ``queue`` (waiting for it to exist), and nothing else."""
    received: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with asyncio.timeout(timeout):
        while True:
            probe = await connection.channel()  # a fresh one per try: NOT_FOUND closes it
            try:
                q = await probe.declare_queue(queue, passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                await asyncio.sleep(0.05)
                continue
            while len(received) < count:
                message = await q.get(fail=False, no_ack=True)
                if message is None:
                    await asyncio.sleep(0.05)
                else:
                    received.append(message)
            assert await q.get(fail=False, no_ack=True) is None
            await probe.close()
            return received


async def test_registrations_reach_a_real_celery_worker_in_order(
    amqp_url: str, outbox: Outbox, celery_worker: CeleryWorker, unique: str
) -> None:
    publisher = AmqpPublisher(amqp_url, celery_worker.queue, outbox)
    publisher.start()
    registrations = [registration(unique, ndicom) for ndicom in range(1, 6)]
    messages = [registration_message(r) for r in registrations]
    for message in messages:
        outbox.put(message.to_json())
    tasks = await celery_worker.wait_for_tasks(5, where=from_pacs(unique))
    await outbox.wait_empty()
    await publisher.aclose()
    assert tasks == [
        RegisteredTask(message.task_id, r.kwargs())
        for message, r in zip(messages, registrations, strict=True)
    ]
    assert publisher.delivered == 5


async def test_amqp_message_properties_are_celerys(
    amqp_url: str,
    outbox: Outbox,
    connection: aio_pika.abc.AbstractConnection,
    plain_queue: str,
    unique: str,
) -> None:
    publisher = AmqpPublisher(amqp_url, plain_queue, outbox)
    publisher.start()
    message = registration_message(registration(unique, 7))
    outbox.put(message.to_json())
    [received] = await receive(connection, plain_queue, 1)
    await publisher.aclose()
    assert received.body == message.body
    assert received.headers == dict(message.headers)
    assert received.content_type == "application/json"
    assert received.content_encoding == "utf-8"
    assert received.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert received.priority == 0
    assert received.correlation_id == message.task_id
    assert received.routing_key == plain_queue
    assert received.exchange == ""


async def test_url_without_credentials_means_guest(
    outbox: Outbox, connection: aio_pika.abc.AbstractConnection, plain_queue: str, unique: str
) -> None:
    publisher = AmqpPublisher("amqp://127.0.0.1:5672", plain_queue, outbox)
    publisher.start()
    outbox.put(registration_message(registration(unique, 1)).to_json())
    await receive(connection, plain_queue, 1)
    await publisher.aclose()


async def test_returned_message_stays_in_the_outbox_and_is_retried(
    amqp_url: str,
    outbox: Outbox,
    connection: aio_pika.abc.AbstractConnection,
    channel: aio_pika.abc.AbstractChannel,
    plain_queue: str,
    unique: str,
) -> None:
    publisher = AmqpPublisher(amqp_url, plain_queue, outbox, retry_min=0.05)
    publisher.start()
    await publisher.wait_connected()  # it declared the queue...
    await channel.queue_delete(plain_queue)  # ...which someone deletes: nothing routes there
    message = registration_message(registration(unique, 2))
    outbox.put(message.to_json())
    [received] = await receive(connection, plain_queue, 1)
    assert received.body == message.body
    await outbox.wait_empty()
    await publisher.aclose()
    assert publisher.delivered == 1


async def test_existing_queue_with_other_settings_is_used_as_is(
    amqp_url: str,
    outbox: Outbox,
    connection: aio_pika.abc.AbstractConnection,
    channel: aio_pika.abc.AbstractChannel,
    plain_queue: str,
    unique: str,
) -> None:
    await channel.declare_queue(plain_queue, durable=True, arguments={"x-max-length": 1000})
    publisher = AmqpPublisher(amqp_url, plain_queue, outbox)
    publisher.start()
    outbox.put(registration_message(registration(unique, 3)).to_json())
    await receive(connection, plain_queue, 1)
    await publisher.aclose()


async def test_unreadable_entry_is_quarantined_and_delivery_goes_on(
    amqp_url: str,
    outbox: Outbox,
    connection: aio_pika.abc.AbstractConnection,
    plain_queue: str,
    unique: str,
) -> None:
    publisher = AmqpPublisher(amqp_url, plain_queue, outbox)
    publisher.start()
    garbage = outbox.put(b"not a task")
    message = registration_message(registration(unique, 4))
    outbox.put(message.to_json())
    [received] = await receive(connection, plain_queue, 1)
    await publisher.aclose()
    assert received.body == message.body
    assert (outbox.directory / "quarantine" / garbage.name).read_bytes() == b"not a task"


async def test_queue_declared_before_any_worker_suits_celery(
    amqp_url: str, outbox: Outbox, tmp_path: Path, unique: str
) -> None:
    """Our declaration comes first; the worker's later one must not conflict with it."""
    queue = unique_queue()
    publisher = AmqpPublisher(amqp_url, queue, outbox)
    publisher.start()
    message = registration_message(registration(unique, 5))
    outbox.put(message.to_json())
    await outbox.wait_empty()  # confirmed by the broker: queued durably, nobody consuming
    await publisher.aclose()
    worker = await asyncio.to_thread(start_celery_worker, queue, tmp_path / "worker")
    try:
        [task] = await worker.wait_for_tasks(1)
    finally:
        await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(delete_queue, queue)
    assert task.id == message.task_id


async def test_unreachable_broker_does_not_lose_registrations(
    outbox: Outbox,
    connection: aio_pika.abc.AbstractConnection,
    plain_queue: str,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = BrokerProxy(AMQP_PORT)
    await proxy.start()
    await proxy.cut()
    publisher = AmqpPublisher(
        proxy.url("amqp"), plain_queue, outbox, retry_max=0.2, warn_interval=0.0
    )
    publisher.start()
    messages = [registration_message(registration(unique, n)) for n in range(3)]
    for message in messages:
        outbox.put(message.to_json())
    await outbox.flush()
    async with asyncio.timeout(20):  # the operator is told what is waiting
        while "unreachable" not in caplog.text or "3 registration(s) waiting" not in caplog.text:
            await asyncio.sleep(0.05)
    assert not publisher.connected
    assert len(outbox) == 3
    await proxy.restore()
    received = await receive(connection, plain_queue, 3)
    await publisher.aclose()
    await proxy.aclose()
    assert [m.body for m in received] == [m.body for m in messages]


def test_password_is_not_logged() -> None:
    assert redacted("amqp://user:secret@host:5672/vhost") == "amqp://user:***@host:5672/vhost"
    assert redacted("amqp://host:5672") == "amqp://host:5672"


# -- a publisher process killed during a broker outage ---------------------------------------


class PublisherProcess:
    """``tests.peers.amqp_outbox_publisher`` in a subprocess, driven over stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, outbox_dir: Path, url: str, queue: str) -> tuple[PublisherProcess, int]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.peers.amqp_outbox_publisher",
            str(outbox_dir), url, queue,
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        publisher = cls(process)
        word, taken_over = (await publisher._line()).split()
        assert word == "open"
        return publisher, int(taken_over)

    async def register(self, registration: SeriesRegistration) -> str:
        """Queue a registration; its task id once it is durable."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(registration.kwargs()).encode() + b"\n")
        await self.process.stdin.drain()
        word, task_id = (await self._line()).split()
        assert word == "durable"
        return task_id

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL

    async def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(self.process.wait(), 30) == 0

    async def _line(self) -> str:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        assert line, "the publisher process exited"
        return line.decode()


@pytest.mark.slow
async def test_registrations_survive_broker_outage_and_sigkill(
    tmp_path: Path, celery_worker: CeleryWorker, unique: str
) -> None:
    proxy = BrokerProxy(AMQP_PORT)
    await proxy.start()
    outbox_dir = tmp_path / "outbox"
    url = proxy.url("amqp")
    first, taken_over = await PublisherProcess.start(outbox_dir, url, celery_worker.queue)
    assert taken_over == 0
    try:
        task_ids = [await first.register(registration(unique, 1))]
        await celery_worker.wait_for_tasks(1, where=from_pacs(unique))

        await proxy.cut()
        task_ids += [await first.register(registration(unique, n)) for n in (2, 3, 4)]
        await first.kill()
    finally:
        if first.process.returncode is None:
            await first.kill()

    second, taken_over = await PublisherProcess.start(outbox_dir, url, celery_worker.queue)
    try:
        assert taken_over == 3
        await proxy.restore()
        # A last registration after the others: once the worker has it, everything queued
        # before it has been delivered, so any duplicate would be visible by now.
        task_ids.append(await second.register(registration(unique, 5)))
        tasks = await celery_worker.wait_for_tasks(5, where=from_pacs(unique))
        await second.terminate()
    finally:
        if second.process.returncode is None:
            await second.kill()
        await proxy.aclose()
    assert [task.id for task in tasks] == task_ids
    assert [task.kwargs["ndicom"] for task in tasks] == [1, 2, 3, 4, 5]
    assert sorted(outbox_dir.rglob("*.json")) == []


def test_stored_message_is_what_gets_published() -> None:
    message = registration_message(registration("P", 1))
    assert CeleryTaskMessage.from_json(message.to_json()).body == message.body
