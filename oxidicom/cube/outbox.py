"""A durable outbox on local disk: registrations survive broker outages, crashes and restarts.

Series registrations are the only record CUBE gets of received data, so none may be lost
because RabbitMQ is down or oxidicom is killed. Each payload is written to its own file
(temporary name, ``rename``), then flushed to disk (``fsync`` of the file and of the
directory) before anyone may publish it, and its file is removed only after the broker has
confirmed it. :meth:`Outbox.flush` waits for either step: once written, an entry survives
a crash of the process (the next start, or another replica, delivers it); once flushed, it
also survives a crash of the machine. Delivery is at least
once: an entry is sent again after a crash between the broker's confirmation and the
removal, or when the confirmation is lost (the connection drops after the broker got the
message, or the confirmation times out).

Several replicas (processes, possibly on several hosts) may share one directory::

    {directory}/
        pending/            entries nobody owns
        claims/{owner}.lock lock file, flock'd by its live owner for its whole life
        claims/{owner}/     entries that owner is delivering (plus *.tmp being written)
        quarantine/         entries that could not be read back, kept for a human

An entry belongs to the owner whose folder holds it; ownership moves only by ``rename``,
which is atomic, so two processes can never both deliver the same file. A process writes
its new entries straight into its own folder and delivers them in creation order. When an
owner stops cleanly it moves its entries to ``pending/``; when it dies, its lock becomes
free and :meth:`Outbox.recover` (run by any live owner) moves the dead owner's entries to
``pending/``. Live owners claim pending entries, oldest first (names start with the
creation time in nanoseconds).

``flock`` works across hosts on NFS (Linux emulates it with POSIX locks there); within one
host it also tells apart two outboxes of the same process, which the tests rely on.

Disk work runs in worker threads: the event loop never waits for ``fsync``. With
``write_on_loop`` the entry's file is written (not flushed) in :meth:`Outbox.put` itself:
a page-cache write and a rename, cheaper than the hops to a thread and back, which a
release waiting for its registration would pay.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import fcntl
import logging
import os
import re
import socket
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Final

import attrs

from oxidicom.log_throttle import LogThrottle

log = logging.getLogger(__name__)

ENTRY_SUFFIX: Final = ".json"
LOCK_SUFFIX: Final = ".lock"
_TMP_SUFFIX: Final = ".tmp"
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]+")
_RETRY_MIN: Final = 0.5
_RETRY_MAX: Final = 30.0
_STALE_TMP_LOCK_AGE: Final = 60.0
"""Seconds after which a temporary lock file is another owner's to remove: its creator
renames it within milliseconds unless it died, and hosts sharing NFS may disagree on time."""
_OWNERSHIP_ATTEMPTS: Final = 5


@attrs.frozen(order=True)
class OutboxEntry:
    """One stored payload; entries sort in creation order."""

    name: str
    payload: bytes = attrs.field(order=False, repr=lambda p: f"<{len(p)} bytes>")


class OutboxClosedError(RuntimeError):
    pass


def default_owner_id() -> str:
    """Unique among all processes that will ever share a directory: host, pid, random."""
    host = _UNSAFE.sub("_", socket.gethostname()) or "host"
    return f"{host}.{os.getpid()}.{uuid.uuid4().hex[:12]}"


class Outbox:
    """Durable FIFO of payloads, shared safely with other processes over one directory.

    Lifecycle: :meth:`open`, then any number of :meth:`put` (synchronous, cheap),
    :meth:`first` / :meth:`remove` by the one consumer that delivers, and :meth:`aclose`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        owner: str | None = None,
        write_on_loop: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.write_on_loop = write_on_loop
        self.owner = default_owner_id() if owner is None else owner
        if not self.owner or _UNSAFE.search(self.owner) or self.owner.startswith("."):
            raise ValueError(f"outbox owner id must be a plain file name, got {self.owner!r}")
        self._pending = self.directory / "pending"
        self._claims = self.directory / "claims"
        self._mine = self._claims / self.owner
        self._quarantine = self.directory / "quarantine"
        self._lock_fd: int | None = None
        self._writing: deque[OutboxEntry] = deque()
        """Entries put, not yet in their files."""
        self._syncing: list[OutboxEntry] = []
        """Entries in their files, not yet flushed to disk."""
        self._put = 0
        """Entries put since start; with the next two, what :meth:`flush` waits for."""
        self._written = 0
        self._synced = 0
        self._ready: list[OutboxEntry] = []
        self._last_ns = 0
        self._changed = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._write_errors = LogThrottle(30.0)
        self._ownership = asyncio.Lock()
        """Serializes recovery and release: both move files in and out of our folder."""

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Take ownership of a claim folder, then collect what dead owners left behind."""
        if self._lock_fd is not None or self._closed:
            raise RuntimeError("an Outbox can be opened once")
        self._lock_fd = await asyncio.to_thread(self._take_ownership)
        self._writer = asyncio.create_task(self._write_loop(), name=f"outbox-writer-{self.owner}")
        await self.recover()

    async def aclose(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Finish writing (for at most ``timeout`` seconds), then hand undelivered entries
        back to ``pending/``, where a later process or another replica delivers them.
        """
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            flushing = asyncio.ensure_future(self.flush())
            done, _ = await asyncio.wait({flushing}, timeout=timeout)
            if not done:
                flushing.cancel()
                log.error(
                    "outbox: %d registration(s) could not be written to disk and may be lost",
                    len(self._writing) + len(self._syncing),
                )
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        async with self._ownership:
            if self._lock_fd is not None:
                fd, self._lock_fd = self._lock_fd, None
                await asyncio.to_thread(self._release_ownership, fd)
        self._ready.clear()
        self._changed.set()

    # -- producer side ---------------------------------------------------------------------

    def put(self, payload: bytes) -> OutboxEntry:
        """Queue ``payload``; it is written to disk in the background, before it is offered.

        Never waits for a flush to disk; with ``write_on_loop`` the entry is in its file
        when this returns, unless that failed (then the background writer retries). Entries
        are offered by :meth:`first` in the order they were put.
        """
        if self._closed:
            raise OutboxClosedError("outbox is closed")
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        entry = OutboxEntry(f"{self._last_ns:020d}-{uuid.uuid4().hex}{ENTRY_SUFFIX}", payload)
        self._put += 1
        self._changed.set()
        if self.write_on_loop and self._lock_fd is not None and not self._writing:
            try:
                self._write(entry)
            except OSError:
                pass  # the writer's retries say why, at most every 30 s
            else:
                self._syncing.append(entry)
                self._written += 1
                return entry
        self._writing.append(entry)
        return entry

    def flushed(self, *, synced: bool = True) -> bool:
        """Whether :meth:`flush` would return at once."""
        return self._through(synced=synced) >= self._put

    def _through(self, *, synced: bool) -> int:
        """Entries put since start that reached the stage: flushed, or only written."""
        return self._synced if synced else self._written

    async def flush(self, *, synced: bool = True) -> None:
        """Wait until every entry put so far is flushed to disk, or with ``synced=False``
        only written to its file (or until the writer has stopped).

        Entries put meanwhile are not waited for: under steady load the queue is never
        empty, and a release waiting for its own registrations must not wait for others'.
        """
        target = self._put
        while (
            self._through(synced=synced) < target
            and self._writer is not None
            and not self._writer.done()
        ):
            await self._wait_change()

    def __len__(self) -> int:
        """Entries this process holds: being written plus waiting for delivery."""
        return len(self._writing) + len(self._syncing) + len(self._ready)

    @property
    def ready(self) -> int:
        """Entries on disk, waiting for delivery (what :meth:`first` offers at once)."""
        return len(self._ready)

    # -- consumer side ---------------------------------------------------------------------

    async def first(self) -> OutboxEntry:
        """The oldest durable entry, waiting for one; the same until it is removed."""
        while not self._ready:
            if self._closed:
                raise OutboxClosedError("outbox is closed")
            await self._wait_change()
        return self._ready[0]

    async def remove(self, entry: OutboxEntry) -> None:
        """Forget a delivered entry, on disk (durably) and in memory."""
        await asyncio.to_thread(self._unlink, self._mine / entry.name)
        self._forget(entry)

    async def quarantine(self, entry: OutboxEntry) -> None:
        """Move an entry that cannot be delivered out of the way, keeping it for inspection."""
        await asyncio.to_thread(self._move_to_quarantine, entry.name)
        self._forget(entry)

    async def wait_empty(self) -> None:
        """Wait until everything this process holds has been delivered."""
        while len(self) and not self._closed:
            await self._wait_change()

    async def recover(self) -> int:
        """Return dead owners' entries to ``pending/`` and claim every pending entry.

        Returns the number of entries claimed. Safe to run concurrently in any number of
        processes: each entry is claimed by exactly one of them.
        """
        async with self._ownership:
            if self._lock_fd is None:
                return 0
            claimed = await asyncio.to_thread(self._recover_and_claim)
        for entry in claimed:
            bisect.insort(self._ready, entry)
        if claimed:
            log.info("outbox: took over %d undelivered registration(s)", len(claimed))
            self._changed.set()
        return len(claimed)

    # -- internals: event loop side -------------------------------------------------------

    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    def _forget(self, entry: OutboxEntry) -> None:
        with contextlib.suppress(ValueError):
            self._ready.remove(entry)
        self._changed.set()

    async def _write_loop(self) -> None:
        delay = _RETRY_MIN
        while True:
            if not self._writing and not self._syncing:
                await self._wait_change()
                continue
            try:
                if self._writing:
                    batch = list(self._writing)
                    await asyncio.to_thread(self._write_batch, batch)
                    for _ in batch:
                        self._writing.popleft()
                    self._syncing += batch
                    self._written += len(batch)
                    self._changed.set()
                batch = list(self._syncing)
                await asyncio.to_thread(self._sync_batch, batch)
            except Exception as e:  # disk full, permissions...: keep them in memory, retry
                if (held_back := self._write_errors.ready()) is not None:
                    log.warning(
                        "outbox: cannot write %d registration(s) to %s, retrying: %s "
                        "(%d similar messages suppressed)",
                        len(self._writing) + len(self._syncing),
                        self._mine,
                        e,
                        held_back,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            delay = _RETRY_MIN
            self._write_errors.reset()
            del self._syncing[: len(batch)]
            for entry in batch:
                bisect.insort(self._ready, entry)
            self._synced += len(batch)
            self._changed.set()

    # -- internals: worker threads --------------------------------------------------------

    def _take_ownership(self) -> int:
        for folder in (self._pending, self._claims, self._quarantine):
            folder.mkdir(parents=True, exist_ok=True)
        # The lock file appears under its final name already locked, and the claim folder
        # only after it: nobody can ever see our folder without our lock.
        fd = self._create_lock()
        try:
            self._mine.mkdir()
            _fsync_dir(self._claims)
            _fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _create_lock(self) -> int:
        """Our lock file, flock'd, under its final name.

        Another owner's recovery may remove the temporary file before we lock or rename it
        (it looked stale: a clock ahead, a stalled start); we then simply start again.
        """
        tmp = self._claims / f".{self.owner}{LOCK_SUFFIX}{_TMP_SUFFIX}"
        for _ in range(_OWNERSHIP_ATTEMPTS - 1):
            try:
                return self._lock_and_rename(tmp)
            except (FileNotFoundError, BlockingIOError):  # removed, or being removed
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return self._lock_and_rename(tmp)

    def _lock_and_rename(self, tmp: Path) -> int:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            os.rename(tmp, self._claims / f"{self.owner}{LOCK_SUFFIX}")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _release_ownership(self, fd: int) -> None:
        try:
            moved = self._return_to_pending(self._mine)
            if moved:
                log.info(
                    "outbox: handed %d undelivered registration(s) back to %s", moved, self._pending
                )
            with contextlib.suppress(FileNotFoundError):
                self._mine.rmdir()
            with contextlib.suppress(FileNotFoundError):
                (self._claims / f"{self.owner}{LOCK_SUFFIX}").unlink()
            _fsync_dir(self._claims)
        except OSError as e:
            # Our lock goes with the descriptor: another owner recovers the rest.
            log.warning("outbox: could not hand entries back to %s: %s", self._pending, e)
        finally:
            os.close(fd)

    def _write_batch(self, batch: list[OutboxEntry]) -> None:
        for entry in batch:
            if not (self._mine / entry.name).exists():  # written before an earlier failure
                self._write(entry)

    def _write(self, entry: OutboxEntry) -> None:
        tmp = self._mine / (entry.name + _TMP_SUFFIX)
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(entry.payload)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.rename(tmp, self._mine / entry.name)

    def _sync_batch(self, batch: list[OutboxEntry]) -> None:
        for entry in batch:
            try:
                fd = os.open(self._mine / entry.name, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:  # removed by hand since: it is still in memory
                self._write(entry)
                fd = os.open(self._mine / entry.name, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(self._mine)

    def _unlink(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _fsync_dir(path.parent)

    def _move_to_quarantine(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.rename(self._mine / name, self._quarantine / name)
        _fsync_dir(self._quarantine)
        _fsync_dir(self._mine)

    def _recover_and_claim(self) -> list[OutboxEntry]:
        for lock_path in sorted(self._claims.glob(f"*{LOCK_SUFFIX}")):
            owner = lock_path.name[: -len(LOCK_SUFFIX)]
            if owner != self.owner:
                self._recover_owner(lock_path, self._claims / owner)
        for stale in self._claims.glob(f".*{LOCK_SUFFIX}{_TMP_SUFFIX}"):
            self._remove_stale_lock(stale)
        for folder in self._claims.iterdir():
            lock_path = self._claims / f"{folder.name}{LOCK_SUFFIX}"
            if folder.is_dir() and folder != self._mine and not lock_path.exists():
                self._return_to_pending(folder)  # orphan (manual tampering): rename is safe
        return self._claim_pending()

    def _recover_owner(self, lock_path: Path, folder: Path) -> None:
        fd = _try_lock(lock_path)
        if fd is None:
            return  # alive, or being recovered by someone else right now
        try:
            moved = self._return_to_pending(folder)
            if moved:
                log.warning(
                    "outbox: owner %s is gone; %d registration(s) returned to %s",
                    folder.name,
                    moved,
                    self._pending,
                )
            with contextlib.suppress(FileNotFoundError):
                folder.rmdir()
            with contextlib.suppress(FileNotFoundError):
                lock_path.unlink()  # last: the folder never exists without its lock
            _fsync_dir(self._claims)
        finally:
            os.close(fd)

    def _remove_stale_lock(self, path: Path) -> None:
        """Remove a temporary lock file left by an owner that died while starting; a young
        one may belong to an owner between its create and its flock, so it stays."""
        fd = _try_lock(path)
        if fd is not None:
            try:
                if time.time() - os.fstat(fd).st_mtime >= _STALE_TMP_LOCK_AGE:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            finally:
                os.close(fd)

    def _return_to_pending(self, folder: Path) -> int:
        moved = 0
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return 0
        for name in names:
            source = folder / name
            if name.endswith(ENTRY_SUFFIX):
                try:
                    os.rename(source, self._pending / name)
                    moved += 1
                except FileNotFoundError:
                    continue
            elif name.endswith(_TMP_SUFFIX):  # never completed, hence never offered
                with contextlib.suppress(FileNotFoundError):
                    source.unlink()
        if moved:
            _fsync_dir(self._pending)
        _fsync_dir(folder)
        return moved

    def _claim_pending(self) -> list[OutboxEntry]:
        claimed: list[OutboxEntry] = []
        for name in sorted(os.listdir(self._pending)):
            if not name.endswith(ENTRY_SUFFIX):
                continue
            try:
                os.rename(self._pending / name, self._mine / name)
            except FileNotFoundError:
                continue  # another owner claimed it first
            claimed.append(OutboxEntry(name, (self._mine / name).read_bytes()))
        if claimed:
            _fsync_dir(self._mine)
            _fsync_dir(self._pending)
        return claimed


def _try_lock(path: Path) -> int | None:
    """An open, exclusively flock'd descriptor of ``path``, or ``None`` if held or gone."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
