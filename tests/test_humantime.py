from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxidicom.humantime import format_duration, parse_duration

NS = 1_000_000_000

# Every unit spelling of the humantime crate, with its length in nanoseconds.
UNITS_NS = {
    "nanos": 1,
    "nsec": 1,
    "ns": 1,
    "usec": 1_000,
    "us": 1_000,
    "µs": 1_000,
    "millis": 1_000_000,
    "msec": 1_000_000,
    "ms": 1_000_000,
    "seconds": NS,
    "second": NS,
    "secs": NS,
    "sec": NS,
    "s": NS,
    "minutes": 60 * NS,
    "minute": 60 * NS,
    "mins": 60 * NS,
    "min": 60 * NS,
    "m": 60 * NS,
    "hours": 3600 * NS,
    "hour": 3600 * NS,
    "hrs": 3600 * NS,
    "hr": 3600 * NS,
    "h": 3600 * NS,
    "days": 86400 * NS,
    "day": 86400 * NS,
    "d": 86400 * NS,
    "weeks": 604800 * NS,
    "week": 604800 * NS,
    "w": 604800 * NS,
    "months": 2_630_016 * NS,
    "month": 2_630_016 * NS,
    "M": 2_630_016 * NS,
    "years": 31_557_600 * NS,
    "year": 31_557_600 * NS,
    "y": 31_557_600 * NS,
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        # The crate's own examples and tests.
        ("2h 37min", 9420.0),
        ("32ms", 0.032),
        ("20 min 17 nsec ", 1200 + 17 / NS),
        ("2h 15m", 8100.0),
        ("12M", 31_560_192.0),
        ("17y", 536_479_200.0),
        # The contract's examples.
        ("5ms", 0.005),
        ("2s", 2.0),
        ("1m 30s", 90.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        # No spaces, any order, repeated units add up.
        ("1h30m", 5400.0),
        ("30s1m", 90.0),
        ("1s 1s", 2.0),
        ("  7 s  ", 7.0),
        # Fractions are exact before the one conversion to float.
        ("1.5h", 5400.0),
        ("0.5ms", 0.0005),
        (".25s", 0.25),
        ("2.s", 2.0),
        ("0.0000000015s", 2 / NS),  # rounds half to even at the nanosecond
        ("0s", 0.0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("unit", "ns"), UNITS_NS.items())
def test_every_unit_of_the_crate(unit: str, ns: int) -> None:
    assert parse_duration(f"3{unit}") == 3 * ns / NS
    assert parse_duration(f"3 {unit}") == 3 * ns / NS


def test_greek_mu_is_micro_too() -> None:
    assert parse_duration("5\u03bcs") == parse_duration("5\u00b5s") == 5e-6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("5", r"a time unit is needed after 5, e\.g\. 5s or 5ms"),
        ("5 parsecs", "unknown time unit 'parsecs'"),
        ("5S", "unknown time unit 'S'"),
        ("-5s", "expected a number at position 1 of '-5s'"),
        ("5s!", "expected a number at position 3 of '5s!'"),
        ("s", "expected a number at position 1"),
        ("1,5s", "a time unit is needed after 1"),
        ("1e3s", "unknown time unit 'e'"),
        ("1h 30", "a time unit is needed after 30"),
        ("600000000000y", "too large"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.5, "500ms"),
        (90.0, "1m 30s"),
        (9420.0, "2h 37m"),
        (1.5, "1s 500ms"),
        (86400.0 * 2 + 1, "2days 1s"),
        (31_557_600.0 + 2_630_016.0, "1year 1month"),
        (1e-9, "1ns"),
        (1.000001001, "1s 1us 1ns"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_format_rejects_what_is_no_duration(seconds: float) -> None:
    with pytest.raises(ValueError, match="cannot format"):
        format_duration(seconds)


# Below 2**52 ns (about 52 days), a float keeps every nanosecond.
@given(st.integers(min_value=0, max_value=2**52))
def test_round_trip_to_the_nanosecond(ns: int) -> None:
    seconds = ns / NS
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=0, max_value=2**53))
def test_round_trip_of_whole_seconds(secs: int) -> None:
    assert parse_duration(format_duration(float(secs))) == secs


units = st.sampled_from(sorted(UNITS_NS))
terms = st.tuples(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", " "]), units)


@given(st.lists(terms, min_size=1, max_size=6), st.sampled_from(["", " ", "  "]))
def test_terms_add_up(parts: list[tuple[int, str, str]], separator: str) -> None:
    text = separator.join(f"{n}{space}{unit}" for n, space, unit in parts)
    expected_ns = sum(n * UNITS_NS[unit] for n, _, unit in parts)
    assert parse_duration(text) == expected_ns / NS


@given(
    st.integers(min_value=0, max_value=10**6),
    st.text(alphabet="0123456789", min_size=1, max_size=12),
    units,
)
def test_fractions_are_exact(whole: int, decimals: str, unit: str) -> None:
    exact_ns = (whole + Fraction(f"0.{decimals}")) * UNITS_NS[unit]
    assert parse_duration(f"{whole}.{decimals}{unit}") == round(exact_ns) / NS
