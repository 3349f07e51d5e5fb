"""An outbox whose flush to disk hangs until the test lets it go: a slow disk on demand,
which no real one offers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from oxidicom.cube.outbox import Outbox, OutboxEntry


class HangingFlush:
    def __init__(self, outbox: Outbox, monkeypatch: pytest.MonkeyPatch) -> None:
        self._entered = threading.Event()
        self._released = threading.Event()
        real_sync = outbox._sync_batch

        def hanging_sync(batch: list[OutboxEntry]) -> None:
            self._entered.set()
            self._released.wait(10)
            real_sync(batch)

        monkeypatch.setattr(outbox, "_sync_batch", hanging_sync)

    async def reached(self) -> None:
        """Until the outbox's worker thread is inside the hanging flush."""
        assert await asyncio.to_thread(self._entered.wait, 10), "the flush never started"

    def release(self) -> None:
        self._released.set()
