"""The rate rules of contract §4, checked on arbitrary interleavings of events and time."""

from __future__ import annotations

from typing import Literal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxidicom.cube.progress import ProgressLimiter

KEYS = ("a", "b", "c")
Op = tuple[Literal["stored", "sent", "finish"], str, float]

ops = st.lists(
    st.tuples(
        st.sampled_from(["stored", "stored", "stored", "sent", "finish"]),
        st.sampled_from(KEYS),
        st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    ),
    max_size=200,
)
intervals = st.sampled_from([0.0, 0.05, 0.5, 2.0])


@attrs.define
class Expected:
    """What the contract says about one key, kept independently of the limiter."""

    stored: int = 0
    in_flight: bool = False
    last_sent: float | None = None
    announced: list[int] = attrs.Factory(list)


def run(interval: float, script: list[Op]) -> list[tuple[str, list[int], int]]:
    """Play ``script``; assert the rules on every step; return (key, announced, final)."""
    limiter: ProgressLimiter[str] = ProgressLimiter(interval)
    expected = {key: Expected() for key in KEYS}
    finished = []
    now = 0.0
    for op, key, dt in script:
        now += dt
        state = expected[key]
        if op == "stored":
            count = limiter.stored(key, now)
            state.stored += 1
            allowed = not state.in_flight and (
                state.last_sent is None or now - state.last_sent >= interval
            )
            if allowed:
                assert count == state.stored, "an allowed announcement must not be dropped"
                state.in_flight = True
                state.announced.append(count)
            else:
                assert count is None, "announced while one is in flight or too soon"
        elif op == "sent":
            limiter.sent(key, now)
            if state.in_flight:
                state.in_flight, state.last_sent = False, now
        else:
            final = limiter.finish(key)
            assert final == state.stored
            finished.append((key, state.announced, final))
            expected[key] = Expected()
        assert limiter.count(key) == expected[key].stored
    return finished


@given(intervals, ops)
def test_limiter_follows_the_contract(interval: float, script: list[Op]) -> None:
    run(interval, script)


@given(intervals, ops)
def test_announcements_start_at_one_and_only_increase(interval: float, script: list[Op]) -> None:
    for _, announced, final in run(interval, [*script, *[("finish", k, 0.0) for k in KEYS]]):
        if final:
            assert announced[0] == 1
        assert announced == sorted(set(announced))
        assert all(count <= final for count in announced)


def test_first_instance_is_always_announced() -> None:
    limiter: ProgressLimiter[str] = ProgressLimiter(interval=3600.0)
    assert limiter.stored("a", now=0.0) == 1
    assert limiter.stored("b", now=0.0) == 1


def test_no_second_announcement_while_one_is_in_flight() -> None:
    limiter: ProgressLimiter[str] = ProgressLimiter(interval=0.0)
    assert limiter.stored("a", now=0.0) == 1
    assert limiter.stored("a", now=100.0) is None
    limiter.sent("a", now=100.0)
    assert limiter.stored("a", now=100.0) == 3


def test_interval_counts_from_when_the_last_announcement_left() -> None:
    limiter: ProgressLimiter[str] = ProgressLimiter(interval=0.5)
    assert limiter.stored("a", now=0.0) == 1
    limiter.sent("a", now=1.0)
    assert limiter.stored("a", now=1.4) is None
    assert limiter.stored("a", now=1.5) == 3


def test_finish_forgets_the_key() -> None:
    limiter: ProgressLimiter[str] = ProgressLimiter(interval=10.0)
    limiter.stored("a", now=0.0)
    limiter.stored("a", now=0.0)
    assert limiter.finish("a") == 2
    assert len(limiter) == 0
    limiter.sent("a", now=1.0)  # a late report for a forgotten key is harmless
    assert limiter.finish("a") == 0
    assert limiter.stored("a", now=1.0) == 1


def test_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        ProgressLimiter[str](interval=-1.0)
