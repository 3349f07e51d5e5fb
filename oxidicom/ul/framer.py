"""Cuts the incoming byte stream into PDUs, incrementally, in constant memory.

Whatever the chunking of the stream, the same events come out (up to how data pieces are
split). A P-DATA-TF is never reassembled: after its header, each PDV is handed on as
:class:`~oxidicom.ul.events.PDataChunk` views into the caller's buffer as its bytes arrive,
so the framer holds at most one PDV header of a P-DATA-TF, or one whole PDU of another type
(capped, and those are small). Lengths are checked before anything is buffered: a header
announcing 4 GB is an error at once, never an allocation.

Errors are returned as :class:`FramingError` events, not raised: the association turns them
into Evt19. After an error the framer is spent (the stream cannot be resynchronised).
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple, TypeAlias

from oxidicom.ul.constants import PDU_HEADER_LENGTH, PDV_HEADER_LENGTH, AbortReason, PduType
from oxidicom.ul.errors import RemoteProtocolError
from oxidicom.ul.events import PDataChunk

HARD_PDU_LENGTH_CAP: Final = 16 * 1024 * 1024
"""Largest P-DATA-TF accepted in lenient mode, whatever we advertised (16 MiB)."""

ASSOCIATE_LENGTH_CAP: Final = 1024 * 1024
"""Largest A-ASSOCIATE-RQ/AC accepted (DCMTK uses the same 1 MB bound)."""

_FIXED_BODY_TYPES: Final = frozenset(
    {PduType.A_ASSOCIATE_RJ, PduType.A_RELEASE_RQ, PduType.A_RELEASE_RP, PduType.A_ABORT}
)
_HEADER = struct.Struct(">BxI")
_PDV_HEADER = struct.Struct(">IBB")


class PDataStarted(NamedTuple):
    """A P-DATA-TF header arrived; its PDVs follow as chunks (Evt10 is decided here)."""

    length: int


class PduReceived(NamedTuple):
    """A complete PDU other than P-DATA-TF: its type and variable part."""

    pdu_type: int
    body: bytes


class FramingError(NamedTuple):
    error: RemoteProtocolError


FramerEvent: TypeAlias = PDataStarted | PDataChunk | PduReceived | FramingError


class _Phase:
    PDU_HEADER = 0
    PDU_BODY = 1
    PDV_HEADER = 2
    PDV_DATA = 3
    FAILED = 4


class Framer:
    """Feed bytes with :meth:`feed`, take events with :meth:`next_event` until it says None."""

    __slots__ = (
        "_buffer",
        "_context_id",
        "_header",
        "_is_command",
        "_is_last",
        "_max_pdata_length",
        "_pdu_remaining",
        "_pdu_type",
        "_pdv_remaining",
        "_phase",
        "_pos",
        "_strict",
        "_view",
    )

    def __init__(self, *, max_pdata_length: int = 0, strict: bool = False) -> None:
        self._view: memoryview = memoryview(b"")
        self._pos = 0
        self._header = bytearray()
        """Partial header bytes, or the partial body of a non-P-DATA PDU."""
        self._phase = _Phase.PDU_HEADER
        self._pdu_type = 0
        self._pdu_remaining = 0
        self._pdv_remaining = 0
        self._context_id = 0
        self._is_command = False
        self._is_last = False
        self._buffer = bytearray()
        self._max_pdata_length = max_pdata_length
        self._strict = strict

    def set_max_pdata_length(self, max_length: int, *, strict: bool | None = None) -> None:
        """Our Maximum Length Received (0 = no limit), once we have advertised it."""
        self._max_pdata_length = max_length
        if strict is not None:
            self._strict = strict

    @property
    def failed(self) -> bool:
        return self._phase == _Phase.FAILED

    @property
    def at_pdu_boundary(self) -> bool:
        """No partial PDU is held (used to tell a clean close from a truncated PDU)."""
        return (
            self._phase == _Phase.PDU_HEADER and not self._header and self._pos >= len(self._view)
        )

    @property
    def buffered(self) -> int:
        """Bytes of the stream held as copies: a partial header, or the partial body of a
        non-P-DATA PDU. At most 5 while a P-DATA-TF streams; never more than the PDU caps."""
        return len(self._header) + len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes. The buffer is read in place until it is drained or ``feed`` is called
        again, so it must not change before then. After a failure bytes are dropped."""
        if self._phase == _Phase.FAILED:
            # Nothing will ever read them: keeping them would grow without bound while the
            # association waits (ARTIM) for the peer to close.
            return
        if self._pos < len(self._view):
            # The caller fed again before draining: keep the rest before its buffer changes.
            rest = bytes(self._view[self._pos :])
            self._view = memoryview(rest + bytes(data))
        else:
            self._view = data if isinstance(data, memoryview) else memoryview(data)
        self._pos = 0

    def _fail(self, message: str, reason: AbortReason) -> FramingError:
        self._phase = _Phase.FAILED
        self._view = memoryview(b"")
        self._pos = 0
        self._header.clear()
        self._buffer.clear()
        return FramingError(RemoteProtocolError(message, reason))

    def _take_header(self, size: int) -> bytes | memoryview | None:
        """``size`` header bytes, from the partial buffer and the input, or None for more."""
        view, pos = self._view, self._pos
        if not self._header and len(view) - pos >= size:
            self._pos = pos + size
            return view[pos : pos + size]
        need = size - len(self._header)
        piece = view[pos : pos + need]
        self._header += piece
        self._pos = pos + len(piece)
        if len(self._header) < size:
            return None
        header = bytes(self._header)
        self._header.clear()
        return header

    def next_event(self) -> FramerEvent | None:
        """The next event, or None when more bytes are needed (or after a failure)."""
        phase = self._phase
        if phase == _Phase.PDV_DATA:
            return self._pdv_data()
        if phase == _Phase.PDV_HEADER:
            return self._pdv_header()
        if phase == _Phase.PDU_HEADER:
            return self._pdu_header()
        if phase == _Phase.PDU_BODY:
            return self._pdu_body()
        return None

    def _pdu_header(self) -> FramerEvent | None:
        header = self._take_header(PDU_HEADER_LENGTH)
        if header is None:
            return None
        pdu_type, length = _HEADER.unpack(header)
        if pdu_type == PduType.P_DATA_TF:
            if self._strict and 0 < self._max_pdata_length < length:
                return self._fail(
                    f"P-DATA-TF of {length} bytes exceeds our maximum length "
                    f"{self._max_pdata_length}",
                    AbortReason.INVALID_PDU_PARAMETER_VALUE,
                )
            if length > max(HARD_PDU_LENGTH_CAP, self._max_pdata_length):
                return self._fail(
                    f"P-DATA-TF of {length} bytes exceeds the hard cap of "
                    f"{HARD_PDU_LENGTH_CAP} bytes",
                    AbortReason.INVALID_PDU_PARAMETER_VALUE,
                )
            if length < PDV_HEADER_LENGTH:
                return self._fail(
                    f"P-DATA-TF of {length} bytes cannot hold a PDV item",
                    AbortReason.INVALID_PDU_PARAMETER_VALUE,
                )
            self._pdu_remaining = length
            self._phase = _Phase.PDV_HEADER
            return PDataStarted(length)
        if pdu_type in (PduType.A_ASSOCIATE_RQ, PduType.A_ASSOCIATE_AC):
            if length > ASSOCIATE_LENGTH_CAP:
                return self._fail(
                    f"A-ASSOCIATE PDU of {length} bytes exceeds the cap of "
                    f"{ASSOCIATE_LENGTH_CAP} bytes",
                    AbortReason.INVALID_PDU_PARAMETER_VALUE,
                )
        elif pdu_type in _FIXED_BODY_TYPES:
            if length != 4:
                return self._fail(
                    f"{PduType(pdu_type).name} PDU has length {length}, PS3.8 fixes it at 4",
                    AbortReason.INVALID_PDU_PARAMETER_VALUE,
                )
        else:
            return self._fail(
                f"unrecognized PDU type 0x{pdu_type:02X}", AbortReason.UNRECOGNIZED_PDU
            )
        self._pdu_type = pdu_type
        self._pdu_remaining = length
        self._phase = _Phase.PDU_BODY
        return self._pdu_body()

    def _pdu_body(self) -> FramerEvent | None:
        view, pos = self._view, self._pos
        need = self._pdu_remaining
        if not self._buffer and len(view) - pos >= need:
            body = bytes(view[pos : pos + need])
            self._pos = pos + need
        else:
            piece = view[pos : pos + need - len(self._buffer)]
            self._buffer += piece
            self._pos = pos + len(piece)
            if len(self._buffer) < need:
                return None
            body = bytes(self._buffer)
            self._buffer.clear()
        self._phase = _Phase.PDU_HEADER
        return PduReceived(self._pdu_type, body)

    def _pdv_header(self) -> FramerEvent | None:
        if self._pdu_remaining < PDV_HEADER_LENGTH:
            return self._fail(
                f"P-DATA-TF has {self._pdu_remaining} bytes left, too few for a PDV item",
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        header = self._take_header(PDV_HEADER_LENGTH)
        if header is None:
            return None
        item_length, context_id, control = _PDV_HEADER.unpack(header)
        self._pdu_remaining -= PDV_HEADER_LENGTH
        if item_length < 2 or item_length - 2 > self._pdu_remaining:
            return self._fail(
                f"PDV item length {item_length} does not fit in its P-DATA-TF "
                f"({self._pdu_remaining + 2} bytes left for it)",
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        self._pdv_remaining = item_length - 2
        self._context_id = context_id
        self._is_command = bool(control & 1)
        self._is_last = bool(control & 2)
        self._phase = _Phase.PDV_DATA
        if self._pdv_remaining == 0:
            # An empty PDV is legal (e.g. the last fragment of a message): report it.
            self._end_of_pdv()
            return PDataChunk(context_id, self._is_command, self._is_last, memoryview(b""))
        return self._pdv_data()

    def _pdv_data(self) -> FramerEvent | None:
        view, pos = self._view, self._pos
        available = len(view) - pos
        if available <= 0:
            return None
        remaining = self._pdv_remaining
        if available >= remaining:
            self._pos = pos + remaining
            self._pdu_remaining -= remaining
            self._end_of_pdv()
            return PDataChunk(
                self._context_id, self._is_command, self._is_last, view[pos : pos + remaining]
            )
        self._pos = pos + available
        self._pdv_remaining = remaining - available
        self._pdu_remaining -= available
        return PDataChunk(self._context_id, self._is_command, False, view[pos:])

    def _end_of_pdv(self) -> None:
        self._pdv_remaining = 0
        self._phase = _Phase.PDV_HEADER if self._pdu_remaining else _Phase.PDU_HEADER
