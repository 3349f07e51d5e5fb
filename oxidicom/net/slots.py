"""A bounded pool of association slots with a bounded, time-limited wait.

The Rust receiver served at most ``OXIDICOM_LISTENER_THREADS`` SCUs at once and made the
others wait for a thread. We keep that behaviour but bound it: a connection waits at most
``timeout`` seconds, and at most ``max_waiting`` connections wait; the rest are refused at
once (the caller answers A-ASSOCIATE-RJ transient, local limit exceeded). Waiters are served
in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class SlotPool:
    def __init__(self, size: int, max_waiting: int) -> None:
        if size < 1:
            raise ValueError("a slot pool needs at least one slot")
        self.size = size
        self.max_waiting = max_waiting
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def try_acquire(self) -> bool:
        """Take a free slot now if there is one and nobody is queued before us."""
        if self.in_use < self.size and not self._waiters:
            self.in_use += 1
            return True
        return False

    async def acquire(self, timeout: float) -> bool:  # noqa: ASYNC109 - the bounded wait is the point
        """Wait up to ``timeout`` for a slot; ``False`` if none came or the queue is full."""
        if self.try_acquire():
            return True
        if len(self._waiters) >= self.max_waiting:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that
            # comes after the slot was handed over, and the cancelled task would keep it.
            async with asyncio.timeout(timeout):
                await asyncio.shield(waiter)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return True  # handed a slot just as the wait ran out: keep it
            waiter.cancel()
            self._remove(waiter)
            return False
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()
            else:
                waiter.cancel()
                self._remove(waiter)
            raise
        return True

    def release(self) -> None:
        """Give a slot back, to the first waiter if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: in_use unchanged
                return
        self.in_use -= 1

    def _remove(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
