"""Rate limiting for log lines that an outage would otherwise repeat thousands of times."""

from __future__ import annotations

import time
from collections.abc import Callable


class LogThrottle:
    """Lets one line through per ``interval`` seconds and counts the ones held back.

    Usage::

        if (held_back := throttle.ready()) is not None:
            log.warning("broker unreachable (%d similar lines suppressed)", held_back)
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._held_back = 0

    def ready(self) -> int | None:
        """``None`` to stay quiet; else how many lines were held back since the last one."""
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self._held_back += 1
            return None
        held_back, self._held_back, self._last = self._held_back, 0, now
        return held_back

    def reset(self) -> None:
        """Forget the last line: the next problem is news again (e.g. after a recovery)."""
        self._last = None
        self._held_back = 0
