"""Live-server fuzzing, CI-sized: three clients throw mutated DICOM conversations at a running
receiver for 20 seconds while a sender stores series through it; the receiver stays up, the
sender's series arrive intact and registered, and nothing leaks (descriptors, temporary
files, memory). Also with two worker processes behind one port, where every process counts
and none may die. The long run is ``python -m fuzz.swarm --seconds 1800 --clients 4``.
"""

from __future__ import annotations

import pytest

from fuzz.swarm import CeleryRegistrations, run_swarm
from tests.peers.celery_worker import CeleryWorker
from tests.peers.oxidicom_receiver import ReceiverFactory

pytestmark = [pytest.mark.interop, pytest.mark.slow]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_receiver_survives_a_fuzzing_swarm_and_loses_nothing(
    workers: str, receiver_factory: ReceiverFactory, celery_worker: CeleryWorker
) -> None:
    receiver = receiver_factory(
        queue=celery_worker.queue, OXIDICOM_LOG_LEVEL="warning", OXIDICOM_WORKERS=workers
    )
    registrations = CeleryRegistrations(celery_worker)
    report = run_swarm(receiver, registrations, clients=3, seconds=20, seed=42)
    assert report.problems == [], report.render()
    assert report.tally.inputs >= 200, report.render()  # it did fuzz
    assert report.series_sent >= 5, report.render()  # and the sender did send
