"""Fixtures of the end-to-end tests: one receiver per module, unique AE titles per test.

Starting the receiver costs an interpreter start-up, so tests that do not change its
settings share one (``shared_receiver``), wired to the session's Celery worker. They stay
apart by the calling AE title (:func:`aet`), which is the ``{pacs}`` folder, the second
token of every NATS subject and the ``pacs_name`` of every registration.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.e2e.checks import Registrations
from tests.peers.celery_worker import CeleryWorker
from tests.peers.nats_lonk_subscriber import LonkRecorder
from tests.peers.oxidicom_receiver import (
    NATS_ADDRESS,
    Receiver,
    ReceiverFactory,
    start_receiver,
)
from tests.peers.ports import attach_log


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def shared_receiver(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    celery_worker: CeleryWorker,
) -> Iterator[Receiver]:
    """The receiver with default settings, registering series with the stub worker; each
    test that uses it runs once on either event loop (``OXIDICOM_EVENT_LOOP``)."""
    receiver = start_receiver(
        tmp_path_factory.mktemp("receiver"),
        queue=celery_worker.queue,
        OXIDICOM_EVENT_LOOP=request.param,
    )
    yield receiver
    code = receiver.stop()
    assert code == 0, f"receiver exited {code} on SIGTERM:\n{receiver.log()}"


@pytest.fixture
def rx(request: pytest.FixtureRequest, shared_receiver: Receiver) -> Receiver:
    """The module's receiver; a failing test shows what it logged during the test."""
    start = len(shared_receiver.log())
    attach_log(request, lambda: f"--- receiver log ---\n{shared_receiver.log()[start:]}")
    return shared_receiver


@pytest.fixture
def aet() -> str:
    """A calling AE title no other test uses (16 characters at most)."""
    return f"E2E{uuid.uuid4().hex[:12].upper()}"


@pytest.fixture
async def lonk_recorder(rx: Receiver, aet: str) -> AsyncIterator[LonkRecorder]:
    """LONK messages of every series this test's AE title sends to the module's receiver."""
    recorder = await LonkRecorder.subscribe(NATS_ADDRESS, f"{rx.root_subject}.{aet}.>")
    yield recorder
    await recorder.aclose()


@pytest.fixture
def wait_for_registrations(celery_worker: CeleryWorker) -> Registrations:
    """``wait(calling_aet, count)``: once the stub worker has run at least ``count`` series
    registrations for ``calling_aet``, the kwargs of all of them, in order (for tests
    without an event loop)."""

    def wait(calling_aet: str, count: int) -> list[dict[str, Any]]:
        tasks = celery_worker.wait_for_tasks_blocking(
            count, where=lambda task: task.kwargs["pacs_name"] == calling_aet
        )
        return [task.kwargs for task in tasks]

    return wait


@pytest.fixture
def own_receiver(receiver_factory: ReceiverFactory, celery_worker: CeleryWorker) -> ReceiverFactory:
    """``own_receiver(**settings)``: a receiver of this test's own, with other settings.

    Its registrations go to the session's stub worker, so no test leaves a queue full of
    unconsumed tasks on the shared RabbitMQ.
    """

    def start(**settings: str) -> Receiver:
        return receiver_factory(queue=celery_worker.queue, **settings)

    return start
