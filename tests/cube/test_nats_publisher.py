from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable

import pytest

from oxidicom.cube import lonk
from oxidicom.cube.nats_publisher import NatsPublisher, NullPublisher, lonk_publisher, nats_url
from tests.peers.amqp_nats_proxy import BrokerProxy
from tests.peers.nats_lonk_subscriber import LonkRecorder

NATS_PORT = 4222


@pytest.fixture
async def recorder(nats_address: str, unique: str) -> AsyncIterator[LonkRecorder]:
    recorder = await LonkRecorder.subscribe(nats_address, f"test.{unique}.>")
    yield recorder
    await recorder.aclose()


@pytest.fixture
async def proxy() -> AsyncIterator[BrokerProxy]:
    proxy = BrokerProxy(NATS_PORT)
    await proxy.start()
    yield proxy
    await proxy.aclose()


async def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def progress_messages(count: int) -> list[lonk.Message]:
    return [lonk.Progress(i) for i in range(count)]


async def test_messages_arrive_in_order_per_subject(
    nats_address: str, unique: str, recorder: LonkRecorder
) -> None:
    publisher = NatsPublisher(nats_address)
    publisher.start()
    done: list[str] = []
    subjects = [f"test.{unique}.s{i}" for i in range(3)]
    for count in range(100):
        for subject in subjects:
            publisher.publish(
                subject, lonk.progress(count), on_done=functools.partial(done.append, subject)
            )
    await recorder.wait_until(lambda r: all(len(r.messages[s]) == 100 for s in subjects))
    await publisher.aclose()
    for subject in subjects:
        assert recorder.messages[subject] == progress_messages(100)
    assert len(done) == 300
    assert (publisher.sent, publisher.dropped) == (300, 0)


async def test_close_sends_what_is_queued(
    nats_address: str, unique: str, recorder: LonkRecorder
) -> None:
    publisher = NatsPublisher(nats_address)
    publisher.start()
    await publisher.wait_connected()
    subject = f"test.{unique}.flush"
    for count in range(500):
        publisher.publish(subject, lonk.progress(count))
    publisher.publish(subject, lonk.DONE)
    await publisher.aclose(timeout=10)
    await recorder.wait_until(lambda r: r.done(subject))
    assert recorder.messages[subject] == [*progress_messages(500), lonk.Done()]


async def test_nats_down_at_start_delays_messages_until_it_is_up(
    unique: str, recorder: LonkRecorder, proxy: BrokerProxy
) -> None:
    await proxy.cut()
    publisher = NatsPublisher(f"127.0.0.1:{proxy.port}", reconnect_wait=1)
    publisher.start()
    subject = f"test.{unique}.late"
    for count in range(10):
        publisher.publish(subject, lonk.progress(count))  # returns at once: NATS is down
    assert not publisher.connected
    assert len(publisher) == 10
    await proxy.restore()
    await recorder.wait_until(lambda r: len(r.messages[subject]) == 10)
    assert recorder.messages[subject] == progress_messages(10)
    await publisher.aclose()


async def test_nats_going_away_and_coming_back(
    unique: str, recorder: LonkRecorder, proxy: BrokerProxy
) -> None:
    publisher = NatsPublisher(f"127.0.0.1:{proxy.port}", reconnect_wait=1)
    publisher.start()
    subject = f"test.{unique}.outage"
    publisher.publish(subject, lonk.progress(1))
    await recorder.wait_until(lambda r: len(r.messages[subject]) == 1)
    await proxy.cut()
    # Core NATS has no acknowledgements: what is written before the client notices the
    # outage is lost. What is published once it knows waits for the reconnection.
    await wait_for(lambda: not publisher.connected)
    publisher.publish(subject, lonk.progress(2))
    publisher.publish(subject, lonk.DONE)
    await proxy.restore()
    await recorder.wait_until(lambda r: r.done(subject))
    assert recorder.messages[subject] == [lonk.Progress(1), lonk.Progress(2), lonk.Done()]
    await publisher.aclose()


async def test_full_queue_drops_oldest_optional_messages_first(
    unique: str, recorder: LonkRecorder, proxy: BrokerProxy
) -> None:
    await proxy.cut()
    publisher = NatsPublisher(f"127.0.0.1:{proxy.port}", max_queued=4, reconnect_wait=1)
    publisher.start()
    subject = f"test.{unique}.full"
    left: list[bytes] = []

    def publish(payload: bytes, *, optional: bool) -> None:
        publisher.publish(subject, payload, optional=optional, on_done=lambda: left.append(payload))

    publish(lonk.progress(1), optional=True)
    publish(lonk.error("e1"), optional=False)
    publish(lonk.progress(2), optional=True)
    publish(lonk.error("e2"), optional=False)  # the queue is full now
    publish(lonk.error("e3"), optional=False)  # drops progress 1
    publish(lonk.progress(3), optional=True)  # drops progress 2
    publish(lonk.progress(4), optional=True)  # drops progress 3
    publish(lonk.error("e4"), optional=False)  # drops progress 4
    publish(lonk.progress(5), optional=True)  # nothing optional to drop: itself
    publish(lonk.error("e5"), optional=False)  # drops e1, the oldest
    dropped = [lonk.progress(i) for i in range(1, 6)] + [lonk.error("e1")]
    assert left == dropped
    assert publisher.dropped == 6
    await proxy.restore()
    await recorder.wait_until(lambda r: len(r.messages[subject]) == 4)
    assert recorder.messages[subject] == [lonk.Error(f"e{i}") for i in range(2, 6)]
    await publisher.aclose()


async def test_dev_sleep_is_announced_and_keeps_the_order(
    nats_address: str, unique: str, recorder: LonkRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = NatsPublisher(nats_address, dev_sleep=0.01)
    publisher.start()
    assert "OXIDICOM_DEV_SLEEP" in caplog.text
    subject = f"test.{unique}.slow"
    for count in range(5):
        publisher.publish(subject, lonk.progress(count))
    await recorder.wait_until(lambda r: len(r.messages[subject]) == 5)
    assert recorder.messages[subject] == progress_messages(5)
    await publisher.aclose()


async def test_close_without_nats_does_not_hang(proxy: BrokerProxy) -> None:
    await proxy.cut()
    publisher = NatsPublisher(f"127.0.0.1:{proxy.port}")
    publisher.start()
    left: list[str] = []
    publisher.publish("test.never", lonk.DONE, on_done=lambda: left.append("done"))
    await publisher.aclose(timeout=1)
    assert left == ["done"]  # given up, and reported so


async def test_close_survives_a_client_that_fails_to_close(
    nats_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nats-py's close raises RuntimeError under uvloop when the connection has just broken
    (it writes to a closed transport): shutdown must go on, NATS is best effort."""
    publisher = NatsPublisher(nats_address)
    publisher.start()
    await wait_for(lambda: publisher.connected)

    async def broken_close() -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

    monkeypatch.setattr(publisher._client, "close", broken_close)  # the fault under test
    await publisher.aclose(timeout=1)


async def test_no_address_means_no_messages() -> None:
    publisher = lonk_publisher(None)
    assert isinstance(publisher, NullPublisher)
    publisher.start()
    left: list[str] = []
    publisher.publish("a.b.c", lonk.DONE, on_done=lambda: left.append("done"))
    assert left == ["done"]
    await publisher.aclose()


def test_address_gets_a_scheme_if_it_has_none() -> None:
    assert nats_url("localhost:4222") == "nats://localhost:4222"
    assert nats_url("nats://localhost:4222") == "nats://localhost:4222"
    assert isinstance(lonk_publisher("localhost:4222"), NatsPublisher)
