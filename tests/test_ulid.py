import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxidicom.ulid import new_ulid, ulid_time

CROCKFORD_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
MAX_MS = 2**48 - 1

milliseconds = st.integers(min_value=0, max_value=MAX_MS)


def test_format() -> None:
    ulid = new_ulid()
    assert CROCKFORD_ULID.fullmatch(ulid), ulid


def test_spec_example_time() -> None:
    # The ULID spec's example: 01ARZ3NDEKTSV4RRFFQ69G5FAV encodes 1469922850259 ms.
    assert ulid_time("01ARZ3NDEKTSV4RRFFQ69G5FAV") == 1469922850.259
    assert new_ulid(1469922850.259)[:10] == "01ARZ3NDEK"


def test_default_time_is_now() -> None:
    before = time.time()
    ulid = new_ulid()
    after = time.time()
    assert int(before * 1000) / 1000 <= ulid_time(ulid) <= after


def test_random_part_differs() -> None:
    ulids = {new_ulid(1.0) for _ in range(1000)}
    assert len(ulids) == 1000
    assert {ulid[:10] for ulid in ulids} == {"00000000Z8"}  # 1000 ms


@given(milliseconds)
def test_time_round_trip(ms: int) -> None:
    ulid = new_ulid(ms / 1000)
    assert CROCKFORD_ULID.fullmatch(ulid)
    assert ulid_time(ulid) == ms / 1000


@given(milliseconds, milliseconds)
def test_text_sorts_by_time(a: int, b: int) -> None:
    ulid_a, ulid_b = new_ulid(a / 1000), new_ulid(b / 1000)
    if a < b:
        assert ulid_a < ulid_b
    elif a > b:
        assert ulid_a > ulid_b
    else:
        assert ulid_a[:10] == ulid_b[:10]


@pytest.mark.parametrize("now", [-0.001, 2**48 / 1000])
def test_time_out_of_range(now: float) -> None:
    with pytest.raises(ValueError, match="cannot hold the time"):
        new_ulid(now)


@pytest.mark.parametrize(
    "text",
    ["", "01ARZ3NDEKTSV4RRFFQ69G5FA", "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAU"],
)
def test_ulid_time_rejects_what_is_no_ulid(text: str) -> None:
    with pytest.raises(ValueError, match="not a ULID"):
        ulid_time(text)
