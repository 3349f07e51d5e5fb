"""Accepting from a listening socket that several worker processes share, least busy first.

With SO_REUSEPORT each process has its own socket and the kernel picks one by a hash of the
connection's addresses, blind to load: two PACS pushing at once land on the same worker half
of the time, and with eight associations the busiest of two workers typically carries five
to six. Here the workers share one socket, and a :class:`LoadBoard` in memory they share
(mapped before the fork) holds how many connections each has. Every worker is woken for a
new connection; the one holding the fewest accepts it at once, the others only after
``FALLBACK_DELAY`` and only if it is still queued (the least busy one's event loop may be
stuck in a long step, or the process gone). One connection per try, then the board is
looked at again, so a burst is dealt out in turns rather than swallowed by whoever woke
first.

A socket shared this way also outlives its workers: a worker that dies leaves queued
connections to the others instead of taking them down with its own accept queue.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import mmap
import socket
from collections.abc import Callable

import attrs

log = logging.getLogger("oxidicom.net")

FALLBACK_DELAY = 0.005
"""How long a worker that is not the least busy leaves a new connection to the others."""
VACANT = 2**31 - 1
"""The load shown for a process that is not serving (dead, or not started yet)."""
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_RESOURCE_PAUSE = 1.0


class LoadBoard:
    """The connections each of ``processes`` processes holds, in a shared anonymous mapping.

    Make it before forking: parent and children then see the same memory. Each process
    writes only its own entry (4-byte aligned, so never torn); others may read a value a
    moment old, which costs at most a less even split, never a lost connection.
    """

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a load board needs at least one process")
        self._memory = mmap.mmap(-1, 4 * processes)
        self._loads = memoryview(self._memory).cast("i")
        for index in range(processes):
            self._loads[index] = VACANT

    @property
    def processes(self) -> int:
        return len(self._loads)

    def set(self, index: int, load: int) -> None:
        self._loads[index] = min(load, VACANT - 1)

    def vacate(self, index: int) -> None:
        """Process ``index`` no longer serves: the others stop leaving connections to it."""
        self._loads[index] = VACANT

    def least_other(self, index: int) -> int:
        """The smallest load among the processes other than ``index`` (VACANT: none)."""
        loads = self._loads
        return min((loads[i] for i in range(len(loads)) if i != index), default=VACANT)


@attrs.frozen
class SharedPort:
    """One process's place at a listening socket that ``board.processes`` processes share."""

    sock: socket.socket
    board: LoadBoard
    index: int


class SharedListener:
    """Calls ``on_connection`` with each connection this process takes from the shared port.

    ``load()`` is how many connections this process holds now; call :meth:`report` whenever
    it changes. The socket is closed by :meth:`close` (this process's descriptor of it: it
    listens on while another process holds one).
    """

    def __init__(
        self,
        port: SharedPort,
        on_connection: Callable[[socket.socket], None],
        load: Callable[[], int],
    ) -> None:
        self.sock = port.sock
        self._board = port.board
        self._index = port.index
        self._on_connection = on_connection
        self._load = load
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        self.sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self.report()
        self._watch()

    def report(self) -> None:
        """Publish this process's load on the board."""
        if not self._closed:
            self._board.set(self._index, self._load())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._board.vacate(self._index)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def _watch(self) -> None:
        assert self._loop is not None
        if not self._closed:
            self._loop.add_reader(self.sock.fileno(), self._acceptable)

    def _acceptable(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self.sock.fileno())
        if self._load() <= self._board.least_other(self._index):
            self._accept()
        else:
            self._timer = self._loop.call_later(FALLBACK_DELAY, self._accept)

    def _accept(self) -> None:
        assert self._loop is not None
        self._timer = None
        if self._closed:
            return
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            pass  # another worker was first, or the peer gave up while queued
        except OSError as error:
            if error.errno not in _RESOURCE_ERRORS:
                raise
            log.warning("cannot accept connections for now: %s", error)
            self._timer = self._loop.call_later(_RESOURCE_PAUSE, self._accept_later)
            return
        else:
            conn.setblocking(False)
            self._on_connection(conn)
        self._watch()

    def _accept_later(self) -> None:
        self._timer = None
        self._watch()
