"""The Celery task that asks CUBE to register a received series (contract §5).

CUBE's workers run Python Celery 5, which reads task messages of protocol version 2: the
task's metadata in AMQP headers, ``[args, kwargs, embed]`` as the JSON body. We build that
message ourselves rather than depend on Celery, and keep it as plain data
(:class:`CeleryTaskMessage`) so that the outbox can store it on disk and publish it later,
unchanged, however many times delivery has to be retried: the task id is fixed at creation.

The headers are the ones Celery 5's own ``send_task`` writes (``as_task_v2``) but for its
optional stamping extensions (``stamped_headers``, ``stamps``, ``replaced_task_nesting``),
which workers read with defaults; the body follows the Rust oxidicom's ``celery`` crate:
compact JSON, UTF-8, kwargs in the order of the task's signature, absent optional values as
``null``.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar

import attrs

from oxidicom.storage.events import InstanceStored
from oxidicom.storage.layout import trim

REGISTER_PACS_SERIES: Final = "pacsfiles.tasks.register_pacs_series"

_REPR_MAXSIZE: Final = 1024
"""Celery's default ``argsrepr_maxsize`` and ``kwargsrepr_maxsize``."""

_I32_MAX: Final = 2**31 - 1
"""``PatientAge`` is an ``integer`` column in CUBE's PostgreSQL."""

_AGE: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([DWMY])", re.ASCII)
_DAYS_PER_UNIT: Final = {"D": 1.0, "W": 7.0, "M": 30.44, "Y": 365.24}

_T = TypeVar("_T")


def clean_text(value: str | None) -> str | None:
    """A DICOM text value as CUBE stores it: NULs removed, then trimmed as Rust's
    ``str::trim`` does (like the path rules); ``None`` stays."""
    if value is None:
        return None
    value = trim(value.replace("\0", ""))
    # Lone surrogates (undecodable bytes) cannot travel as UTF-8: keep the rest of the text.
    return value.encode("utf-8", errors="replace").decode("utf-8")


def patient_age_days(value: str | None) -> int | None:
    """DICOM Age String (``030Y``, ``020D``, ``2W``, ``5M``) in days, or ``None``.

    Months and years are the average ones CUBE's earlier registration code (pypx) used.
    Rounded half away from zero, like Rust's ``f64::round``.
    """
    text = clean_text(value)
    if not text:
        return None
    match = _AGE.fullmatch(text)
    if match is None:
        return None
    exact = float(match[1]) * _DAYS_PER_UNIT[match[2]]
    whole = math.floor(exact)
    days = whole + (exact - whole >= 0.5)  # exact: no float rounding in the subtraction
    return days if days <= _I32_MAX else None


@attrs.frozen
class SeriesRegistration:
    """The kwargs of ``register_pacs_series``, in the order of its signature."""

    PatientID: str
    StudyDate: str
    """``YYYY-MM-DD``."""
    StudyInstanceUID: str
    SeriesInstanceUID: str
    pacs_name: str
    path: str
    """The series folder relative to FILES_ROOT, without trailing slash."""
    ndicom: int
    PatientName: str | None = None
    PatientBirthDate: str | None = None
    PatientAge: int | None = None
    PatientSex: str | None = None
    AccessionNumber: str | None = None
    Modality: str | None = None
    ProtocolName: str | None = None
    StudyDescription: str | None = None
    SeriesDescription: str | None = None

    @classmethod
    def of_series(cls, first: InstanceStored, ndicom: int) -> SeriesRegistration:
        """Registration of a series from the first instance of it stored in an association."""
        tags = first.tags
        return cls(
            PatientID=_required(tags.PatientID, "PatientID"),
            StudyDate=first.study_date.isoformat(),
            StudyInstanceUID=_required(tags.StudyInstanceUID, "StudyInstanceUID"),
            SeriesInstanceUID=_required(tags.SeriesInstanceUID, "SeriesInstanceUID"),
            pacs_name=_required(first.association.calling_aet, "calling AE title"),
            path=first.series_folder.rstrip("/"),
            ndicom=ndicom,
            PatientName=clean_text(tags.PatientName),
            PatientBirthDate=clean_text(tags.PatientBirthDate),
            PatientAge=patient_age_days(tags.PatientAge),
            PatientSex=clean_text(tags.PatientSex),
            AccessionNumber=clean_text(tags.AccessionNumber),
            Modality=clean_text(tags.Modality),
            ProtocolName=clean_text(tags.ProtocolName),
            StudyDescription=clean_text(tags.StudyDescription),
            SeriesDescription=clean_text(tags.SeriesDescription),
        )

    def kwargs(self) -> dict[str, str | int | None]:
        return attrs.asdict(self)


def _required(value: str | None, name: str) -> str:
    """A required value must be present; present but empty is registered as "", as the
    Rust receiver did (the storage layout accepts it too: anonymised data often has an empty
    PatientID)."""
    text = clean_text(value)
    if text is None:
        raise ValueError(f"cannot register a series without {name}")
    return text


def _frozen_headers(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(headers))


@attrs.frozen
class CeleryTaskMessage:
    """One Celery protocol 2 task message, everything needed to publish it over AMQP."""

    task_id: str
    headers: Mapping[str, Any] = attrs.field(converter=_frozen_headers)
    """AMQP headers: JSON values only (str, int, bool, None, lists, objects)."""
    body: bytes
    content_type: str = "application/json"
    content_encoding: str = "utf-8"
    delivery_mode: int = 2
    """Persistent: the task survives a broker restart."""
    priority: int = 0

    @property
    def task_name(self) -> str:
        return str(self.headers["task"])

    @property
    def correlation_id(self) -> str:
        return self.task_id

    def to_json(self) -> bytes:
        """The message as a self-contained JSON document (what the outbox stores)."""
        document = {
            "task_id": self.task_id,
            "headers": dict(self.headers),
            "body": self.body.decode("utf-8"),
            "content_type": self.content_type,
            "content_encoding": self.content_encoding,
            "delivery_mode": self.delivery_mode,
            "priority": self.priority,
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CeleryTaskMessage:
        """Inverse of :meth:`to_json`; ``ValueError`` if ``data`` is not such a document."""
        try:
            document = json.loads(data)
            return cls(
                task_id=_typed(document["task_id"], str),
                headers=_typed(document["headers"], dict),
                body=_typed(document["body"], str).encode("utf-8"),
                content_type=_typed(document["content_type"], str),
                content_encoding=_typed(document["content_encoding"], str),
                delivery_mode=_typed(document["delivery_mode"], int),
                priority=_typed(document["priority"], int),
            )
        except (KeyError, TypeError, UnicodeError, json.JSONDecodeError) as e:
            raise ValueError(f"not a stored Celery task message: {e}") from e


def _typed(value: object, kind: type[_T]) -> _T:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def task_message(
    task_name: str,
    kwargs: Mapping[str, Any],
    *,
    task_id: str | None = None,
    origin: str | None = None,
) -> CeleryTaskMessage:
    """A Celery protocol 2 message calling ``task_name(**kwargs)``, with no args."""
    task_id = task_id or str(uuid.uuid4())
    headers = {
        "lang": "py",
        "task": task_name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": _truncated(repr(dict(kwargs))),
        "origin": origin or default_origin(),
        "ignore_result": None,
    }
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    body = json.dumps([[], dict(kwargs), embed], ensure_ascii=False, separators=(",", ":"))
    return CeleryTaskMessage(task_id=task_id, headers=headers, body=body.encode("utf-8"))


def registration_message(
    registration: SeriesRegistration, *, task_id: str | None = None, origin: str | None = None
) -> CeleryTaskMessage:
    """The ``register_pacs_series`` task message for one series."""
    return task_message(REGISTER_PACS_SERIES, registration.kwargs(), task_id=task_id, origin=origin)


def default_origin() -> str:
    """Who sent the task, in the form Celery uses for a producer: ``gen{pid}@{hostname}``."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


def _truncated(text: str) -> str:
    return text if len(text) <= _REPR_MAXSIZE else text[: _REPR_MAXSIZE - 3] + "..."
