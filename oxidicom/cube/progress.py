"""Which progress messages to send: the rate rules of contract §4, without I/O or clocks.

A PACS can push hundreds of instances a second; the UI only needs to see the count move.
Per key (one series in one association), the first stored instance is always announced;
after that a count is announced only when the previous announcement has left (nothing in
flight, so the publisher never holds more than one optional message per series) and at
least ``interval`` seconds have passed since it did. Everything else is dropped: the final
count, sent unconditionally when the association ends, makes up for it.

Time is passed in (``now``, monotonic seconds) so the rules can be tested exhaustively.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

import attrs

K = TypeVar("K", bound=Hashable)


@attrs.define
class _Series:
    count: int = 0
    in_flight: bool = False
    last_sent: float | None = None
    """When the previous announcement left; ``None`` before the first one."""


class ProgressLimiter(Generic[K]):
    """Counts stored instances per key and decides which counts to announce."""

    def __init__(self, interval: float) -> None:
        if interval < 0:
            raise ValueError(f"progress interval must not be negative, got {interval}")
        self._interval = interval
        self._series: dict[K, _Series] = {}

    @property
    def interval(self) -> float:
        return self._interval

    def stored(self, key: K, now: float) -> int | None:
        """Count one more instance of ``key``; the count to announce now, or ``None``.

        After a count is returned, the caller must report with :meth:`sent` when that
        message has left (or was given up), otherwise no further count is announced.
        """
        series = self._series.setdefault(key, _Series())
        series.count += 1
        if series.in_flight:
            return None
        if series.last_sent is not None and now - series.last_sent < self._interval:
            return None
        series.in_flight = True
        return series.count

    def sent(self, key: K, now: float) -> None:
        """The announcement of ``key`` in flight has left. Unknown keys are ignored."""
        series = self._series.get(key)
        if series is not None and series.in_flight:
            series.in_flight = False
            series.last_sent = now

    def count(self, key: K) -> int:
        """Instances of ``key`` counted so far (0 if none)."""
        series = self._series.get(key)
        return 0 if series is None else series.count

    def finish(self, key: K) -> int:
        """Forget ``key`` and return its final count, to be announced unconditionally."""
        series = self._series.pop(key, None)
        return 0 if series is None else series.count

    def __len__(self) -> int:
        return len(self._series)
