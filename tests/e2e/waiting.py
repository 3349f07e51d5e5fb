"""Waiting on conditions with a deadline, never on the clock alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

_POLL = 0.02


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout:g} s for {what}")
        time.sleep(_POLL)


async def until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """:func:`wait_for` for coroutines: the event loop runs while we wait."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout:g} s for {what}")
        await asyncio.sleep(_POLL)
