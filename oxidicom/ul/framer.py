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
from collections.abc import Callable
from typing import Final, NamedTuple, TypeAlias

from oxidicom.ul.constants import PDU_HEADER_LENGTH, PDV_HEADER_LENGTH, AbortReason, PduType
from oxidicom.ul.errors import RemoteProtocolError
from oxidicom.ul.events import PDataChunk, PDataRun

HARD_PDU_LENGTH_CAP: Final = 16 * 1024 * 1024
"""Largest P-DATA-TF accepted in lenient mode, whatever we advertised (16 MiB)."""

ASSOCIATE_LENGTH_CAP: Final = 1024 * 1024
"""Largest A-ASSOCIATE-RQ/AC accepted (DCMTK uses the same 1 MB bound)."""

_FIXED_BODY_TYPES: Final = frozenset(
    {PduType.A_ASSOCIATE_RJ, PduType.A_RELEASE_RQ, PduType.A_RELEASE_RP, PduType.A_ABORT}
)
_HEADER = struct.Struct(">BxI")
_PDV_HEADER = struct.Struct(">IBB")
_PDATA_HEADERS = struct.Struct(">BxIIBB")
"""A P-DATA-TF header followed by its first PDV header (12 bytes)."""


class PDataStarted(NamedTuple):
    """A P-DATA-TF header arrived; its PDVs follow as chunks (Evt10 is decided here)."""

    length: int


class PduReceived(NamedTuple):
    """A complete PDU other than P-DATA-TF: its type and variable part."""

    pdu_type: int
    body: bytes


class FramingError(NamedTuple):
    error: RemoteProtocolError


FramerEvent: TypeAlias = PDataStarted | PDataChunk | PDataRun | PduReceived | FramingError


class Framer:
    """Feed bytes with :meth:`feed`, take events with :meth:`next_event` until it says None.

    The parse position is a method (``_step``), kept unbound so that a framer does not
    refer to itself (a closed connection's framer is freed at once, not by the cycle
    collector): one of ``_pdu_header``, ``_pdu_body``, ``_pdv_header``, ``_pdv_data`` or
    ``_failed_step``. This is the per-PDU
    hot path of the receiver, so headers are unpacked in place (``unpack_from``, no slices)
    and a PDV that is already complete in the buffer goes out in one step. With
    ``coalesce``, whole P-DATA-TF PDUs that each hold one data set PDV on the same context
    come out together as one :class:`~oxidicom.ul.events.PDataRun` (no PDataStarted: each
    of them is an Evt10 all the same).
    """

    __slots__ = (
        "_buffer",
        "_coalesce",
        "_context_id",
        "_failed",
        "_header",
        "_is_command",
        "_is_last",
        "_largest_pdata",
        "_max_pdata_length",
        "_pdu_remaining",
        "_pdu_type",
        "_pdv_remaining",
        "_pos",
        "_step",
        "_strict",
        "_view",
    )

    def __init__(
        self, *, max_pdata_length: int = 0, strict: bool = False, coalesce: bool = False
    ) -> None:
        self._view: memoryview = memoryview(b"")
        self._pos = 0
        self._header = bytearray()
        """Partial header bytes (a PDU or PDV header split between two feeds)."""
        self._buffer = bytearray()
        """The partial body of a non-P-DATA PDU."""
        self._step: Callable[[Framer], FramerEvent | None] = Framer._pdu_header
        self._failed = False
        self._pdu_type = 0
        self._pdu_remaining = 0
        self._pdv_remaining = 0
        self._context_id = 0
        self._is_command = False
        self._is_last = False
        self._max_pdata_length = max_pdata_length
        self._strict = strict
        self._largest_pdata = self._pdata_limit()
        self._coalesce = coalesce

    def set_max_pdata_length(self, max_length: int, *, strict: bool | None = None) -> None:
        """Our Maximum Length Received (0 = no limit), once we have advertised it."""
        self._max_pdata_length = max_length
        if strict is not None:
            self._strict = strict
        self._largest_pdata = self._pdata_limit()

    @property
    def failed(self) -> bool:
        return self._failed

    @property
    def at_pdu_boundary(self) -> bool:
        """No partial PDU is held (used to tell a clean close from a truncated PDU)."""
        return (
            self._step is Framer._pdu_header and not self._header and self._pos >= len(self._view)
        )

    @property
    def buffered(self) -> int:
        """Bytes of the stream held as copies: a partial header, or the partial body of a
        non-P-DATA PDU. At most 5 while a P-DATA-TF streams; never more than the PDU caps."""
        return len(self._header) + len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes. The buffer is read in place until it is drained or ``feed`` is called
        again, so it must not change before then. After a failure bytes are dropped."""
        if self._failed:
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

    def next_event(self) -> FramerEvent | None:
        """The next event, or None when more bytes are needed (or after a failure)."""
        return self._step(self)

    def _fail(self, message: str, reason: AbortReason) -> FramingError:
        self._failed = True
        self._step = Framer._failed_step
        self._view = memoryview(b"")
        self._pos = 0
        self._header.clear()
        self._buffer.clear()
        return FramingError(RemoteProtocolError(message, reason))

    def _failed_step(self) -> None:
        return None

    def _take_header(self, size: int) -> tuple[bytes | memoryview, int] | None:
        """Where ``size`` header bytes can be unpacked from: (buffer, offset) in the input,
        or a copy joined from the previous feed; None until all have arrived."""
        view, pos = self._view, self._pos
        header = self._header
        if not header and len(view) - pos >= size:
            self._pos = pos + size
            return view, pos
        piece = view[pos : pos + size - len(header)]
        header += piece
        self._pos = pos + len(piece)
        if len(header) < size:
            return None
        joined = bytes(header)
        header.clear()
        return joined, 0

    def _pdu_header(self) -> FramerEvent | None:
        view, pos = self._view, self._pos
        if not self._header and len(view) - pos >= PDU_HEADER_LENGTH:
            self._pos = pos + PDU_HEADER_LENGTH
            pdu_type, length = _HEADER.unpack_from(view, pos)
        elif pos >= len(view):  # every read ends here: nothing to keep
            return None
        else:
            where = self._take_header(PDU_HEADER_LENGTH)
            if where is None:
                return None
            pdu_type, length = _HEADER.unpack_from(*where)
        if pdu_type == 0x04:  # P-DATA-TF
            problem = self._pdata_length_problem(length)
            if problem is not None:
                return self._fail(problem, AbortReason.INVALID_PDU_PARAMETER_VALUE)
            if self._coalesce:
                run = self._data_run(length)
                if run is not None:
                    return run
            self._pdu_remaining = length
            self._step = Framer._pdv_header
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
        self._step = Framer._pdu_body
        return self._pdu_body()

    def _pdata_limit(self) -> int:
        """The longest P-DATA-TF accepted: our maximum when strict, else the hard cap (or
        our maximum, if we advertised more). Kept in ``_largest_pdata``: it is checked for
        every PDU."""
        if self._strict and self._max_pdata_length:
            return self._max_pdata_length
        return max(HARD_PDU_LENGTH_CAP, self._max_pdata_length)

    def _pdata_length_problem(self, length: int) -> str | None:
        """Why a P-DATA-TF of ``length`` bytes must be refused, or None."""
        if length > self._largest_pdata:
            if self._strict and self._max_pdata_length:
                return (
                    f"P-DATA-TF of {length} bytes exceeds our maximum length "
                    f"{self._max_pdata_length}"
                )
            return (
                f"P-DATA-TF of {length} bytes exceeds the hard cap of {HARD_PDU_LENGTH_CAP} bytes"
            )
        if length < PDV_HEADER_LENGTH:
            return f"P-DATA-TF of {length} bytes cannot hold a PDV item"
        return None

    def _data_run(self, length: int) -> PDataRun | None:
        """The P-DATA-TF whose header was just read, and the ones after it, as one run: each
        whole in the buffer, one data set PDV filling it, same context, none after the last
        fragment. None if the first does not qualify (the PDV path takes it).

        A PDU that does not qualify ends the run and is read the ordinary way next, with
        every check (lengths included) made there.
        """
        view, pos = self._view, self._pos
        end = len(view)
        if end - pos < length:
            return None
        item_length, context_id, control = _PDV_HEADER.unpack_from(view, pos)
        if item_length != length - 4 or control & 1:
            return None
        chunks = [view[pos + PDV_HEADER_LENGTH : pos + length]]
        pos += length
        is_last = control & 2
        unpack = _PDATA_HEADERS.unpack_from
        largest = self._largest_pdata
        while not is_last and end - pos >= 12:
            pdu_type, length, item_length, next_context, control = unpack(view, pos)
            if (
                pdu_type != 0x04
                or next_context != context_id
                or control & 1
                or item_length != length - 4
                or end - pos - PDU_HEADER_LENGTH < length
                or not PDV_HEADER_LENGTH <= length <= largest
            ):
                break
            chunks.append(view[pos + 12 : pos + PDU_HEADER_LENGTH + length])
            pos += PDU_HEADER_LENGTH + length
            is_last = control & 2
        self._pos = pos
        return PDataRun(context_id, bool(is_last), chunks)

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
        self._step = Framer._pdu_header
        return PduReceived(self._pdu_type, body)

    def _pdv_header(self) -> FramerEvent | None:
        pdu_remaining = self._pdu_remaining - PDV_HEADER_LENGTH
        if pdu_remaining < 0:
            return self._fail(
                f"P-DATA-TF has {self._pdu_remaining} bytes left, too few for a PDV item",
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        view, pos = self._view, self._pos
        if not self._header and len(view) - pos >= PDV_HEADER_LENGTH:
            pos += PDV_HEADER_LENGTH
            item_length, context_id, control = _PDV_HEADER.unpack_from(view, pos - 6)
        else:
            where = self._take_header(PDV_HEADER_LENGTH)
            if where is None:
                return None
            item_length, context_id, control = _PDV_HEADER.unpack_from(*where)
            pos = self._pos
        data_length = item_length - 2
        if data_length < 0 or data_length > pdu_remaining:
            return self._fail(
                f"PDV item length {item_length} does not fit in its P-DATA-TF "
                f"({pdu_remaining + 2} bytes left for it)",
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        is_command = bool(control & 1)
        is_last = bool(control & 2)
        if len(view) - pos >= data_length:
            # The whole PDV is here (the common case): one event, no state kept.
            self._pos = pos + data_length
            self._pdu_remaining = pdu_remaining = pdu_remaining - data_length
            self._step = Framer._pdv_header if pdu_remaining else Framer._pdu_header
            return PDataChunk(context_id, is_command, is_last, view[pos : pos + data_length])
        self._pos = pos
        self._pdu_remaining = pdu_remaining
        self._pdv_remaining = data_length
        self._context_id = context_id
        self._is_command = is_command
        self._is_last = is_last
        self._step = Framer._pdv_data
        return self._pdv_data()

    def _pdv_data(self) -> FramerEvent | None:
        view, pos = self._view, self._pos
        available = len(view) - pos
        if available <= 0:
            return None
        remaining = self._pdv_remaining
        if available >= remaining:
            self._pos = pos + remaining
            self._pdu_remaining = pdu_remaining = self._pdu_remaining - remaining
            self._pdv_remaining = 0
            self._step = Framer._pdv_header if pdu_remaining else Framer._pdu_header
            return PDataChunk(
                self._context_id, self._is_command, self._is_last, view[pos : pos + remaining]
            )
        self._pos = pos + available
        self._pdv_remaining = remaining - available
        self._pdu_remaining -= available
        return PDataChunk(self._context_id, self._is_command, False, view[pos:])
