"""Status codes fall in the classes of PS3.7 Annex C, with C-STORE's meanings (PS3.4 B.2.3)."""

from __future__ import annotations

import pytest

from oxidicom.dimse.status import STATUS_TABLE, Category, category, describe

# PS3.7 Annex C: "Success 0000; Warning 0001, Bxxx, 0107, 0116; Failure Axxx, Cxxx, 01xx
# (except 0107 and 0116), 02xx; Cancel FE00; Pending FF00 and FF01".
CLASSES = [
    (0x0000, Category.SUCCESS),
    (0x0001, Category.WARNING),
    (0x0107, Category.WARNING),
    (0x0116, Category.WARNING),
    (0xB000, Category.WARNING),
    (0xB006, Category.WARNING),
    (0xB007, Category.WARNING),
    (0xB123, Category.WARNING),
    (0xBFFF, Category.WARNING),
    (0xFE00, Category.CANCEL),
    (0xFF00, Category.PENDING),
    (0xFF01, Category.PENDING),
    (0x0105, Category.FAILURE),
    (0x0110, Category.FAILURE),
    (0x0113, Category.FAILURE),
    (0x0122, Category.FAILURE),
    (0x01FF, Category.FAILURE),
    (0x0211, Category.FAILURE),
    (0x02AB, Category.FAILURE),
    (0xA000, Category.FAILURE),
    (0xA700, Category.FAILURE),
    (0xA7FF, Category.FAILURE),
    (0xA801, Category.FAILURE),
    (0xA900, Category.FAILURE),
    (0xC000, Category.FAILURE),
    (0xCFFF, Category.FAILURE),
]


@pytest.mark.parametrize(("status", "expected"), CLASSES, ids=[f"{s:04X}" for s, _ in CLASSES])
def test_status_class(status: int, expected: Category) -> None:
    assert category(status) is expected


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        (0x0000, "Success"),
        (0xA712, "Refused: out of resources"),
        (0xA9AB, "Error: data set does not match SOP class"),
        (0xC123, "Error: cannot understand"),
        (0xB000, "Coercion of data elements"),
        (0xB006, "Elements discarded"),
        (0xB007, "Data set does not match SOP class"),
        (0x0122, "SOP class not supported"),
        (0x0211, "Unrecognized operation"),
    ],
)
def test_c_store_meanings(status: int, meaning: str) -> None:
    assert describe(status)[1] == meaning


@pytest.mark.parametrize("status", [0x0002, 0x1234, 0xD000, 0xFFFF])
def test_codes_outside_every_class_are_failures(status: int) -> None:
    assert describe(status) == (Category.FAILURE, f"Unknown status 0x{status:04X}")


def test_specific_rows_come_before_the_ranges_containing_them() -> None:
    for index, (first, last, _, _) in enumerate(STATUS_TABLE):
        for earlier_first, earlier_last, _, _ in STATUS_TABLE[:index]:
            contains = first <= earlier_first and earlier_last <= last
            assert not (contains and (first, last) == (earlier_first, earlier_last))
    assert describe(0xB007)[1] != "Warning"
