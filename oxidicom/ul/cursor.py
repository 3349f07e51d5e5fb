"""Big-endian cursors over PDU bytes: ``pull_*`` reads, ``push_*`` writes.

Every ``pull`` checks that the bytes are really there and raises
:class:`~oxidicom.ul.errors.RemoteProtocolError` otherwise, so a decoder written with these
cannot index past its input whatever length a peer declares. ``Reader.sub`` hands out a
reader bounded by a declared length, which is how nested items are kept inside their parent.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

from oxidicom.ul.errors import LocalProtocolError, RemoteProtocolError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class Reader:
    """Reads from ``data[start:end]``; never beyond ``end``."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes | memoryview, start: int = 0, end: int | None = None) -> None:
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def at_end(self) -> bool:
        return self._pos >= self._end

    def _need(self, n: int, what: str) -> None:
        if self._end - self._pos < n:
            raise RemoteProtocolError(f"{what}: needs {n} bytes, only {self._end - self._pos} left")

    def pull_uint8(self, what: str = "field") -> int:
        self._need(1, what)
        value = self._data[self._pos]
        self._pos += 1
        return value

    def pull_uint16(self, what: str = "field") -> int:
        self._need(2, what)
        (value,) = _U16.unpack_from(self._data, self._pos)
        self._pos += 2
        return int(value)

    def pull_uint32(self, what: str = "field") -> int:
        self._need(4, what)
        (value,) = _U32.unpack_from(self._data, self._pos)
        self._pos += 4
        return int(value)

    def pull_bytes(self, n: int, what: str = "field") -> bytes:
        self._need(n, what)
        value = bytes(self._data[self._pos : self._pos + n])
        self._pos += n
        return value

    def skip(self, n: int, what: str = "field") -> None:
        self._need(n, what)
        self._pos += n

    def sub(self, n: int, what: str) -> Reader:
        """A reader over the next ``n`` bytes, which this reader then skips."""
        self._need(n, what)
        start = self._pos
        self._pos += n
        return Reader(self._data, start, start + n)


class Writer:
    """Appends to a growing buffer; ``length_prefixed`` back-fills a length field."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def push_uint8(self, value: int) -> None:
        self._buf.append(value)

    def push_uint16(self, value: int) -> None:
        self._buf += _U16.pack(value)

    def push_uint32(self, value: int) -> None:
        self._buf += _U32.pack(value)

    def push_bytes(self, value: bytes) -> None:
        self._buf += value

    @contextmanager
    def length_prefixed(self, width: int) -> Iterator[None]:
        """Reserve a ``width``-byte length (2 or 4) and fill it with what the block wrote."""
        at = len(self._buf)
        self._buf += bytes(width)
        yield
        length = len(self._buf) - at - width
        limit = 0xFFFF if width == 2 else 0xFFFFFFFF
        if length > limit:
            raise LocalProtocolError(f"field of {length} bytes exceeds its {width}-byte length")
        (_U16 if width == 2 else _U32).pack_into(self._buf, at, length)
