"""Where an instance goes in CUBE's storage: the path rules of contract §3 as pure functions.

The path is ``SERVICES/PACS/{pacs}/{patient}/{study}/{series}/{file}`` relative to
FILES_ROOT, every part built from the instance's tags exactly as the Rust oxidicom did:
text is trimmed (Unicode White_Space, as Rust's ``str::trim``), NULs are removed, and each
run of characters outside ``[A-Za-z0-9.-]`` becomes one ``_``.

Path safety is our one intended difference from the Rust program, which trusted its
input. Sanitized text can no longer contain ``/``, but two things could still escape or
break the tree, so every component also goes through :func:`safe_component`:

* a component that is empty, ``.`` or ``..`` (only ``pacs`` can be: the other components
  always contain ``-``) becomes as many ``_`` as it had characters, at least one
  (``""`` and ``.`` give ``_``, ``..`` gives ``__``);
* a component longer than 255 bytes (the usual NAME_MAX) is cut to a prefix followed by
  ``~`` and 20 hex digits of the BLAKE2b hash of the whole component, 255 bytes in all, so
  distinct long names stay distinct; file names keep their ``.dcm`` suffix.

The result only ever holds ``[A-Za-z0-9._~-]`` and ``/``, and stays inside
``SERVICES/PACS/``.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import re

import attrs

from oxidicom.storage.events import InstanceTags
from oxidicom.storage.seahash import seahash
from oxidicom.storage.small_key_cache import small_key_cache

__all__ = [
    "NAME_MAX",
    "PACS_FOLDER",
    "BadStudyDateError",
    "InstancePath",
    "LayoutError",
    "MissingTagError",
    "hash7",
    "instance_path",
    "pacs_name",
    "pad_number",
    "parse_study_date",
    "safe_component",
    "sanitize",
    "trim",
]

logger = logging.getLogger(__name__)

NAME_MAX = 255
"""Longest file name, in bytes, that common Linux file systems accept."""

PACS_FOLDER = "SERVICES/PACS"
"""Where every received instance goes, relative to FILES_ROOT; never above it."""

REQUIRED_TAGS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "PatientID",
    "StudyDate",
)
"""Checked in this order; the first one absent is the one reported (as the Rust program)."""

# The characters with the Unicode White_Space property, which Rust's str::trim removes
# (Python's str.strip() would also remove U+001C..U+001F).
_WHITE_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9.\-]+")
_U32 = re.compile(r"\+?[0-9]+", re.ASCII)
_U32_MAX = 0xFFFFFFFF
_DA = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})", re.ASCII)
_DA_DASHED = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_LONG_NAME_DIGEST_BYTES = 10


class LayoutError(Exception):
    """The instance cannot be given a path; ``str()`` is the reason, fit for a LONK error."""


class MissingTagError(LayoutError):
    def __init__(self, keyword: str) -> None:
        super().__init__(f"missing required tag: {keyword}")
        self.keyword = keyword


class BadStudyDateError(LayoutError):
    def __init__(self, value: str) -> None:
        super().__init__(f"invalid StudyDate: {value!r} (expected YYYYMMDD)")
        self.value = value


@attrs.frozen
class InstancePath:
    """Where one instance is stored, relative to FILES_ROOT."""

    series_folder: str
    """``SERVICES/PACS/...`` down to the series folder, no trailing slash (contract §5 ``path``)."""
    file_name: str
    study_date: datetime.date
    """StudyDate as parsed during validation (the registration task wants ``YYYY-MM-DD``)."""

    @property
    def file_path(self) -> str:
        return f"{self.series_folder}/{self.file_name}"


def trim(text: str) -> str:
    """Strip leading and trailing white space as Rust's ``str::trim`` does."""
    return text.strip(_WHITE_SPACE)


def sanitize(text: str) -> str:
    """Contract §3 text rule: trim, remove NULs, each run outside ``[A-Za-z0-9.-]`` to ``_``."""
    return _UNSAFE_RUN.sub("_", trim(text).replace("\0", ""))


def pad_number(text: str, width: int) -> str:
    """Format a SeriesNumber or InstanceNumber as the Rust program did.

    Text that Rust's ``u32::from_str`` accepts (ASCII digits, optional ``+``) is written as
    an integer, anything else as sanitized text; either is left-padded with ``0`` to
    ``width`` characters.
    """
    cleaned = trim(text).replace("\0", "")
    if cleaned.isdigit() and cleaned.isascii() and len(cleaned) < 10:  # the usual case
        return str(int(cleaned)).rjust(width, "0")
    if _U32.fullmatch(cleaned) and int(cleaned) <= _U32_MAX:
        cleaned = str(int(cleaned))
    return sanitize(cleaned).rjust(width, "0")


def hash7(series_instance_uid: str) -> str:
    """First 7 lowercase hex digits of the SeaHash of the sanitized SeriesInstanceUID.

    Sanitizing a valid UID only trims it and removes its NUL padding; the Rust program
    hashed the same sanitized text. (It runs once per series: :func:`series_folder` is
    cached.)
    """
    digest = seahash(sanitize(series_instance_uid).encode("ascii"))
    return format(digest, "x")[:7]


def parse_study_date(text: str) -> datetime.date:
    """Parse StudyDate as ``YYYYMMDD``, also accepting ``YYYY-MM-DD`` with a warning.

    Padding is ignored: white space and NULs around the date, in any order.
    """
    date, dashed = _parse_date(text)
    if dashed:
        cleaned = trim(text.replace("\0", ""))
        logger.warning("StudyDate %r is not in DICOM DA format YYYYMMDD", cleaned)
    return date


@small_key_cache(maxsize=1024, max_chars=32)  # a date is 8 or 10 characters
def _parse_date(text: str) -> tuple[datetime.date, bool]:
    """The date, and whether it came dashed (once per series: it repeats its StudyDate)."""
    cleaned = trim(text.replace("\0", ""))
    dashed = False
    match = _DA.fullmatch(cleaned)
    if match is None:
        match = _DA_DASHED.fullmatch(cleaned)
        dashed = True
    if match is None:
        raise BadStudyDateError(text)
    year, month, day = (int(group) for group in match.groups())
    try:
        return datetime.date(year, month, day), dashed
    except ValueError:
        raise BadStudyDateError(text) from None


def safe_component(name: str, suffix: str = "") -> str:
    """Make ``name + suffix`` one safe path component (see the module docstring)."""
    whole = name + suffix
    if whole in ("", ".", ".."):
        return "_" * max(1, len(whole))
    if len(whole.encode()) <= NAME_MAX:
        return whole
    digest = hashlib.blake2b(whole.encode(), digest_size=_LONG_NAME_DIGEST_BYTES).hexdigest()
    keep = NAME_MAX - len(suffix) - 1 - len(digest)
    # Sanitized names are ASCII, so characters and bytes agree.
    return f"{name[:keep]}~{digest}{suffix}"


def pacs_name(calling_aet: str) -> str:
    """The ``{pacs}`` folder: the calling AE title, sanitized and made a safe component."""
    return safe_component(sanitize(calling_aet))


def instance_path(calling_aet: str, tags: InstanceTags) -> InstancePath:
    """Validate ``tags`` and return where the instance goes.

    Raises :class:`MissingTagError` for an absent required tag (present but empty counts as
    present, as in the Rust program) and :class:`BadStudyDateError`.
    """
    # REQUIRED_TAGS spelled out, so the type checker sees them narrowed (per instance, no
    # getattr loop); the error still names the first absent one in REQUIRED_TAGS' order.
    study_date_text, patient_id = tags.StudyDate, tags.PatientID
    series_uid, sop_instance_uid = tags.SeriesInstanceUID, tags.SOPInstanceUID
    if (
        tags.StudyInstanceUID is None
        or series_uid is None
        or sop_instance_uid is None
        or patient_id is None
        or study_date_text is None
    ):
        raise MissingTagError(next(k for k in REQUIRED_TAGS if getattr(tags, k) is None))
    study_date = parse_study_date(study_date_text)
    folder = series_folder(
        calling_aet,
        patient_id,
        tags.PatientName,
        tags.PatientBirthDate,
        tags.StudyDescription,
        tags.AccessionNumber,
        study_date_text,
        tags.SeriesNumber,
        tags.SeriesDescription,
        series_uid,
    )
    file_stem = "-".join(
        (
            pad_number(_or_raw_keyword(tags.InstanceNumber, "InstanceNumber"), 4),
            sanitize(sop_instance_uid),
        )
    )
    return InstancePath(
        series_folder=folder,
        file_name=safe_component(file_stem, ".dcm"),
        study_date=study_date,
    )


@small_key_cache(maxsize=1024, max_chars=4096)  # 1024 keys: a few MB at most
def series_folder(  # noqa: PLR0917 - positional: the arguments are the cache key
    calling_aet: str,
    patient_id: str,
    patient_name: str | None,
    patient_birth_date: str | None,
    study_description: str | None,
    accession_number: str | None,
    study_date: str,
    series_number: str | None,
    series_description: str | None,
    series_instance_uid: str,
) -> str:
    """``SERVICES/PACS/{pacs}/{patient}/{study}/{series}``: the same for every instance of
    a series, so it is computed once per series (the instances' raw values are the key)."""
    patient = "-".join(
        (sanitize(patient_id), sanitize(patient_name or ""), sanitize(patient_birth_date or ""))
    )
    study = "-".join(
        (
            _or_keyword(study_description, "StudyDescription"),
            _or_keyword(accession_number, "AccessionNumber"),
            sanitize(study_date),
        )
    )
    series = "-".join(
        (
            pad_number(_or_raw_keyword(series_number, "SeriesNumber"), 5),
            _or_keyword(series_description, "SeriesDescription"),
            hash7(series_instance_uid),
        )
    )
    return "/".join(
        (
            PACS_FOLDER,
            pacs_name(calling_aet),
            safe_component(patient),
            safe_component(study),
            safe_component(series),
        )
    )


def _or_keyword(value: str | None, keyword: str) -> str:
    return keyword if value is None else sanitize(value)


def _or_raw_keyword(value: str | None, keyword: str) -> str:
    return keyword if value is None else value
