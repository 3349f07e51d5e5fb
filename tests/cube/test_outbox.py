from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxidicom.cube.outbox import Outbox, OutboxClosedError, OutboxEntry
from tests.cube.hanging_flush import HangingFlush

REPO_ROOT = Path(__file__).resolve().parents[2]


async def opened(directory: Path) -> Outbox:
    outbox = Outbox(directory)
    await outbox.open()
    return outbox


async def drain(outbox: Outbox) -> list[bytes]:
    """Deliver everything the outbox holds, as a publisher would."""
    payloads = []
    while len(outbox):
        entry = await asyncio.wait_for(outbox.first(), 10)
        payloads.append(entry.payload)
        await outbox.remove(entry)
    return payloads


def entry_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.json"))


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    box = await opened(tmp_path / "outbox")
    yield box
    await box.aclose()


@pytest.fixture(params=["synced", "written"])
def killed_owner(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str]:
    """An outbox directory whose owner wrote 40 entries and then died of SIGKILL, once
    they were flushed to disk or once only in their files (what a release waits for
    without OXIDICOM_FSYNC)."""
    directory = tmp_path / "shared"
    stage = request.param
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.cube.outbox_child", str(directory), "40", stage],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        owner = child.stdout.readline().strip()
        assert child.stdout.readline() == f"{stage}\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return directory, owner


async def test_entries_come_out_in_the_order_they_were_put(outbox: Outbox) -> None:
    payloads = [f"registration {i}".encode() for i in range(50)]
    for payload in payloads:
        outbox.put(payload)
    assert len(outbox) == 50
    assert await drain(outbox) == payloads
    assert entry_files(outbox.directory) == []


async def test_an_entry_is_on_disk_before_it_is_offered(outbox: Outbox) -> None:
    put = outbox.put(b"payload")
    offered = await outbox.first()
    assert offered == put
    [file] = entry_files(outbox.directory)
    assert (file.name, file.read_bytes()) == (put.name, b"payload")


async def test_an_entry_is_in_its_file_before_its_flush_and_offered_after_it(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The entry is in its file, which a restart would find, but not offered before the
    # flush to disk.
    hang = HangingFlush(outbox, monkeypatch)
    put = outbox.put(b"payload")
    await asyncio.wait_for(outbox.flush(synced=False), 5)
    [file] = entry_files(outbox.directory)
    assert (file.name, file.read_bytes()) == (put.name, b"payload")
    await hang.reached()
    assert not outbox.flushed()
    assert (outbox.ready, len(outbox)) == (0, 1)
    offered = asyncio.create_task(outbox.first())

    hang.release()
    await asyncio.wait_for(outbox.flush(), 5)
    assert await asyncio.wait_for(offered, 5) == put
    assert outbox.ready == 1


async def test_written_on_the_loop_an_entry_is_in_its_file_when_put_returns(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path, write_on_loop=True)
    await outbox.open()
    try:
        put = outbox.put(b"payload")
        [file] = entry_files(tmp_path)  # no await since the put
        assert (file.name, file.read_bytes()) == (put.name, b"payload")
        assert outbox.flushed(synced=False)
        await asyncio.wait_for(outbox.flush(), 5)
        assert outbox.flushed()
        assert await outbox.first() == put
    finally:
        await outbox.aclose()


async def test_an_entry_the_loop_could_not_write_is_written_by_the_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = Outbox(tmp_path, write_on_loop=True)
    await outbox.open()
    real_write = outbox._write
    failures = iter([OSError(28, "No space left on device")])  # then the disk has room

    def full_once(entry: OutboxEntry) -> None:
        if (error := next(failures, None)) is not None:
            raise error
        real_write(entry)

    monkeypatch.setattr(outbox, "_write", full_once)
    try:
        first = outbox.put(b"first")
        second = outbox.put(b"second")  # after one that waits: in order, by the writer
        assert entry_files(tmp_path) == []
        assert not outbox.flushed(synced=False)
        await asyncio.wait_for(outbox.flush(), 10)
        assert await drain(outbox) == [b"first", b"second"]
        assert first.name < second.name
    finally:
        await outbox.aclose()


async def test_flush_waits_for_what_was_put_before_it_only(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under steady load the queue is never empty: a flush that waited for that would wait
    # as long as the load lasts (a release, for its 10 s limit, every time).
    real_write = outbox._write_batch

    def slow_write(batch: list[OutboxEntry]) -> None:
        time.sleep(0.005)  # a disk whose fsync takes 5 ms
        real_write(batch)

    monkeypatch.setattr(outbox, "_write_batch", slow_write)

    async def steady_load() -> None:
        while True:
            outbox.put(b"another association's registration")
            await asyncio.sleep(0.002)

    load = asyncio.create_task(steady_load())
    try:
        await asyncio.sleep(0.05)
        mine = outbox.put(b"mine")
        await asyncio.wait_for(outbox.flush(), 2)
        assert (outbox.directory / "claims" / outbox.owner / mine.name).exists()
    finally:
        load.cancel()


async def test_first_is_the_same_entry_until_removed(outbox: Outbox) -> None:
    outbox.put(b"one")
    outbox.put(b"two")
    first = await outbox.first()
    assert await outbox.first() == first
    await outbox.remove(first)
    assert (await outbox.first()).payload == b"two"


async def test_first_waits_for_a_put(outbox: Outbox) -> None:
    waiting = asyncio.create_task(outbox.first())
    await asyncio.sleep(0)
    assert not waiting.done()
    outbox.put(b"late")
    assert (await asyncio.wait_for(waiting, 10)).payload == b"late"


async def test_closing_hands_undelivered_entries_to_the_next_owner(tmp_path: Path) -> None:
    first = await opened(tmp_path)
    for i in range(5):
        first.put(b"%d" % i)
    await first.remove(await first.first())
    await first.aclose()
    assert len(entry_files(tmp_path)) == 4

    second = await opened(tmp_path)
    try:
        assert await drain(second) == [b"1", b"2", b"3", b"4"]
    finally:
        await second.aclose()
    assert entry_files(tmp_path) == []


async def test_a_live_owner_keeps_its_entries(tmp_path: Path) -> None:
    alive = await opened(tmp_path)
    other = await opened(tmp_path)
    try:
        alive.put(b"mine")
        await alive.flush()
        assert await other.recover() == 0
        assert len(other) == 0
        assert (await alive.first()).payload == b"mine"
    finally:
        await other.aclose()
        await alive.aclose()


async def test_entries_of_a_killed_owner_are_recovered_in_order(
    killed_owner: tuple[Path, str],
) -> None:
    directory, dead = killed_owner
    # A write the dead owner never finished: it was never offered, so it must not appear.
    (directory / "claims" / dead / "00000000000000000000-unfinished.json.tmp").write_bytes(b"x")
    survivor = await opened(directory)
    try:
        assert await drain(survivor) == [f"entry-{i}".encode() for i in range(40)]
    finally:
        await survivor.aclose()
    assert list((directory / "claims").iterdir()) == []
    assert entry_files(directory) == []


async def test_two_survivors_share_a_dead_owners_entries_without_duplicates(
    killed_owner: tuple[Path, str],
) -> None:
    directory, _ = killed_owner
    survivors = [Outbox(directory), Outbox(directory)]
    await asyncio.gather(*(survivor.open() for survivor in survivors))
    try:
        delivered = [await drain(survivor) for survivor in survivors]
    finally:
        await asyncio.gather(*(survivor.aclose() for survivor in survivors))
    assert sorted(delivered[0] + delivered[1]) == sorted(f"entry-{i}".encode() for i in range(40))
    for payloads in delivered:  # each survivor keeps creation order
        assert payloads == sorted(payloads, key=lambda p: int(p.split(b"-")[1]))


async def test_recovery_leaves_a_starting_owners_lock_file_alone(outbox: Outbox) -> None:
    """A replica between creating its temporary lock file and locking it is starting, not
    dead; one that died there long ago leaves a file that recovery removes."""
    starting = outbox.directory / "claims" / ".other-host.1.abc.lock.tmp"
    starting.write_bytes(b"")
    await outbox.recover()
    assert starting.exists()

    os.utime(starting, (0, 0))
    await outbox.recover()
    assert not starting.exists()


async def test_an_owner_starts_although_recovery_removes_its_lock_file(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live replica recovers right between the new owner's create and flock, and the lock
    file looks stale to it (clocks differ across hosts): the new owner starts all the same."""
    loop = asyncio.get_running_loop()
    real_flock = fcntl.flock
    recovered = False

    def flock_after_recovery(fd: int, operation: int) -> None:
        nonlocal recovered
        if not recovered:
            recovered = True
            [tmp] = (outbox.directory / "claims").glob(".*.lock.tmp")
            os.utime(tmp, (0, 0))
            asyncio.run_coroutine_threadsafe(outbox.recover(), loop).result(10)
            assert not tmp.exists()
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_recovery)
    starting = Outbox(outbox.directory)
    await starting.open()
    try:
        assert recovered
        starting.put(b"served")
        assert await drain(starting) == [b"served"]
        assert await outbox.recover() == 0  # its lock is held: it is alive
        assert (outbox.directory / "claims" / starting.owner).is_dir()
    finally:
        await starting.aclose()


async def test_quarantine_keeps_the_entry_out_of_the_way(outbox: Outbox) -> None:
    bad = outbox.put(b"unreadable")
    outbox.put(b"fine")
    assert await outbox.first() == bad
    await outbox.quarantine(bad)
    assert (await outbox.first()).payload == b"fine"
    assert (outbox.directory / "quarantine" / bad.name).read_bytes() == b"unreadable"


async def test_put_after_close_is_refused(tmp_path: Path) -> None:
    box = await opened(tmp_path)
    await box.aclose()
    with pytest.raises(OutboxClosedError):
        box.put(b"too late")
    with pytest.raises(OutboxClosedError):
        await box.first()


async def test_a_waiting_consumer_is_released_by_close(tmp_path: Path) -> None:
    box = await opened(tmp_path)
    waiting = asyncio.create_task(box.first())
    await asyncio.sleep(0)
    await box.aclose()
    with pytest.raises(OutboxClosedError):
        await asyncio.wait_for(waiting, 10)


@pytest.mark.parametrize("owner", ["", "a/b", ".hidden", "x y"])
def test_owner_id_must_be_a_plain_file_name(tmp_path: Path, owner: str) -> None:
    with pytest.raises(ValueError, match="owner"):
        Outbox(tmp_path, owner=owner)


def test_owner_ids_are_unique(tmp_path: Path) -> None:
    assert Outbox(tmp_path).owner != Outbox(tmp_path).owner
    assert str(os.getpid()) in Outbox(tmp_path).owner


def test_entries_sort_by_name_only() -> None:
    assert OutboxEntry("1", b"z") < OutboxEntry("2", b"a")
