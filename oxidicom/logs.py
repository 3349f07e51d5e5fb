"""Logging to stderr, as text for people or as JSON lines for log collectors.

Everything goes through the standard :mod:`logging` module. Structured fields
travel in one record attribute, ``fields``, so they never clash with the
attributes of :class:`logging.LogRecord`::

    log.info("association ended", extra=fields(association_ulid=ulid, instances=12))

or, for many records about one thing, bind the fields once::

    log = bind(logging.getLogger(__name__), association_ulid=ulid)
    log.info("association ended", extra=fields(instances=12))

The text format renders them as ``key=value`` after the message; the JSON
format adds them as keys of the object.
"""

import datetime
import json
import logging
import math
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

__all__ = [
    "FieldsAdapter",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "bind",
    "configure_logging",
    "fields",
    "record_fields",
]

LogFormat = Literal["text", "json"]

_FIELDS = "fields"
# The AMQP client logs every failed reconnect, unthrottled, and a traceback when a
# connection drops; the publisher's own throttled warnings say the same.
_QUIET_UNLESS_DEBUG = ("aiormq", "aio_pika")
# The JSON keys every record has; a field of the same name is renamed with a trailing "_".
_JSON_KEYS = frozenset({"ts", "level", "logger", "msg", "exc", "stack"})


def fields(**values: object) -> dict[str, object]:
    """The ``extra`` argument of a logging call that carries ``values`` as fields."""
    return {_FIELDS: values}


def record_fields(record: logging.LogRecord) -> Mapping[str, object]:
    """The structured fields of ``record`` (empty when it has none)."""
    return _fields_in(record.__dict__)


def _fields_in(extra: Mapping[str, object]) -> Mapping[str, object]:
    values = extra.get(_FIELDS)
    return values if isinstance(values, Mapping) else {}


class FieldsAdapter(logging.LoggerAdapter[logging.Logger]):
    """A logger that adds bound fields to every record; per-call fields win."""

    def __init__(self, logger: logging.Logger, bound: Mapping[str, object]) -> None:
        super().__init__(logger, {_FIELDS: dict(bound)})

    @property
    def bound(self) -> Mapping[str, object]:
        assert self.extra is not None
        return _fields_in(self.extra)

    def bind(self, **values: object) -> "FieldsAdapter":
        """A new adapter with more bound fields."""
        return FieldsAdapter(self.logger, {**self.bound, **values})

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(kwargs.get("extra") or {})
        extra[_FIELDS] = {**self.bound, **_fields_in(extra)}
        kwargs["extra"] = extra
        return msg, kwargs


def bind(logger: logging.Logger, **values: object) -> FieldsAdapter:
    """A logger that adds ``values`` as fields to every record it logs."""
    return FieldsAdapter(logger, values)


def _timestamp(record: logging.LogRecord) -> str:
    when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z INFO oxidicom.x message key=value ...``, for people.

    A traceback, when there is one, follows on the next lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not message.isprintable():
            # Messages quote what peers send (AE titles...): a newline in one must not
            # forge a log line, nor an escape sequence drive the terminal.
            message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        parts = [_timestamp(record), record.levelname, record.name, message]
        parts.extend(f"{key}={_text_value(value)}" for key, value in record_fields(record).items())
        line = " ".join(parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


def _text_value(value: object) -> str:
    text = str(value)
    # str methods, not a loop over the characters: this runs for every field of every line.
    if text.isprintable() and text and " " not in text and '"' not in text and "=" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, then the fields.

    Tracebacks go in ``exc`` (and ``stack``) so that every record stays one line.
    A field named like one of those keys gets a trailing ``_``.
    """

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            obj[f"{key}_" if key in _JSON_KEYS else key] = _json_value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            obj["exc"] = record.exc_text
        if record.stack_info:
            obj["stack"] = self.formatStack(record.stack_info)
        return json.dumps(obj, ensure_ascii=False, default=str)


def _json_value(value: object) -> object:
    # JSON has no NaN or infinity; json.dumps would write invalid JSON for them.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class _OxidicomHandler(logging.StreamHandler[TextIO]):
    """Marks the handler configure_logging installed, so that calling it again replaces it."""


def configure_logging(
    level: int | str = logging.INFO, fmt: LogFormat = "text", stream: TextIO | None = None
) -> None:
    """Send log records to ``stream`` (default: stderr) as ``fmt`` lines.

    ``level`` applies to oxidicom's own loggers. Other libraries (nats, ...) log at
    ``level`` too, but never below INFO: their debug output drowns ours. The AMQP client
    (aio-pika, aiormq) logs only critical messages unless ``level`` is DEBUG.
    Calling this again replaces the previous configuration.
    """
    numeric = logging.getLevelNamesMapping().get(level.upper()) if isinstance(level, str) else level
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r}, expected 'text' or 'json'")
    handler = _OxidicomHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OxidicomHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.INFO))
    logging.getLogger("oxidicom").setLevel(numeric)
    for name in _QUIET_UNLESS_DEBUG:
        logging.getLogger(name).setLevel(
            logging.NOTSET if numeric <= logging.DEBUG else logging.CRITICAL
        )
    logging.captureWarnings(True)
