"""Reject descriptions: every (source, reason) of PS3.8 §9.3.4 reads as the standard names it."""

from __future__ import annotations

import pytest

from oxidicom.ul.constants import REJECT_REASONS, describe_reject


@pytest.mark.parametrize(
    ("result", "source", "reason", "text"),
    [
        (1, 1, 1, "rejected-permanent by service-user: no-reason-given (1,1,1)"),
        (1, 1, 3, "rejected-permanent by service-user: calling-AE-title-not-recognized (1,1,3)"),
        (1, 1, 7, "rejected-permanent by service-user: called-AE-title-not-recognized (1,1,7)"),
        (
            1,
            2,
            2,
            "rejected-permanent by service-provider (ACSE): protocol-version-not-supported (1,2,2)",
        ),
        (
            2,
            3,
            1,
            "rejected-transient by service-provider (presentation): temporary-congestion (2,3,1)",
        ),
        (
            2,
            3,
            2,
            "rejected-transient by service-provider (presentation): local-limit-exceeded (2,3,2)",
        ),
    ],
)
def test_describe_reject(result: int, source: int, reason: int, text: str) -> None:
    assert describe_reject(result, source, reason) == text


def test_unknown_codes_are_described_not_raised() -> None:
    assert describe_reject(9, 9, 9) == "unknown result by unknown source: unknown reason (9,9,9)"


def test_reasons_are_named_per_source() -> None:
    # The same reason code means different things for different sources (§9.3.4).
    assert REJECT_REASONS[(1, 2)] == "application-context-name-not-supported"
    assert REJECT_REASONS[(2, 2)] == "protocol-version-not-supported"
    assert REJECT_REASONS[(3, 2)] == "local-limit-exceeded"
