"""The CUBE contract (/work/shared/CUBE_CONTRACT.md) restated as a test oracle.

Written from the contract's text alone, sharing no code with :mod:`oxidicom`: a test
computes where an instance must land (§3), on which NATS subject its series is reported
(§4) and what the registration task must say (§5) from the data set it sent, as pydicom
decodes it, and compares that with what the receiver did. Two independent readings of the
contract that agree are the point; importing the product's layout code here would turn
every path assertion into a tautology.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Any

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

__all__ = [
    "clean",
    "expected_file_path",
    "expected_registration",
    "expected_series_folder",
    "hash7",
    "lonk_subject",
    "patient_age_days",
    "sanitize",
    "seahash",
    "study_date_iso",
    "text_value",
]

_MASK64 = (1 << 64) - 1
_SEAHASH_PRIME = 0x6EED0E9DA4D94A4F
_SEAHASH_SEED = (0x16F11FE89B0D677C, 0xB480A793D8E6C86C, 0x6FE2E5AAF078EBC9, 0x14F994A4C5259381)
_U32_MAX = 0xFFFFFFFF
_OUTSIDE_SAFE = re.compile(r"[^A-Za-z0-9.\-]+")
_UNSIGNED = re.compile(r"\+?[0-9]+", re.ASCII)
_AGE = re.compile(r"([0-9]+)([DWMY])", re.ASCII)
_DAYS = {"D": 1.0, "W": 7.0, "M": 30.44, "Y": 365.24}
# Rust's str::trim removes Unicode White_Space; Python's isspace() also counts U+001C..U+001F.
_NOT_WHITE_SPACE = frozenset("\x1c\x1d\x1e\x1f")


def _diffuse(x: int) -> int:
    x = (x * _SEAHASH_PRIME) & _MASK64
    x ^= (x >> 32) >> (x >> 60)
    return (x * _SEAHASH_PRIME) & _MASK64


def seahash(data: bytes) -> int:
    """SeaHash (the Rust ``seahash`` crate's ``hash``): 64-bit little-endian words, zero
    padded at the end, go round-robin into four lanes, which fold with the length."""
    lanes = list(_SEAHASH_SEED)
    for index, start in enumerate(range(0, len(data), 8)):
        word = int.from_bytes(data[start : start + 8], "little")
        lanes[index % 4] = _diffuse(lanes[index % 4] ^ word)
    a, b, c, d = lanes
    return _diffuse(a ^ b ^ c ^ d ^ len(data))


def hash7(series_instance_uid: str) -> str:
    return format(seahash(series_instance_uid.encode("ascii")), "x")[:7]


def trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and text[start].isspace() and text[start] not in _NOT_WHITE_SPACE:
        start += 1
    while end > start and text[end - 1].isspace() and text[end - 1] not in _NOT_WHITE_SPACE:
        end -= 1
    return text[start:end]


def clean(text: str) -> str:
    """§3/§5: trimmed, NUL bytes removed."""
    return trim(text).replace("\0", "")


def sanitize(text: str) -> str:
    """§3: trimmed, NULs removed, each run outside ``[A-Za-z0-9.-]`` becomes one ``_``."""
    return _OUTSIDE_SAFE.sub("_", clean(text))


def _padded(ds: Dataset, keyword: str, width: int) -> str:
    """SeriesNumber/InstanceNumber: an unsigned 32-bit integer written as one, else the
    (sanitized) text or the keyword; either left-padded with ``0``."""
    text = text_value(ds, keyword)
    if text is None:
        return keyword.rjust(width, "0")
    value = clean(text)
    if _UNSIGNED.fullmatch(value) and int(value) <= _U32_MAX:
        value = str(int(value))
    return sanitize(value).rjust(width, "0")


def text_value(ds: Dataset, keyword: str) -> str | None:
    """The value of ``keyword`` as text, decoded by pydicom; None when absent.

    A person name is the original text, component groups as they were sent: pydicom's
    :class:`~pydicom.valuerep.PersonName` drops empty trailing groups
    (``Wang^XiaoDong=王^小東=`` becomes ``Wang^XiaoDong=王^小東``), the contract does not.
    """
    if keyword not in ds:
        return None
    raw = ds.get_item(keyword)
    if raw is not None and raw.VR == "PN" and isinstance(raw.value, bytes):
        encodings = convert_encodings(ds.get("SpecificCharacterSet") or "ISO_IR 6")
        return decode_bytes(raw.value, encodings, {ord("^"), ord("=")})
    value = ds[keyword].value
    if value is None:
        return ""
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def _text_or_keyword(ds: Dataset, keyword: str) -> str:
    value = text_value(ds, keyword)
    return keyword if value is None else sanitize(value)


def _required(ds: Dataset, keyword: str) -> str:
    value = text_value(ds, keyword)
    if value is None:
        raise AssertionError(f"test data set has no {keyword}: the receiver must refuse it")
    return value


def expected_series_folder(calling_aet: str, ds: Dataset) -> str:
    """§3: ``SERVICES/PACS/{pacs}/{patient}/{study}/{series}``, relative to FILES_ROOT."""
    patient = "-".join(
        (
            sanitize(_required(ds, "PatientID")),
            sanitize(text_value(ds, "PatientName") or ""),
            sanitize(text_value(ds, "PatientBirthDate") or ""),
        )
    )
    study = "-".join(
        (
            _text_or_keyword(ds, "StudyDescription"),
            _text_or_keyword(ds, "AccessionNumber"),
            sanitize(_required(ds, "StudyDate")),
        )
    )
    series = "-".join(
        (
            _padded(ds, "SeriesNumber", 5),
            _text_or_keyword(ds, "SeriesDescription"),
            hash7(clean(_required(ds, "SeriesInstanceUID"))),
        )
    )
    return f"SERVICES/PACS/{sanitize(calling_aet)}/{patient}/{study}/{series}"


def expected_file_path(calling_aet: str, ds: Dataset) -> str:
    """§3: the instance's file, relative to FILES_ROOT."""
    name = f"{_padded(ds, 'InstanceNumber', 4)}-{sanitize(_required(ds, 'SOPInstanceUID'))}.dcm"
    return f"{expected_series_folder(calling_aet, ds)}/{name}"


def study_date_iso(text: str) -> str:
    """§5: StudyDate ``YYYYMMDD`` (or ``YYYY-MM-DD``) as ``YYYY-MM-DD``."""
    value = clean(text)
    for pattern in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.datetime.strptime(value, pattern).date().isoformat()
        except ValueError:
            continue
    raise AssertionError(f"test data set has an invalid StudyDate {text!r}")


def patient_age_days(text: str | None) -> int | None:
    """§5: ``nnnD`` x1, ``nnnW`` x7, ``nnnM`` x30.44, ``nnnY`` x365.24, rounded."""
    if text is None:
        return None
    match = _AGE.fullmatch(clean(text))
    if match is None:
        return None
    return math.floor(int(match[1]) * _DAYS[match[2]] + 0.5)


def _optional(ds: Dataset, keyword: str) -> str | None:
    value = text_value(ds, keyword)
    return None if value is None else clean(value)


def expected_registration(calling_aet: str, ds: Dataset, ndicom: int) -> dict[str, Any]:
    """§5: every kwarg of ``register_pacs_series`` for a series whose first instance is
    ``ds``, as the stub worker records them."""
    return {
        "PatientID": clean(_required(ds, "PatientID")),
        "StudyDate": study_date_iso(_required(ds, "StudyDate")),
        "StudyInstanceUID": clean(_required(ds, "StudyInstanceUID")),
        "SeriesInstanceUID": clean(_required(ds, "SeriesInstanceUID")),
        "pacs_name": calling_aet,
        "path": expected_series_folder(calling_aet, ds),
        "ndicom": ndicom,
        "PatientName": _optional(ds, "PatientName"),
        "PatientBirthDate": _optional(ds, "PatientBirthDate"),
        "PatientAge": patient_age_days(text_value(ds, "PatientAge")),
        "PatientSex": _optional(ds, "PatientSex"),
        "AccessionNumber": _optional(ds, "AccessionNumber"),
        "Modality": _optional(ds, "Modality"),
        "ProtocolName": _optional(ds, "ProtocolName"),
        "StudyDescription": _optional(ds, "StudyDescription"),
        "SeriesDescription": _optional(ds, "SeriesDescription"),
    }


def lonk_subject(root: str, calling_aet: str, series_instance_uid: str | None) -> str:
    """§4: ``{root}.{pacs}.{SeriesInstanceUID}``, NUL removed and `` .*>`` made ``_``."""

    def token(text: str) -> str:
        return re.sub(r"[ .*>]", "_", text.replace("\0", ""))

    return f"{root}.{token(calling_aet)}.{token(series_instance_uid or 'UNKNOWN')}"
