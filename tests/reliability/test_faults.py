"""Faults, nothing lost: a peer that dies in the middle of an instance, storage that fills up
or turns read-only, and SIGTERM with associations in flight.

What must hold each time: no file at a final path unless it is complete, no temporary file
left, the receiver goes on, and every instance completed before the fault is registered
(with the right ``ndicom``).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.peers.celery_worker import CeleryWorker, RegisteredTask
from tests.peers.oxidicom_receiver import Receiver, ReceiverFactory
from tests.reliability.support import (
    Instance,
    Scu,
    data_set_of,
    leftovers,
    make_series,
    open_fds,
    settled_fds,
    stored_files,
    wait_for,
    wait_until_refusing,
)

pytestmark = [pytest.mark.interop]

OUT_OF_RESOURCES = range(0xA700, 0xA800)


def _registration(celery_worker: CeleryWorker, series: Instance) -> RegisteredTask:
    [task] = celery_worker.wait_for_tasks_blocking(
        1, where=lambda t: t.kwargs["SeriesInstanceUID"] == series.series_instance_uid
    )
    return task


def _files_of(receiver: Receiver, task: RegisteredTask) -> list[Path]:
    return sorted((receiver.files_root / task.kwargs["path"]).iterdir())


# --- a peer that dies in the middle of an instance -----------------------------------------


@pytest.mark.parametrize("ending", ["tcp-reset", "a-abort"])
def test_peer_gone_in_the_middle_of_an_instance_leaves_nothing_of_it(
    ending: str, receiver_factory: ReceiverFactory, celery_worker: CeleryWorker
) -> None:
    receiver = receiver_factory(queue=celery_worker.queue)
    pid = receiver.process.pid
    scu = Scu(receiver.host, receiver.port)
    assert scu.echo() == 0
    baseline = settled_fds(pid) - 1  # our association's socket is about to go
    series = make_series(4, pixel_bytes=256 * 1024)
    for instance in series[:3]:
        assert scu.store_instance(instance).status == 0
    scu.send_partial(series[3], len(series[3].data_set) // 2)
    if ending == "tcp-reset":
        scu.reset()
    else:
        scu.abort()

    task = _registration(celery_worker, series[0])
    assert task.kwargs["ndicom"] == 3
    files = _files_of(receiver, task)
    assert [data_set_of(path) for path in files] == [i.data_set for i in series[:3]]
    assert all(
        data_set_of(path) != series[3].data_set for path in stored_files(receiver.files_root)
    )
    assert leftovers(receiver.files_root) == []
    # The unnamed file of the half instance is closed too (it would hold a descriptor).
    wait_for(lambda: open_fds(pid), lambda n: n <= baseline, timeout=30, what="fds")
    follow_up = Scu(receiver.host, receiver.port)
    assert follow_up.echo() == 0
    follow_up.release()


# --- a peer that does not wait for responses -----------------------------------------------


def test_c_stores_sent_without_waiting_are_all_stored_whole(
    receiver_factory: ReceiverFactory,
) -> None:
    """Several whole C-STOREs in one write: each data set goes to its own file, complete
    (they arrive in one read, so one instance ends where the next begins)."""
    receiver = receiver_factory()
    series = make_series(3, pixel_bytes=2048)
    scu = Scu(receiver.host, receiver.port)

    responses = scu.store_pipelined(series)
    scu.release()

    assert [response.status for response in responses] == [0, 0, 0]
    stored = sorted(data_set_of(path) for path in stored_files(receiver.files_root))
    assert stored == sorted(instance.data_set for instance in series)


# --- storage that fills up or turns read-only ----------------------------------------------


class Tmpfs:
    """A tmpfs mounted for one test: FILES_ROOT on a disk we can fill and resize."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        path.mkdir()
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))

    def remount(self, options: str) -> None:
        _mount("-o", f"remount,{options}", str(self.path))

    def unmount(self) -> None:
        subprocess.run(["umount", "--lazy", str(self.path)], check=False)


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"mount {' '.join(args)} failed (the tests run as root): {result.stderr}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], Tmpfs]]:
    """``small_disk("1m")`` mounts a tmpfs; every mount is undone after the test (after the
    receivers are stopped: request this fixture before ``receiver_factory``)."""
    mounts: list[Tmpfs] = []

    def mount(size: str) -> Tmpfs:
        disk = Tmpfs(tmp_path / f"disk-{len(mounts)}", size)
        mounts.append(disk)
        return disk

    yield mount
    for disk in mounts:
        disk.unmount()


@pytest.mark.parametrize("writer_threads", ["0", "2"])
def test_disk_full_fails_the_instance_not_the_association(
    writer_threads: str,
    small_disk: Callable[[str], Tmpfs],
    receiver_factory: ReceiverFactory,
    celery_worker: CeleryWorker,
    tmp_path: Path,
) -> None:
    disk = small_disk("1m")
    receiver = receiver_factory(
        queue=celery_worker.queue,
        files_root=disk.path,
        OXIDICOM_OUTBOX_DIR=str(tmp_path / "outbox"),  # registrations must not need the disk
        OXIDICOM_WRITER_THREADS=writer_threads,
    )
    series = make_series(16, pixel_bytes=150 * 1024)  # 2.4 MB for a 1 MB disk
    scu = Scu(receiver.host, receiver.port)
    statuses = []
    for instance in series[:10]:
        statuses.append(scu.store_instance(instance).status)
    stored = statuses.count(0)
    assert 0 < stored < 10, [hex(s) for s in statuses]
    assert statuses[:stored] == [0] * stored
    assert all(status in OUT_OF_RESOURCES for status in statuses[stored:]), statuses
    assert scu.echo() == 0  # the association goes on
    assert leftovers(disk.path) == []

    disk.remount("size=16m")  # space comes back
    for instance in series[10:]:
        assert scu.store_instance(instance).status == 0
    scu.release()

    task = _registration(celery_worker, series[0])
    assert task.kwargs["ndicom"] == stored + 6
    kept = [i.data_set for i in series[:stored] + series[10:]]
    assert [data_set_of(path) for path in _files_of(receiver, task)] == kept
    assert leftovers(disk.path) == []


def test_read_only_storage_fails_the_instance_and_recovers(
    small_disk: Callable[[str], Tmpfs],
    receiver_factory: ReceiverFactory,
    celery_worker: CeleryWorker,
    tmp_path: Path,
) -> None:
    disk = small_disk("16m")
    receiver = receiver_factory(
        queue=celery_worker.queue,
        files_root=disk.path,
        OXIDICOM_OUTBOX_DIR=str(tmp_path / "outbox"),
    )
    series = make_series(6, pixel_bytes=32 * 1024)
    # A first association stores two instances and ends: while one is storing a series,
    # the receiver holds that series' next file open, and a file system with a file open
    # for writing cannot be remounted read-only (mount says "busy").
    with Scu(receiver.host, receiver.port) as scu:
        for instance in series[:2]:
            assert scu.store_instance(instance).status == 0
        scu.release()
    _remount_when_free(disk, "ro")
    # The next association meets the read-only disk, goes on, and recovers with it.
    with Scu(receiver.host, receiver.port) as scu:
        for instance in series[2:4]:
            assert scu.store_instance(instance).status in OUT_OF_RESOURCES
        disk.remount("rw")
        for instance in series[4:]:
            assert scu.store_instance(instance).status == 0
        scu.release()

    tasks = celery_worker.wait_for_tasks_blocking(
        2, where=lambda t: t.kwargs["SeriesInstanceUID"] == series[0].series_instance_uid
    )
    assert [task.kwargs["ndicom"] for task in tasks] == [2, 2]
    kept = [i.data_set for i in series[:2] + series[4:]]
    assert [data_set_of(path) for path in _files_of(receiver, tasks[0])] == kept
    assert leftovers(disk.path) == []


def _remount_when_free(disk: Tmpfs, options: str) -> None:
    """Remount once the receiver has let go of the file system (its association ended)."""
    wait_for(
        lambda: _try_remount(disk, options),
        lambda done: done,
        timeout=10,
        what=f"remount {options}",
    )


def _try_remount(disk: Tmpfs, options: str) -> bool:
    try:
        disk.remount(options)
    except pytest.fail.Exception:
        return False
    return True


# --- SIGTERM with associations in flight ---------------------------------------------------


def test_sigterm_lets_associations_in_flight_finish(
    receiver_factory: ReceiverFactory, celery_worker: CeleryWorker
) -> None:
    receiver = receiver_factory(queue=celery_worker.queue, OXIDICOM_SHUTDOWN_GRACE="60s")
    series = make_series(5, pixel_bytes=64 * 1024)
    scu = Scu(receiver.host, receiver.port)
    for instance in series[:2]:
        assert scu.store_instance(instance).status == 0
    receiver.process.process.send_signal(signal.SIGTERM)
    # No new association once shutting down...
    wait_until_refusing(receiver.host, receiver.port)
    # ...but the one in flight goes on to its end.
    for instance in series[2:]:
        assert scu.store_instance(instance).status == 0
    scu.release()
    # It exits by itself once the association is over (a second SIGTERM would force it).
    assert _exit_code(receiver, timeout=60) == 0, receiver.log()
    # Notifications were flushed before the exit: the registration is on the broker.
    task = _registration(celery_worker, series[0])
    assert task.kwargs["ndicom"] == 5
    assert len(_files_of(receiver, task)) == 5


def test_sigterm_aborts_what_outlives_the_grace_period(
    receiver_factory: ReceiverFactory, celery_worker: CeleryWorker
) -> None:
    receiver = receiver_factory(queue=celery_worker.queue, OXIDICOM_SHUTDOWN_GRACE="2s")
    series = make_series(3, pixel_bytes=256 * 1024)
    scu = Scu(receiver.host, receiver.port)
    for instance in series[:2]:
        assert scu.store_instance(instance).status == 0
    scu.send_partial(series[2], len(series[2].data_set) // 3)  # ...and then nothing
    receiver.process.process.send_signal(signal.SIGTERM)
    assert _exit_code(receiver, timeout=60) == 0, receiver.log()
    assert scu.closed_by_peer(timeout=10)
    task = _registration(celery_worker, series[0])
    assert task.kwargs["ndicom"] == 2
    assert [data_set_of(p) for p in _files_of(receiver, task)] == [i.data_set for i in series[:2]]
    assert leftovers(receiver.files_root) == []


def _exit_code(receiver: Receiver, *, timeout: float) -> int:
    try:
        return receiver.process.process.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the receiver did not exit within {timeout:g} s:\n{receiver.log()}")
