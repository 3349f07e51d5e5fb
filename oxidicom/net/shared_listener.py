"""Accepting from a listening socket that several worker processes share, least busy first.

With SO_REUSEPORT each process has its own socket and the kernel picks one by a hash of the
connection's addresses, blind to load: two PACS pushing at once land on the same worker half
of the time, and with eight associations the busiest of two workers typically carries five
to six. A single socket shared by the workers instead lets them race for each connection,
and this module biases the race: a worker first waits ``delay_per_connection`` for every
connection it already holds, then accepts one connection and looks again. The worker with
the fewest connections tries first and wins; the others find nothing to accept. A worker
whose event loop is busy cannot try at all, which is the bias wanted too.

Connections in quick succession: a worker's wait, once started, ends in one try to accept
whatever is queued then. A connection that arrives within that wait (a few ms after the one
that started it) can therefore go to the busier worker: the split of a burst is near even
(the benchmarks' busiest-worker share was 50-60% for 8 simultaneous associations), not
exact. The wait is capped (``MAX_DELAY``), so a lone worker never makes a connection wait
long.

A socket shared this way also outlives its workers: a worker that dies leaves queued
connections to the others instead of taking them down with its own accept queue.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("oxidicom.net")

DELAY_PER_CONNECTION = 0.002
"""Seconds a worker waits per connection it holds before it tries to accept: long enough
for an idle worker's event loop to get there first, short beside an association's set-up."""
MAX_DELAY = 0.05
"""The longest wait before a try, however many connections a worker holds."""
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_RESOURCE_PAUSE = 1.0


class SharedListener:
    """Calls ``on_connection`` with each connection this process wins from ``sock``.

    ``load()`` is how many connections this process holds now. The socket belongs to the
    caller, which closes it; :meth:`close` only stops accepting.
    """

    def __init__(
        self,
        sock: socket.socket,
        on_connection: Callable[[socket.socket], None],
        load: Callable[[], int],
        *,
        delay_per_connection: float = DELAY_PER_CONNECTION,
    ) -> None:
        self.sock = sock
        self._on_connection = on_connection
        self._load = load
        self._delay = delay_per_connection
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        self.sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._watch()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())

    def _watch(self) -> None:
        assert self._loop is not None
        if not self._closed:
            self._loop.add_reader(self.sock.fileno(), self._acceptable)

    def _acceptable(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self.sock.fileno())
        delay = min(self._load() * self._delay, MAX_DELAY)
        if delay > 0:
            self._timer = self._loop.call_later(delay, self._accept)
        else:
            self._accept()

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
