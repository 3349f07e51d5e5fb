"""DIMSE status codes (PS3.7 Annex C) as one table, with their categories.

A code's meaning depends on the service only for a few failure ranges; the table holds the
general meanings and those of C-STORE (PS3.4 Table B.2-1), which is what this package serves.
"""

from __future__ import annotations

import enum
from typing import Final


class Category(enum.Enum):
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"
    CANCEL = "cancel"
    PENDING = "pending"


SUCCESS: Final = 0x0000
UNRECOGNIZED_OPERATION: Final = 0x0211
SOP_CLASS_NOT_SUPPORTED: Final = 0x0122
PROCESSING_FAILURE: Final = 0x0110
OUT_OF_RESOURCES: Final = 0xA700
DATA_SET_DOES_NOT_MATCH_SOP_CLASS: Final = 0xA900
CANNOT_UNDERSTAND: Final = 0xC000

# (first, last, category, meaning), most specific first.
STATUS_TABLE: Final[tuple[tuple[int, int, Category, str], ...]] = (
    (0x0000, 0x0000, Category.SUCCESS, "Success"),
    (0x0001, 0x0001, Category.WARNING, "Requested optional attributes are not supported"),
    (0x0107, 0x0107, Category.WARNING, "Attribute list error"),
    (0x0116, 0x0116, Category.WARNING, "Attribute value out of range"),
    (0xB000, 0xB000, Category.WARNING, "Coercion of data elements"),
    (0xB006, 0xB006, Category.WARNING, "Elements discarded"),
    (0xB007, 0xB007, Category.WARNING, "Data set does not match SOP class"),
    (0xFE00, 0xFE00, Category.CANCEL, "Cancel"),
    (0xFF00, 0xFF00, Category.PENDING, "Pending"),
    (0xFF01, 0xFF01, Category.PENDING, "Pending, optional keys not supported"),
    (0x0105, 0x0105, Category.FAILURE, "No such attribute"),
    (0x0106, 0x0106, Category.FAILURE, "Invalid attribute value"),
    (0x0110, 0x0110, Category.FAILURE, "Processing failure"),
    (0x0111, 0x0111, Category.FAILURE, "Duplicate SOP instance"),
    (0x0112, 0x0112, Category.FAILURE, "No such SOP instance"),
    (0x0117, 0x0117, Category.FAILURE, "Invalid object instance"),
    (0x0118, 0x0118, Category.FAILURE, "No such SOP class"),
    (0x0119, 0x0119, Category.FAILURE, "Class-instance conflict"),
    (0x0120, 0x0120, Category.FAILURE, "Missing attribute"),
    (0x0121, 0x0121, Category.FAILURE, "Missing attribute value"),
    (0x0122, 0x0122, Category.FAILURE, "SOP class not supported"),
    (0x0124, 0x0124, Category.FAILURE, "Not authorized"),
    (0x0210, 0x0210, Category.FAILURE, "Duplicate invocation"),
    (0x0211, 0x0211, Category.FAILURE, "Unrecognized operation"),
    (0x0212, 0x0212, Category.FAILURE, "Mistyped argument"),
    (0x0213, 0x0213, Category.FAILURE, "Resource limitation"),
    (0xA700, 0xA7FF, Category.FAILURE, "Refused: out of resources"),
    (0xA900, 0xA9FF, Category.FAILURE, "Error: data set does not match SOP class"),
    (0xC000, 0xCFFF, Category.FAILURE, "Error: cannot understand"),
    # The status classes of PS3.7 Annex C, for codes no row above names.
    (0xB000, 0xBFFF, Category.WARNING, "Warning"),
    (0xA000, 0xAFFF, Category.FAILURE, "Failure"),
    (0x0100, 0x02FF, Category.FAILURE, "Failure"),
)


def describe(status: int) -> tuple[Category, str]:
    """Category and meaning of a status; unknown codes count as failures (PS3.7 C.1)."""
    for first, last, category, meaning in STATUS_TABLE:
        if first <= status <= last:
            return category, meaning
    return Category.FAILURE, f"Unknown status 0x{status:04X}"


def category(status: int) -> Category:
    return describe(status)[0]
