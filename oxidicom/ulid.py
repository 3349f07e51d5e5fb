"""ULIDs name associations in logs, traces and spans, as the Rust oxidicom does.

A ULID (https://github.com/ulid/spec) is 128 bits: a 48-bit Unix time in
milliseconds, then 80 random bits, written as 26 characters of Crockford's
base32. Their text sorts by creation time (to the millisecond), which makes
log lines and traces of one association easy to find and order.
"""

import secrets
import time

__all__ = ["new_ulid", "ulid_time"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DIGITS = frozenset(_ALPHABET)
_MAX_MS = 2**48 - 1


def new_ulid(now: float | None = None) -> str:
    """A new ULID for Unix time ``now`` in seconds (default: the current time)."""
    ms = time.time_ns() // 1_000_000 if now is None else round(now * 1000)
    if not 0 <= ms <= _MAX_MS:
        raise ValueError(f"a ULID cannot hold the time {now!r}")
    value = ms << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def ulid_time(ulid: str) -> float:
    """The Unix time in seconds (to the millisecond) at which ``ulid`` was made."""
    if len(ulid) != 26 or ulid[0] > "7" or not set(ulid.upper()) <= _DIGITS:
        raise ValueError(f"not a ULID: {ulid!r}")
    ms = 0
    for char in ulid[:10].upper():  # 2 zero bits, then the 48-bit time
        ms = ms << 5 | _ALPHABET.index(char)
    return ms / 1000
