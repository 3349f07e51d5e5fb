"""The association slot pool: a bounded number of slots, a bounded FIFO of time-limited waits.

Waits that must end in a grant are given long timeouts and are granted by ``release``; only
the tests of the timeout itself wait for a (short, real) timeout to run out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from oxidicom.net.slots import SlotPool

T = TypeVar("T")

LONG = 30.0
"""A timeout no test waits for: these waits end by a grant or a cancel."""
SHORT = 0.05
"""A timeout the test does wait for."""


def completes_at_once(coroutine: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result, if it finishes without suspending (fails the test otherwise)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    pytest.fail("the coroutine suspended instead of answering at once")


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the loop run until ``condition()`` holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0)


def full_pool(size: int = 1, max_waiting: int = 8) -> SlotPool:
    pool = SlotPool(size, max_waiting)
    for _ in range(size):
        assert pool.try_acquire()
    return pool


async def queue_waiters(pool: SlotPool, names: list[str], granted: list[str]) -> list[Any]:
    """Start one waiting task per name, queued in that order; each notes its grant."""

    async def wait(name: str) -> bool:
        ok = await pool.acquire(LONG)
        if ok:
            granted.append(name)
        return ok

    tasks = []
    for name in names:
        queued = pool.waiting
        tasks.append(asyncio.create_task(wait(name)))
        await until(lambda: pool.waiting > queued)  # noqa: B023 - awaited right here
    return tasks


def test_a_pool_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        SlotPool(0, 1)


async def test_slots_are_taken_at_once_up_to_the_size() -> None:
    pool = SlotPool(3, max_waiting=0)

    assert [pool.try_acquire(), pool.try_acquire()] == [True, True]
    assert completes_at_once(pool.acquire(LONG)) is True
    assert (pool.in_use, pool.waiting) == (3, 0)
    assert pool.try_acquire() is False
    assert (pool.in_use, pool.waiting) == (3, 0)

    pool.release()
    assert pool.in_use == 2
    assert pool.try_acquire() is True
    assert pool.in_use == 3


async def test_released_slots_go_to_waiters_in_arrival_order() -> None:
    pool = full_pool(size=2)
    granted: list[str] = []
    tasks = await queue_waiters(pool, ["first", "second", "third"], granted)

    for count in (1, 2, 3):
        pool.release()
        await until(lambda: len(granted) == count)  # noqa: B023 - awaited right here
        # The slot passed on: it never looked free to anyone else.
        assert pool.in_use == 2
        assert pool.try_acquire() is False

    assert granted == ["first", "second", "third"]
    assert await asyncio.gather(*tasks) == [True, True, True]
    assert (pool.in_use, pool.waiting) == (2, 0)
    pool.release()
    pool.release()
    assert pool.in_use == 0


async def test_a_waiter_past_its_timeout_gets_false_and_holds_nothing() -> None:
    pool = full_pool(size=1)
    granted: list[str] = []
    [patient] = await queue_waiters(pool, ["patient"], granted)

    assert await pool.acquire(SHORT) is False  # queued behind "patient", runs out
    assert (pool.in_use, pool.waiting) == (1, 1)

    pool.release()  # goes past the timed-out waiter, to the one still waiting
    assert await patient is True
    assert granted == ["patient"]
    pool.release()
    assert (pool.in_use, pool.waiting) == (0, 0)


async def test_a_timed_out_waiter_frees_its_queue_place() -> None:
    pool = full_pool(size=1, max_waiting=1)

    assert await pool.acquire(SHORT) is False
    assert pool.waiting == 0

    granted: list[str] = []
    [later] = await queue_waiters(pool, ["later"], granted)
    pool.release()
    assert await later is True


async def test_a_full_queue_refuses_at_once() -> None:
    pool = full_pool(size=1, max_waiting=2)
    granted: list[str] = []
    tasks = await queue_waiters(pool, ["a", "b"], granted)

    assert completes_at_once(pool.acquire(LONG)) is False
    assert (pool.in_use, pool.waiting) == (1, 2)

    pool.release()  # one place frees up...
    await until(lambda: granted == ["a"])
    more = await queue_waiters(pool, ["c"], granted)  # ...and can be taken again
    assert pool.waiting == 2
    for task in (*tasks, *more):
        task.cancel()
    await asyncio.gather(*tasks, *more, return_exceptions=True)


async def test_no_queue_refuses_at_once() -> None:
    pool = full_pool(size=1, max_waiting=0)

    assert completes_at_once(pool.acquire(LONG)) is False
    assert (pool.in_use, pool.waiting) == (1, 0)


async def test_a_waiter_cancelled_while_waiting_leaks_neither_slot_nor_queue_place() -> None:
    pool = full_pool(size=1, max_waiting=1)
    granted: list[str] = []
    [cancelled] = await queue_waiters(pool, ["cancelled"], granted)

    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    assert (pool.in_use, pool.waiting) == (1, 0)
    [next_one] = await queue_waiters(pool, ["next"], granted)  # the queue place is free
    pool.release()
    assert await next_one is True
    assert granted == ["next"]
    pool.release()
    assert (pool.in_use, pool.waiting) == (0, 0)


async def test_a_slot_released_to_a_waiter_just_cancelled_goes_to_the_next() -> None:
    pool = full_pool(size=1)
    granted: list[str] = []
    cancelled, next_one = await queue_waiters(pool, ["cancelled", "next"], granted)

    cancelled.cancel()  # the waiter has not run since: its wait is still queued...
    pool.release()  # ...and is handed the slot

    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await next_one is True
    assert granted == ["next"]
    assert (pool.in_use, pool.waiting) == (1, 0)
    pool.release()
    assert pool.in_use == 0


async def test_a_waiter_cancelled_just_after_its_grant_passes_the_slot_on() -> None:
    pool = full_pool(size=1)
    granted: list[str] = []
    cancelled, next_one = await queue_waiters(pool, ["cancelled", "next"], granted)

    pool.release()  # the first waiter is handed the slot...
    cancelled.cancel()  # ...and cancelled before it runs

    try:
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert await asyncio.wait_for(next_one, 5) is True
        assert granted == ["next"]
        assert (pool.in_use, pool.waiting) == (1, 0)
    finally:
        next_one.cancel()
