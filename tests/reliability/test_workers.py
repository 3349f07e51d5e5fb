"""``OXIDICOM_WORKERS=2``: two receiver processes behind one port, as an operator runs them.

Concurrent associations go to different workers, each registers its own series; a worker
that dies is replaced while the other goes on serving; SIGTERM stops both cleanly.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.peers.celery_worker import CeleryWorker
from tests.peers.oxidicom_receiver import Receiver, ReceiverFactory
from tests.reliability.support import (
    Scu,
    child_processes,
    make_series,
    wait_for,
    wait_until_refusing,
)

pytestmark = [pytest.mark.interop]


def workers_of(receiver: Receiver) -> list[int]:
    return child_processes(receiver.process.pid)


def serving_process(pids: list[int], scu: Scu) -> int:
    """The process holding the receiver's end of ``scu``'s connection."""
    client_port = scu.sock.getsockname()[1]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == client_port:
                inodes.add(fields[9])
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def test_concurrent_associations_go_to_different_workers(
    receiver_factory: ReceiverFactory, celery_worker: CeleryWorker
) -> None:
    receiver = receiver_factory(queue=celery_worker.queue, OXIDICOM_WORKERS="2")
    pids = wait_for(
        lambda: workers_of(receiver), lambda found: len(found) == 2, timeout=30, what="2 workers"
    )
    series = [make_series(3), make_series(4)]
    first, second = Scu(receiver.host, receiver.port), Scu(receiver.host, receiver.port)
    assert first.echo() == 0
    assert second.echo() == 0
    assert serving_process(pids, first) != serving_process(pids, second)
    for scu, instances in zip((first, second), series, strict=True):
        assert [scu.store_instance(i).status for i in instances] == [0] * len(instances)
        scu.release()
    ours = {s[0].series_instance_uid for s in series}
    tasks = celery_worker.wait_for_tasks_blocking(
        2, where=lambda t: t.kwargs["SeriesInstanceUID"] in ours
    )
    counts = {t.kwargs["SeriesInstanceUID"]: t.kwargs["ndicom"] for t in tasks}
    assert counts == {s[0].series_instance_uid: len(s) for s in series}
    assert receiver.stop() == 0, receiver.log()


def test_a_dead_worker_is_replaced_while_the_other_serves(
    receiver_factory: ReceiverFactory,
) -> None:
    receiver = receiver_factory(OXIDICOM_WORKERS="2")
    pids = wait_for(
        lambda: workers_of(receiver), lambda found: len(found) == 2, timeout=30, what="2 workers"
    )
    os.kill(pids[0], signal.SIGKILL)
    for _ in range(4):  # served at once, by the survivor
        scu = Scu(receiver.host, receiver.port)
        assert scu.echo() == 0
        scu.release()
    replaced = wait_for(
        lambda: workers_of(receiver),
        lambda found: len(found) == 2 and pids[0] not in found,
        timeout=30,
        what="a new worker",
    )
    assert pids[1] in replaced
    assert receiver.stop() == 0, receiver.log()


def test_sigterm_refuses_new_connections_and_lets_the_workers_finish(
    receiver_factory: ReceiverFactory,
) -> None:
    receiver = receiver_factory(OXIDICOM_WORKERS="2", OXIDICOM_SHUTDOWN_GRACE="60s")
    wait_for(
        lambda: workers_of(receiver), lambda found: len(found) == 2, timeout=30, what="2 workers"
    )
    series = make_series(2)
    scu = Scu(receiver.host, receiver.port)
    assert scu.store_instance(series[0]).status == 0
    receiver.process.process.send_signal(signal.SIGTERM)
    wait_until_refusing(receiver.host, receiver.port)
    assert scu.store_instance(series[1]).status == 0
    scu.release()
    assert receiver.process.process.wait(60) == 0, receiver.log()
