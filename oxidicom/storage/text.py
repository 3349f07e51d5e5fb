"""Decoding the text values we keep, with the data set's Specific Character Set.

pydicom does the hard part (ISO 2022 code extensions for Japanese and Korean, GB18030,
UTF-8, the ISO 8859 family) but it reports bad input by warning *and* logging every
time. A receiver sees the same bad peer thousands of times, so here invalid bytes become
U+FFFD quietly: pydicom's complaints are captured and logged at DEBUG only.
Only the rare paths call into pydicom: values with escape sequences, and each distinct
Specific Character Set value once (cached).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import warnings
from collections.abc import Iterator

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.valuerep import PN_DELIMS, TEXT_VR_DELIMS

__all__ = ["decode_ascii", "decode_text", "python_encodings"]

logger = logging.getLogger(__name__)

_ESC = 0x1B
_DEFAULT_ENCODING = "latin_1"
"""What pydicom uses for ISO_IR 6 and for VRs outside the character set's reach."""
_PN_DELIMITERS = frozenset(PN_DELIMS | {ord("=")})
_TEXT_DELIMITERS = frozenset(TEXT_VR_DELIMS)

_captured: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "oxidicom_pydicom_captured", default=None
)
# warnings.catch_warnings swaps process-wide state: never let two threads nest it.
_capture_lock = threading.Lock()


class _CaptureFilter(logging.Filter):
    """Divert pydicom's log records into the active capture, if there is one."""

    def filter(self, record: logging.LogRecord) -> bool:
        sink = _captured.get()
        if sink is None:
            return True
        sink.append(record.getMessage())
        return False


logging.getLogger("pydicom").addFilter(_CaptureFilter())


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[list[str]]:
    messages: list[str] = []
    token = _captured.set(messages)
    try:
        with _capture_lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages.extend(str(warning.message) for warning in caught)
    finally:
        _captured.reset(token)
    for message in dict.fromkeys(messages):
        logger.debug("pydicom: %s", message)


@functools.lru_cache(maxsize=64)
def python_encodings(specific_character_set: bytes | None) -> tuple[str, ...]:
    """Python codecs for the raw value of (0008,0005) Specific Character Set.

    Absent or empty means the default repertoire. Unknown terms fall back to it, as in
    pydicom (with one warning per distinct value, not per instance).
    """
    terms = [
        term.strip(" \0") for term in (specific_character_set or b"").decode("latin_1").split("\\")
    ]
    if not any(terms):
        return (_DEFAULT_ENCODING,)
    with _quiet_pydicom() as messages:
        try:
            encodings = convert_encodings(terms)
        except (LookupError, ValueError) as error:  # only in pydicom's RAISE mode
            messages.append(str(error))
            encodings = [_DEFAULT_ENCODING]
    if messages:
        summary = "; ".join(dict.fromkeys(messages))
        logger.warning("Specific Character Set %r: %s", specific_character_set, summary)
    return tuple(encodings)


def decode_text(raw: bytes, encodings: tuple[str, ...], *, person_name: bool = False) -> str:
    """Decode a value of a VR subject to the character set (SH, LO, PN...); never raises.

    Person names reset the character set at ``^`` and ``=`` as PS3.5 §6.1.2.5.3 says, so
    each component group may use its own escape sequences.
    """
    first = encodings[0]
    if _ESC not in raw:
        try:
            return raw.decode(first)
        except (UnicodeError, LookupError):
            return _fallback(raw, first)
    delimiters = _PN_DELIMITERS if person_name else _TEXT_DELIMITERS
    with _quiet_pydicom():
        try:
            return decode_bytes(raw, list(encodings), set(delimiters))
        except (UnicodeError, LookupError, ValueError):  # only in pydicom's RAISE mode
            return _fallback(raw, first)


def decode_ascii(raw: bytes) -> str:
    """Decode a value of a VR limited to the default repertoire (CS, DA, AS, IS, UI)."""
    return raw.decode(_DEFAULT_ENCODING)


def _fallback(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding, errors="replace")
    except LookupError:
        return raw.decode(_DEFAULT_ENCODING)
