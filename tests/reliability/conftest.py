"""Fixtures of the reliability tests: a receiver shared by a module's tests, registering
into the session's Celery worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.celery_worker import CeleryWorker
from tests.peers.oxidicom_receiver import Receiver, start_receiver


@pytest.fixture(scope="module")
def shared_receiver(
    tmp_path_factory: pytest.TempPathFactory, celery_worker: CeleryWorker
) -> Iterator[Receiver]:
    """One receiver (default settings) for every test of a module; it must still exit 0 on
    SIGTERM at the end, whatever the tests threw at it."""
    receiver = start_receiver(tmp_path_factory.mktemp("receiver"), queue=celery_worker.queue)
    yield receiver
    code = receiver.stop()
    assert code == 0, f"receiver exited {code}:\n{receiver.log()}"
