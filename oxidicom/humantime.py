"""Durations in the syntax of Rust's ``humantime`` crate, plus decimal fractions.

Deployments of the Rust oxidicom configure ``OXIDICOM_PROGRESS_INTERVAL`` and
``OXIDICOM_DEV_SLEEP`` with ``humantime::parse_duration``; every value it accepts
means the same thing here. A duration is one or more terms ``<number><unit>``,
with or without spaces between and inside terms, in any order: ``5ms``,
``1m 30s``, ``1h30m``, ``2 hours 5 min``. We also accept a decimal fraction
(``1.5s``), which the crate does not.

Durations are float seconds, the unit of ``time.monotonic()`` and asyncio
timeouts, so the sans-IO core can compare them with ``now`` directly. Parsing
is exact to the nanosecond before the single conversion to float.
"""

import math
import re
from fractions import Fraction

__all__ = ["format_duration", "parse_duration"]

_NS_PER_S = 1_000_000_000
_MONTH_S = 2_630_016  # 30.44 days, as the crate defines it
_YEAR_S = 31_557_600  # 365.25 days, as the crate defines it

_UNITS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("nanos", "nsec", "ns"), 1),
    (("usec", "us", "µs", "μs"), 1_000),  # micro sign U+00B5 and Greek mu U+03BC
    (("millis", "msec", "ms"), 1_000_000),
    (("seconds", "second", "secs", "sec", "s"), _NS_PER_S),
    (("minutes", "minute", "mins", "min", "m"), 60 * _NS_PER_S),
    (("hours", "hour", "hrs", "hr", "h"), 3600 * _NS_PER_S),
    (("days", "day", "d"), 86400 * _NS_PER_S),
    (("weeks", "week", "w"), 7 * 86400 * _NS_PER_S),
    (("months", "month", "M"), _MONTH_S * _NS_PER_S),
    (("years", "year", "y"), _YEAR_S * _NS_PER_S),
)
_UNIT_NS = {name: ns for names, ns in _UNITS for name in names}

# Like std::time::Duration, the largest duration is u64::MAX seconds.
_MAX_NS = (2**64 - 1) * _NS_PER_S

_TERM = re.compile(r"\s*(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>[A-Za-zµμ]*)\s*")
_UNITS_HELP = (
    "ns, us, ms, s, m (minutes), h, d, w, M (months), y and long forms like sec, min, hours"
)


def parse_duration(text: str) -> float:
    """Parse a humantime duration such as ``500ms`` or ``1m 30s`` into float seconds.

    Raises ValueError with a message that says what is wrong and where.
    """
    return _parse_ns(text) / _NS_PER_S


def _parse_ns(text: str) -> int:
    if not text.strip():
        raise ValueError("empty duration")
    total = Fraction(0)
    pos = 0
    while pos < len(text):
        term = _TERM.match(text, pos)
        if term is None:
            raise ValueError(f"expected a number at position {pos + 1} of {text!r}")
        number, unit = term["number"], term["unit"]
        if not unit:
            raise ValueError(f"a time unit is needed after {number}, e.g. {number}s or {number}ms")
        unit_ns = _UNIT_NS.get(unit)
        if unit_ns is None:
            raise ValueError(f"unknown time unit {unit!r} (known units: {_UNITS_HELP})")
        total += Fraction(number) * unit_ns
        if total > _MAX_NS:
            raise ValueError(f"duration {text!r} is too large")
        pos = term.end()
    return round(total)


def format_duration(seconds: float) -> str:
    """Render float seconds the way the humantime crate does, e.g. ``1m 30s``, ``500ms``.

    The result parses back to the same duration, rounded to the nanosecond.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format {seconds!r} as a duration")
    ns = round(Fraction(seconds) * _NS_PER_S)
    if ns == 0:
        return "0s"
    secs, sub_ns = divmod(ns, _NS_PER_S)
    years, secs = divmod(secs, _YEAR_S)
    months, secs = divmod(secs, _MONTH_S)
    days, secs = divmod(secs, 86400)
    hours, secs = divmod(secs, 3600)
    minutes, secs = divmod(secs, 60)
    millis, sub_ns = divmod(sub_ns, 1_000_000)
    micros, nanos = divmod(sub_ns, 1_000)
    terms = (
        (years, _plural(years, "year")),
        (months, _plural(months, "month")),
        (days, _plural(days, "day")),
        (hours, f"{hours}h"),
        (minutes, f"{minutes}m"),
        (secs, f"{secs}s"),
        (millis, f"{millis}ms"),
        (micros, f"{micros}us"),
        (nanos, f"{nanos}ns"),
    )
    return " ".join(text for count, text in terms if count)


def _plural(count: int, name: str) -> str:
    return f"{count}{name}s" if count > 1 else f"{count}{name}"
