"""Reading the few tags we need from a data set while it streams in.

A C-STORE data set arrives in PDU-sized pieces, often megabytes of pixel data behind a
few kilobytes of header. :class:`HeaderReader` walks the top-level elements as the bytes
arrive, in any chunking, keeps the values of the tags CUBE needs, and counts its way past
everything else without buffering it: private blobs, sequences of any nesting (defined
or undefined length, explicit or implicit VR inside), a stray group 0002. Top-level tags
come in ascending order, so the first one past (0020,0013) InstanceNumber makes the tags
final (:attr:`HeaderReader.done`).

The reader then walks on to the data set's end, keeping nothing: element headers only, each
value skipped by its length (Pixel Data in one subtraction per fragment). So
:meth:`HeaderReader.end` can tell a data set that ended inside an element (a peer that cut
it short) from a complete one, and a file is never stored truncated. A deflated data set
is inflated to its end for that, and must also end with its deflate stream; past the
header, its inflated bytes may be at most :data:`MAX_INFLATED` plus
:data:`TAIL_INFLATE_RATIO` times its compressed bytes, beyond which its end goes unchecked
rather than cost the event loop more than a few times the CPU of storing it.

The reader holds at most the kept values (each capped at 64 KiB) and one partial
element header. For deflated transfer syntaxes it inflates incrementally, at most
``_INFLATE_STEP`` bytes at a time, stops inflating once done, and gives up (the data set is
malformed) past :data:`MAX_INFLATED` bytes, so a decompression bomb costs neither memory
nor more than a moment of CPU.

It is a parser only: no I/O, and ``feed`` never raises on bad input. Malformed data
ends the walk; :meth:`HeaderReader.result` (in the header) or :meth:`HeaderReader.end`
(anywhere) then raises :class:`HeaderError`.

Like pydicom, it accepts a data set whose first element contradicts the transfer
syntax's VR encoding (implicit VR sent as explicit or the reverse; logged as a warning),
and undefined-length items encoded in implicit VR inside an explicit VR data set.
"""

from __future__ import annotations

import functools
import logging
import struct
import zlib
from collections.abc import Sequence
from typing import Final

import attrs
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.valuerep import CUSTOMIZABLE_CHARSET_VR

from oxidicom.storage.events import InstanceTags
from oxidicom.storage.text import decode_ascii, decode_text, python_encodings
from oxidicom.storage.transfer_syntax import dataset_encoding

__all__ = ["MAX_INFLATED", "MAX_VALUE_LENGTH", "TAIL_INFLATE_RATIO", "HeaderError", "HeaderReader"]

logger = logging.getLogger(__name__)

MAX_VALUE_LENGTH: Final = 64 * 1024
"""Longest value we keep; a longer one for a tag we need means a broken data set."""

_INFLATE_STEP: Final = 64 * 1024
MAX_INFLATED: Final = 64 * 1024 * 1024
"""Most inflated bytes walked to reach the header's end: a deflate bomb (1000:1) placed before
the tags would otherwise cost seconds of CPU per megabyte received, on the event loop."""
TAIL_INFLATE_RATIO: Final = 32
"""Past the header, a deflated data set is walked to its end while it has inflated to at most
MAX_INFLATED plus this many times its compressed size (images deflate 2-5:1; a blank one more)."""
_UNDEFINED: Final = 0xFFFFFFFF
_NEVER: Final = 1 << 62
_ITEM: Final = 0xFFFEE000
_ITEM_DELIMITER: Final = 0xFFFEE00D
_SEQUENCE_DELIMITER: Final = 0xFFFEE0DD
_SPECIFIC_CHARACTER_SET: Final = 0x00080005
# VRs whose explicit encoding has 2 reserved bytes and a 32-bit length (PS3.5 Table 7.1-1).
_LONG_VRS: Final = frozenset(
    vr.encode()
    for vr in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV")
)
_SHORT_VRS: Final = frozenset(
    vr.encode()
    for vr in (
        *("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN"),
        *("SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"),
    )
)


class HeaderError(Exception):
    """The data set is malformed or ended early; ``str()`` says how, for a LONK error."""

    def __init__(self, message: str, tags: InstanceTags | None = None) -> None:
        super().__init__(message)
        self.tags = InstanceTags() if tags is None else tags
        """What could be read before the problem (a rejection still names its series)."""


@attrs.frozen
class _Wanted:
    keyword: str
    charset: bool
    """Decoded with the Specific Character Set (SH, LO, PN) rather than as ASCII."""
    person_name: bool


def _wanted_tags() -> dict[int, _Wanted]:
    keywords = [field.name for field in attrs.fields(InstanceTags)]
    wanted = {}
    for keyword in [*keywords, "SpecificCharacterSet"]:
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        vr = dictionary_VR(tag)
        wanted[tag] = _Wanted(keyword, vr in CUSTOMIZABLE_CHARSET_VR, vr == "PN")
    return wanted


_WANTED: Final = _wanted_tags()
_LAST_WANTED: Final = max(_WANTED)


@attrs.frozen
class _Codec:
    """How element headers are encoded at one nesting level."""

    implicit: bool
    little_endian: bool

    @property
    def prefix(self) -> str:
        return "<" if self.little_endian else ">"


class _Structs:
    """Precompiled element header layouts for one codec."""

    __slots__ = (
        "codec",
        "explicit_header",
        "implicit_header",
        "implicit_vr",
        "tail_explicit",
        "tail_implicit",
        "u32",
    )

    def __init__(self, codec: _Codec) -> None:
        self.codec = codec
        self.implicit_vr = codec.implicit
        self.implicit_header = struct.Struct(codec.prefix + "HHI")
        self.explicit_header = struct.Struct(codec.prefix + "HH2sH")
        self.tail_explicit = struct.Struct(codec.prefix + "4x2sH")  # VR, length
        self.tail_implicit = struct.Struct(codec.prefix + "H2xI")  # group, length
        self.u32 = struct.Struct(codec.prefix + "I")


_STRUCTS: Final = {
    codec: _Structs(codec)
    for codec in (
        _Codec(implicit, little) for implicit in (True, False) for little in (True, False)
    )
}


@functools.lru_cache(maxsize=64)
def _top_level_codec(transfer_syntax_uid: str) -> tuple[_Structs, bool]:
    """The element layouts of a transfer syntax's data set, and whether it is deflated
    (looked up once per transfer syntax, not once per instance)."""
    encoding = dataset_encoding(transfer_syntax_uid)
    if encoding is None:
        raise ValueError(f"cannot read data sets of transfer syntax {transfer_syntax_uid!r}")
    return _STRUCTS[_Codec(encoding.implicit_vr, encoding.little_endian)], encoding.deflated


class HeaderReader:
    """Incremental reader of the tags in :class:`~oxidicom.storage.events.InstanceTags`.

    ``transfer_syntax_uid`` must be one :func:`~oxidicom.storage.transfer_syntax.dataset_encoding`
    knows (else :class:`ValueError`: the association should not have accepted it).
    """

    def __init__(self, transfer_syntax_uid: str) -> None:
        top, deflated = _top_level_codec(transfer_syntax_uid)
        self._top = top
        self._structs = top
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS) if deflated else None
        self._inflated = 0
        self._compressed = 0
        self._done = False
        self._walking = True
        self._error: str | None = None
        self._end_error: str | None = None
        self._result: InstanceTags | None = None
        self._values: dict[int, bytes] = {}
        # Nesting: depth 0 is the data set, odd depths are inside an undefined-length
        # sequence (items expected), even depths > 0 inside an undefined-length item.
        self._depth = 0
        # This level and the ones nested in it use implicit VR (inside a UN of undefined
        # length, or an item that turned out to be implicit VR in an explicit VR data set).
        self._implicit_from = _NEVER
        self._implicit_little_endian = True
        self._first_element = True
        self._pending = bytearray()  # an element header split across feeds
        self._skip = 0
        self._value_tag: int | None = None
        self._value_length = 0
        self._partial = bytearray()  # a kept value split across feeds
        self._tag = 0  # tag of the element being read, for messages
        self._position = 0  # data set bytes consumed before the current chunk
        self._element_start = 0

    @property
    def done(self) -> bool:
        """True once more data cannot change :meth:`result` (all needed tags seen, or an
        error)."""
        return self._done

    @property
    def walking(self) -> bool:
        """True while the next bytes are still read: before :attr:`done`, and after it
        until the data set's end, for :meth:`end` (not after an error, nor past the
        inflation allowed for checking a deflated one)."""
        return self._walking

    @property
    def retained_bytes(self) -> int:
        """Bytes the reader holds: kept values and partial header or value (for tests)."""
        return len(self._pending) + len(self._partial) + sum(map(len, self._values.values()))

    def feed(self, data: bytes | bytearray | memoryview) -> bool:
        """Walk the next bytes of the data set; return :attr:`done`.

        ``data`` is only read during the call (nothing keeps a reference to it); once
        :attr:`walking` is False, not at all.
        """
        if not self._walking:
            return True
        if isinstance(data, memoryview) and data.format != "B":
            data = data.cast("B")
        if self._inflater is None:
            if not self._skipped(len(data)):
                self._walk(data)
            return self._done
        inflater = self._inflater
        if inflater.eof:  # bytes after the deflate stream (padding): nothing to walk
            return self._done
        self._compressed += len(data)
        pending: bytes | bytearray | memoryview = data
        while True:
            try:
                out = inflater.decompress(pending, _INFLATE_STEP)
            except zlib.error as error:
                self._fail(f"invalid deflate data ({error})")
                break
            if self._walk(out):
                break
            self._inflated += len(out)
            if self._inflated > MAX_INFLATED and not self._done:
                self._fail(f"the data set inflates past {MAX_INFLATED} bytes before its header")
                break
            if self._inflated > MAX_INFLATED + TAIL_INFLATE_RATIO * self._compressed:
                logger.debug(
                    "deflated data set inflates past %d:1, end unchecked", TAIL_INFLATE_RATIO
                )
                self._finish()
                break
            pending = inflater.unconsumed_tail
            # A full step may leave output inside zlib even without pending input.
            if inflater.eof or (not pending and len(out) < _INFLATE_STEP):
                break
        return self._done

    def feed_all(self, chunks: Sequence[bytes | memoryview]) -> bool:
        """:meth:`feed` each of ``chunks`` (one PDU batch) in turn; return :attr:`done`.

        Inside a skipped value, the usual case past the header, the whole batch is one
        subtraction rather than a call per fragment.
        """
        if self._skip and self._walking and self._inflater is None:
            size = 0
            for chunk in chunks:
                size += chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)
            if self._skipped(size):
                return self._done
        for chunk in chunks:
            self.feed(chunk)
        return self._done

    def result(self) -> InstanceTags:
        """The tags found; call when :attr:`done` or after the last byte of the data set.

        Raises :class:`HeaderError` if the data set was malformed or ended inside an
        element before the tags were complete. Absent tags are ``None``; values are decoded
        but not trimmed.
        """
        if self._result is None:
            self._result = self._decode()
        problem = self._error
        if problem is None and not self._done:
            problem = self._unfinished()
        if problem is not None:
            raise HeaderError(problem, self._result)
        return self._result

    def end(self) -> InstanceTags:
        """The last byte of the data set has been fed: :meth:`result`, if the data set is
        also whole after the header; else :class:`HeaderError` saying where it breaks."""
        tags = self.result()
        problem = self._end_error
        if problem is None and self._done and self._walking:
            problem = self._unfinished()
        if problem is not None:
            raise HeaderError(problem, tags)
        return tags

    def _skipped(self, size: int) -> bool:
        """Whether the next ``size`` bytes all lie inside a skipped value (Pixel Data): then
        they are counted, and there is nothing to look at."""
        if self._skip < size:
            return False
        self._skip -= size
        self._position += size
        return True

    def _unfinished(self) -> str | None:
        """What the data set was in the middle of, if its bytes stopped here."""
        if self._pending:
            return f"data set ended inside the element header at byte {self._element_start}"
        if self._skip or self._value_tag is not None:
            return f"data set ended inside the value of {_show(self._tag)}"
        if self._depth:
            return "data set ended inside a sequence"
        if self._inflater is not None and not self._inflater.eof:
            return "data set ended before the end of its deflate stream"
        return None

    # -- walking ---------------------------------------------------------------------------

    def _walk(self, data: bytes | bytearray | memoryview) -> bool:
        """Consume ``data``; return True if the walk is over (:attr:`walking` is False)."""
        pos = 0
        end = len(data)
        while pos < end:
            if self._skip:
                left = end - pos
                if self._skip <= left:
                    pos += self._skip
                    self._skip = 0
                else:
                    self._skip -= left
                    pos = end
            elif self._value_tag is not None:
                need = self._value_length - len(self._partial)
                take = need if need <= end - pos else end - pos
                self._partial += data[pos : pos + take]
                pos += take
                if take == need:
                    self._values[self._value_tag] = bytes(self._partial)
                    self._value_tag = None
                    self._partial = bytearray()
            elif self._pending:
                held = len(self._pending)
                take = min(12 - held, end - pos)
                self._pending += data[pos : pos + take]
                used = self._header(self._pending, 0, held + take)
                if used:
                    pos += used - held
                    self._pending.clear()
                else:
                    pos += take
            else:
                if self._depth == 0 and not self._first_element:
                    if self._done:
                        pos = self._tail(data, pos, end)
                    else:
                        pos = self._top_level(data, pos, end)
                    if not self._walking:
                        return True
                    if pos >= end:
                        break
                self._element_start = self._position + pos
                used = self._header(data, pos, end - pos)
                if used:
                    pos += used
                else:
                    self._pending += data[pos:end]
                    pos = end
            if not self._walking:
                return True
        self._position += end
        return False

    def _top_level(self, data: bytes | bytearray | memoryview, pos: int, end: int) -> int:
        """Walk whole top-level elements with a short header and a defined length (nearly all
        of a header) in a tight loop; return where the general path must take over."""
        structs = self._structs
        if structs.implicit_vr:
            return self._top_level_implicit(data, pos, end)
        values = self._values
        unpack = structs.explicit_header.unpack_from
        while end - pos >= 8:
            group, element, vr, length = unpack(data, pos)
            if vr in _LONG_VRS:
                return pos
            tag = group << 16 | element
            if tag > _LAST_WANTED:
                self._tags_complete()
                return self._tail(data, pos, end)
            # A 16-bit length is never undefined nor longer than MAX_VALUE_LENGTH.
            stop = pos + 8 + length
            if stop > end or group == 0xFFFE:
                return pos
            if tag in _WANTED:
                values[tag] = bytes(data[pos + 8 : stop])
            pos = stop
        return pos

    def _top_level_implicit(self, data: bytes | bytearray | memoryview, pos: int, end: int) -> int:
        """:meth:`_top_level` for implicit VR (no VR, 32-bit lengths): a loop of its own, so
        that the explicit VR one, the common case, does not ask the encoding per element."""
        values = self._values
        unpack = self._structs.implicit_header.unpack_from
        while end - pos >= 8:
            group, element, length = unpack(data, pos)
            tag = group << 16 | element
            if tag > _LAST_WANTED:
                self._tags_complete()
                return self._tail(data, pos, end)
            stop = pos + 8 + length
            if group == 0xFFFE or length == _UNDEFINED or stop > end or length > MAX_VALUE_LENGTH:
                return pos
            if tag in _WANTED:
                values[tag] = bytes(data[pos + 8 : stop])
            pos = stop
        return pos

    def _tail(self, data: bytes | bytearray | memoryview, pos: int, end: int) -> int:
        """:meth:`_top_level` past the header: only hop from element to element, over
        whole short elements (explicit VR) or defined-length ones (implicit VR); the general
        path takes the rest (long VRs, delimiters, values that go on in the next chunk)."""
        structs = self._structs
        if structs.implicit_vr:
            unpack = structs.tail_implicit.unpack_from
            while end - pos >= 8:
                group, length = unpack(data, pos)
                stop = pos + 8 + length
                if group == 0xFFFE or length == _UNDEFINED or stop > end:
                    return pos
                pos = stop
            return pos
        unpack = structs.tail_explicit.unpack_from
        while end - pos >= 8:
            vr, length = unpack(data, pos)
            stop = pos + 8 + length
            # Not a short VR: a long one, a delimiter (whose length bytes are no VR), junk.
            if vr not in _SHORT_VRS or stop > end:
                return pos
            pos = stop
        return pos

    def _header(self, buf: bytes | bytearray | memoryview, off: int, avail: int) -> int:
        """Act on the element at ``buf[off:off + avail]``; return the bytes used, 0 if its
        header is incomplete. A value that is all there is kept or skipped at once."""
        if avail < 8:
            return 0
        structs = self._structs
        implicit = structs.implicit_vr
        vr = b""
        length: int
        if implicit:
            group, element, length = structs.implicit_header.unpack_from(buf, off)
        else:
            group, element, vr, length = structs.explicit_header.unpack_from(buf, off)
        tag = group << 16 | element
        self._tag = tag
        depth = self._depth
        if depth == 0 and not self._done and tag > _LAST_WANTED:
            self._tags_complete()
        if group == 0xFFFE:
            self._first_element = False
            if not implicit:
                length = structs.u32.unpack_from(buf, off + 4)[0]
            self._delimiter(tag, length)
            return 8
        if depth & 1:
            self._fail(f"expected an item in a sequence, found {_show(tag)}")
            return 8
        if self._first_element and self._switch_vr_encoding(buf, off):
            return self._header(buf, off, avail)
        size = 8
        if vr in _LONG_VRS:
            if avail < 12:
                return 0
            length = structs.u32.unpack_from(buf, off + 8)[0]
            size = 12
        self._first_element = False
        if length == _UNDEFINED:
            # A sequence (SQ, UN or anything in implicit VR) or encapsulated pixel data:
            # items follow until a sequence delimiter.
            # The value of UN is implicit VR little endian, whatever the data set's encoding.
            self._enter(depth + 1, implicit=vr == b"UN", little_endian=True)
            return size
        rest = avail - size
        if depth == 0 and not self._done and tag in _WANTED and vr != b"SQ":
            if length > MAX_VALUE_LENGTH:
                self._fail(f"{_WANTED[tag].keyword} is {length} bytes long")
                return size
            start = off + size
            if length <= rest:
                self._values[tag] = bytes(buf[start : start + length])
                return size + length
            self._value_tag = tag
            self._value_length = length
            self._partial = bytearray(buf[start : off + avail])
            return avail
        if length <= rest:
            return size + length
        self._skip = length - rest
        return avail

    def _delimiter(self, tag: int, length: int) -> None:
        depth = self._depth
        if tag == _ITEM and depth & 1:
            if length == _UNDEFINED:
                self._enter(depth + 1)
                self._first_element = not self._structs.implicit_vr
            else:
                self._skip = length
        elif depth and tag == (_SEQUENCE_DELIMITER if depth & 1 else _ITEM_DELIMITER):
            self._leave(depth - 1)
        else:
            self._fail(f"unexpected {_show(tag)}")

    def _switch_vr_encoding(self, buf: bytes | bytearray | memoryview, off: int) -> bool:
        """Check the first element of a data set or item against the expected VR encoding.

        Returns True if the encoding was switched and the header must be read again.
        """
        codec = self._structs.codec
        looks_explicit = 0x40 < buf[off + 4] < 0x5B and 0x40 < buf[off + 5] < 0x5B
        if codec.implicit == (not looks_explicit):
            self._first_element = False
            return False
        if self._depth == 0:
            found = "explicit" if codec.implicit else "implicit"
            logger.warning("data set is encoded in %s VR, not as its transfer syntax says", found)
            self._top = _STRUCTS[_Codec(not codec.implicit, codec.little_endian)]
            self._structs = self._top
            self._first_element = False
            return True
        if codec.implicit:  # items never switch from implicit to explicit VR
            self._first_element = False
            return False
        logger.debug("a sequence item is encoded in implicit VR in an explicit VR data set")
        self._enter(self._depth, implicit=True, little_endian=codec.little_endian)
        self._first_element = False
        return True

    def _enter(self, depth: int, *, implicit: bool = False, little_endian: bool = True) -> None:
        """Go down to ``depth``; with ``implicit``, it and all levels below are implicit VR."""
        self._depth = depth
        if implicit and depth < self._implicit_from:
            self._implicit_from = depth
            self._implicit_little_endian = little_endian
        self._update_codec()

    def _leave(self, depth: int) -> None:
        self._depth = depth
        if depth < self._implicit_from:
            self._implicit_from = _NEVER
        self._update_codec()

    def _update_codec(self) -> None:
        if self._depth >= self._implicit_from:
            self._structs = _STRUCTS[_Codec(True, self._implicit_little_endian)]
        else:
            self._structs = self._top

    def _fail(self, message: str) -> None:
        message = f"{message} (data set byte {self._element_start})"
        if self._done:  # after the header: the tags stand, the data set does not
            self._end_error = message
        else:
            self._error = message
        self._finish()

    def _tags_complete(self) -> None:
        """The first top-level tag past the last wanted one: the tags are final; the walk
        goes on to the data set's end (see the module's docstring)."""
        self._done = True

    def _finish(self) -> None:
        self._done = True
        self._walking = False
        self._inflater = None
        self._pending = bytearray()
        self._partial = bytearray()

    # -- decoding --------------------------------------------------------------------------

    def _decode(self) -> InstanceTags:
        values = self._values
        encodings = python_encodings(values.get(_SPECIFIC_CHARACTER_SET))
        decoded: dict[str, str] = {}
        for tag, raw in values.items():
            wanted = _WANTED[tag]
            if tag == _SPECIFIC_CHARACTER_SET:
                continue
            if wanted.charset:
                decoded[wanted.keyword] = decode_text(
                    raw, encodings, person_name=wanted.person_name
                )
            else:
                decoded[wanted.keyword] = decode_ascii(raw)
        return InstanceTags(**decoded)


def _show(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
