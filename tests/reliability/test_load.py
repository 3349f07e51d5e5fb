"""Load: many associations at once. With ``OXIDICOM_LISTENER_THREADS`` at its default (8),
the extra associations wait for a slot and then succeed, every instance is stored and every
series registered with its exact count. Past the bounded wait (time or queue length) they
are refused cleanly: A-ASSOCIATE-RJ transient, service provider (presentation), local limit
exceeded (2, 3, 2), never left hanging.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from oxidicom.net import AssociationRejectedError
from oxidicom.net.requestor import RequestorConfig, associate, propose
from tests.peers.celery_worker import CeleryWorker
from tests.peers.oxidicom_receiver import Receiver, ReceiverFactory
from tests.reliability.support import (
    CT_IMAGE_STORAGE,
    IMPLICIT_VR_LE,
    Instance,
    Scu,
    data_set_of,
    make_series,
    stored_files,
)

pytestmark = [pytest.mark.interop]

LOCAL_LIMIT_EXCEEDED = (2, 3, 2)


async def _send(receiver: Receiver, series: list[Instance], config: RequestorConfig) -> list[int]:
    contexts = propose([(CT_IMAGE_STORAGE, [IMPLICIT_VR_LE])])
    async with await associate(receiver.host, receiver.port, contexts, config) as association:
        return [
            (
                await association.store_data_set(
                    instance.sop_class_uid,
                    instance.sop_instance_uid,
                    IMPLICIT_VR_LE,
                    instance.data_set,
                )
            ).status
            for instance in series
        ]


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
async def test_200_concurrent_associations_wait_their_turn_and_all_succeed(
    workers: str, receiver_factory: ReceiverFactory, celery_worker: CeleryWorker
) -> None:
    # The defaults: 8 associations at once (in each worker), and the rest wait up to 20 s
    # for a slot (the 200 take a few seconds in all here). With two workers the burst of
    # 200 connections is dealt out between them through the shared socket.
    receiver = await asyncio.to_thread(
        receiver_factory, queue=celery_worker.queue, OXIDICOM_WORKERS=workers
    )
    aet = f"LOAD{uuid.uuid4().hex[:8].upper()}"
    config = RequestorConfig(calling_ae_title=aet, acse_timeout=300, dimse_timeout=300)
    all_series = [make_series(3, pixel_bytes=2048) for _ in range(200)]

    results = await asyncio.gather(*(_send(receiver, series, config) for series in all_series))

    assert results == [[0, 0, 0]] * 200
    tasks = await celery_worker.wait_for_tasks(
        200, where=lambda t: t.kwargs["pacs_name"] == aet, timeout=180
    )
    assert len(tasks) == 200
    assert {t.kwargs["SeriesInstanceUID"] for t in tasks} == {
        s[0].series_instance_uid for s in all_series
    }
    assert all(t.kwargs["ndicom"] == 3 for t in tasks)
    assert len(stored_files(receiver.files_root)) == 600
    assert "waits for a free slot" in receiver.log()  # the 9th and later did wait


def test_past_the_bounded_wait_associations_are_rejected_not_left_hanging(
    receiver_factory: ReceiverFactory,
) -> None:
    receiver = receiver_factory(
        OXIDICOM_LISTENER_THREADS="2",
        OXIDICOM_SLOT_WAIT_TIMEOUT="1s",
        OXIDICOM_SLOT_WAIT_QUEUE="2",
    )
    holders = [Scu(receiver.host, receiver.port) for _ in range(2)]
    outcomes: list[tuple[int, int, int] | str] = []
    lock = threading.Lock()

    def try_to_associate() -> None:
        try:
            scu = Scu(receiver.host, receiver.port, timeout=60)
        except AssociationRejectedError as rejected:
            outcome: tuple[int, int, int] | str = rejected.triple
        except Exception as error:  # hanging or dropped: the test reports what it was
            outcome = repr(error)
        else:
            scu.release()
            outcome = "accepted"
        with lock:
            outcomes.append(outcome)

    # Two may queue (and are refused after a second), the other four are refused at once.
    threads = [threading.Thread(target=try_to_associate) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [LOCAL_LIMIT_EXCEEDED] * 6

    for holder in holders:
        assert holder.echo() == 0
        holder.release()
    scu = Scu(receiver.host, receiver.port)
    assert scu.echo() == 0
    scu.release()


def test_a_waiter_that_gives_up_does_not_keep_the_slot(receiver_factory: ReceiverFactory) -> None:
    receiver = receiver_factory(OXIDICOM_LISTENER_THREADS="1", OXIDICOM_SLOT_WAIT_TIMEOUT="5m")
    holder = Scu(receiver.host, receiver.port)
    gave_up: list[BaseException] = []

    def wait_then_give_up() -> None:
        try:
            Scu(receiver.host, receiver.port, timeout=1)
        except BaseException as error:
            gave_up.append(error)

    waiters = [threading.Thread(target=wait_then_give_up) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join()
    assert len(gave_up) == 3  # each timed out waiting and closed its connection
    holder.release()
    # The slot passes through the three dead waiters and comes back to a live one.
    scu = Scu(receiver.host, receiver.port, timeout=30)
    assert scu.echo() == 0
    scu.release()


async def test_writer_threads_store_every_instance_whole(
    receiver_factory: ReceiverFactory, celery_worker: CeleryWorker
) -> None:
    """With writes in a thread pool, the last write of an instance must be done before the
    instance is completed: 20 associations at once, each instance many PDUs long."""
    receiver = await asyncio.to_thread(
        receiver_factory, queue=celery_worker.queue, OXIDICOM_WRITER_THREADS="4"
    )
    aet = f"THREADS{uuid.uuid4().hex[:8].upper()}"
    config = RequestorConfig(calling_ae_title=aet, acse_timeout=120, dimse_timeout=120)
    all_series = [make_series(4, pixel_bytes=300 * 1024) for _ in range(20)]

    results = await asyncio.gather(*(_send(receiver, series, config) for series in all_series))

    assert results == [[0, 0, 0, 0]] * 20
    tasks = await celery_worker.wait_for_tasks(
        20, where=lambda t: t.kwargs["pacs_name"] == aet, timeout=120
    )
    assert all(t.kwargs["ndicom"] == 4 for t in tasks)
    stored = {data_set_of(path) for path in stored_files(receiver.files_root)}
    assert all(i.data_set in stored for series in all_series for i in series)
