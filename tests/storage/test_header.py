"""The incremental header reader against pydicom: generated data sets and real files."""

from __future__ import annotations

import array
import glob
import importlib.resources
import io
import logging
import os
import random
import struct
import tracemalloc
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pydicom.data
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from oxidicom.storage.events import InstanceTags
from oxidicom.storage.header import MAX_VALUE_LENGTH, HeaderError, HeaderReader
from oxidicom.storage.transfer_syntax import dataset_encoding
from tests.storage.data_sets import EXPLICIT_LE, encode_data_set

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"

KEYWORDS = [field.name for field in attrs.fields(InstanceTags)]
PERSON_NAMES = {"PatientName"}


# -- feeding -------------------------------------------------------------------------------


def _chunks(data: bytes, sizes: list[int]) -> Iterator[memoryview]:
    view = memoryview(data)
    position = 0
    index = 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        yield view[position : position + size]
        position += size
        index += 1


def _read(
    transfer_syntax: str,
    data: bytes,
    sizes: list[int] | None = None,
    *,
    then: int | None = None,
) -> tuple[HeaderReader, int]:
    """Feed ``data`` in chunks of ``sizes`` (cycled) while the reader walks, and once it is
    done (past the header), in chunks of ``then`` bytes if given; return the reader and the
    most bytes it held at any time."""
    reader = HeaderReader(transfer_syntax)
    most = 0
    position = 0
    for chunk in _chunks(data, sizes or [len(data) or 1]):
        reader.feed(chunk)
        position += len(chunk)
        most = max(most, reader.retained_bytes)
        if not reader.walking or (then and reader.done):
            break
    if then and reader.walking:
        for chunk in _chunks(data[position:], [then]):
            reader.feed(chunk)
            most = max(most, reader.retained_bytes)
    return reader, most


# -- comparing with pydicom ----------------------------------------------------------------


def _normalized(text: str, person_name: bool) -> list[str]:
    """What pydicom makes of a raw string value: values split at backslashes, trailing
    padding removed, and for person names, empty trailing component groups dropped."""
    values = []
    for raw in text.split("\\"):
        value = raw.rstrip("\0 ")
        if person_name:
            groups = value.split("=")
            while groups and not groups[-1]:
                groups.pop()
            value = "=".join(groups)
        values.append(value)
    return values


def _pydicom_values(element: DataElement | RawDataElement) -> list[str]:
    value = element.value
    if value is None:
        return [""]
    if isinstance(value, MultiValue | list):
        return [str(item) for item in value]
    return [str(value)]


def _assert_same_as_pydicom(tags: InstanceTags, ds: Dataset) -> None:
    for keyword in KEYWORDS:
        ours = getattr(tags, keyword)
        tag = Tag(keyword)
        if tag not in ds:
            assert ours is None, keyword
            continue
        assert ours is not None, keyword
        assert _normalized(ours, keyword in PERSON_NAMES) == _pydicom_values(ds[tag]), keyword


# -- generated data sets -------------------------------------------------------------------

_NO_DELIMITERS = "\\\x1b"
_CHARSETS: dict[str | None, st.SearchStrategy[str]] = {
    None: st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=_NO_DELIMITERS),
    "ISO_IR 100": st.characters(codec="latin-1", categories=["L", "N", "P", "S", "Zs"]).filter(
        lambda c: c not in _NO_DELIMITERS
    ),
    "ISO_IR 192": st.characters(
        codec="utf-8", categories=["L", "N", "P", "S", "Zs"], exclude_characters=_NO_DELIMITERS
    ),
}
_UID = st.from_regex(r"[1-9][0-9]{0,4}(\.(0|[1-9][0-9]{0,6})){1,8}", fullmatch=True)
_NOT_CHARSET_VALUES: dict[str, st.SearchStrategy[str]] = {
    "CS": st.from_regex(r"[A-Z0-9_ ]{0,16}", fullmatch=True),
    "DA": st.sampled_from(["", "20130308", "19660101", "20240229"]),
    "AS": st.from_regex(r"[0-9]{3}[DWMY]", fullmatch=True),
    "IS": st.integers(-(2**31), 2**31 - 1).map(str) | st.sampled_from(["", "007", "+5"]),
    "UI": _UID,
}
_VR_OF = {
    "PatientID": "LO",
    "PatientName": "PN",
    "PatientBirthDate": "DA",
    "PatientAge": "AS",
    "PatientSex": "CS",
    "StudyDate": "DA",
    "StudyDescription": "LO",
    "AccessionNumber": "SH",
    "Modality": "CS",
    "ProtocolName": "LO",
    "StudyInstanceUID": "UI",
    "SeriesInstanceUID": "UI",
    "SeriesDescription": "LO",
    "SeriesNumber": "IS",
    "InstanceNumber": "IS",
    "SOPInstanceUID": "UI",
}
_MAX_CHARS = {"LO": 64, "SH": 16, "PN": 64}


@st.composite
def _value(draw: st.DrawFn, vr: str, alphabet: st.SearchStrategy[str]) -> str:
    if vr in _NOT_CHARSET_VALUES:
        return draw(_NOT_CHARSET_VALUES[vr])
    if vr == "PN":
        part = st.text(alphabet.filter(lambda c: c not in "^="), max_size=12)
        return "^".join(draw(st.lists(part, min_size=1, max_size=5)))
    return draw(st.text(alphabet, max_size=_MAX_CHARS[vr]))


@st.composite
def _item(draw: st.DrawFn, depth: int, alphabet: st.SearchStrategy[str]) -> Dataset:
    item = Dataset()
    if draw(st.booleans()):
        item.is_undefined_length_sequence_item = True
    # Wanted keywords inside items must be ignored.
    if draw(st.booleans()):
        item.PatientID = draw(st.text(alphabet, max_size=20))
    if draw(st.booleans()):
        item.CodeValue = draw(st.from_regex(r"[A-Z0-9]{1,16}", fullmatch=True))
    if draw(st.booleans()):
        item.add_new(0x00091001, "OB", draw(st.binary(max_size=300)))
    if depth < 3 and draw(st.booleans()):
        item.ReferencedImageSequence = draw(_sequence(depth + 1, alphabet))
    return item


@st.composite
def _sequence(draw: st.DrawFn, depth: int, alphabet: st.SearchStrategy[str]) -> Sequence:
    return Sequence(draw(st.lists(_item(depth, alphabet), max_size=3)))


@attrs.frozen
class GeneratedDataSet:
    dataset: Dataset
    expected: dict[str, str]


@st.composite
def _data_sets(draw: st.DrawFn) -> GeneratedDataSet:
    charset = draw(st.sampled_from(list(_CHARSETS)))
    alphabet = _CHARSETS[charset]
    ds = Dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    expected = {}
    for keyword in draw(st.sets(st.sampled_from(KEYWORDS))):
        value = draw(_value(_VR_OF[keyword], alphabet))
        setattr(ds, keyword, value)
        expected[keyword] = value
    if draw(st.booleans()):
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    if draw(st.booleans()):
        ds.OtherPatientIDsSequence = draw(_sequence(1, alphabet))
        if draw(st.booleans()):
            ds["OtherPatientIDsSequence"].is_undefined_length = True
    if draw(st.booleans()):
        ds.ReferencedStudySequence = draw(_sequence(1, alphabet))
        ds["ReferencedStudySequence"].is_undefined_length = draw(st.booleans())
    if draw(st.booleans()):
        ds.add_new(0x00090010, "LO", "OXIDICOM TEST")
        ds.add_new(0x00091010, "OB", draw(st.binary(max_size=8)) * draw(st.integers(0, 20_000)))
    if draw(st.booleans()):
        ds.add_new(0x00190010, "LO", "SIEMENS CSA HEADER")
        ds.add_new(0x00191010, "UN", bytes(draw(st.integers(0, 70_000))))
    if draw(st.booleans()):
        ds.add_new(0x00200012, "IS", "1")  # AcquisitionNumber, between wanted tags
    if draw(st.booleans()):
        ds.Rows = ds.Columns = 2
        ds.BitsAllocated = 8
        ds.PixelData = bytes(4)
    return GeneratedDataSet(ds, expected)


def _read_back(data: bytes, transfer_syntax: str) -> Dataset:
    encoding = dataset_encoding(transfer_syntax)
    assert encoding is not None
    if encoding.deflated:
        data = zlib.decompress(data, -zlib.MAX_WBITS)
    return read_dataset(io.BytesIO(data), encoding.implicit_vr, encoding.little_endian)


_CHUNK_SIZES = st.lists(st.integers(1, 700), min_size=1, max_size=20) | st.just([1])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    _data_sets(),
    st.sampled_from([IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, DEFLATED, JPEG_LOSSLESS]),
    _CHUNK_SIZES,
)
def test_generated_data_sets_read_as_pydicom_reads_them(
    generated: GeneratedDataSet, transfer_syntax: str, sizes: list[int]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's value validation of random text
        data = encode_data_set(generated.dataset, transfer_syntax)
        expected_ds = _read_back(data, transfer_syntax)
    reader, most = _read(transfer_syntax, data, sizes)
    tags = reader.end()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _assert_same_as_pydicom(tags, expected_ds)
    for keyword in KEYWORDS:
        value = getattr(tags, keyword)
        if keyword in generated.expected:
            assert value is not None
            assert value.rstrip(" \0") == generated.expected[keyword].rstrip(" ")
        else:
            assert value is None
    # Never more than the kept values and one element header.
    assert most <= reader.retained_bytes + 12


# -- real files ----------------------------------------------------------------------------


def _sample_files() -> list[str]:
    roots = [
        Path(pydicom.data.__file__).parent / "test_files",
        Path(pydicom.data.__file__).parent / "charset_files",
        Path(str(importlib.resources.files("data_store") / "data")),  # pydicom-data
    ]
    files = []
    for root in roots:
        files += glob.glob(str(root / "**" / "*"), recursive=True)
    return sorted(path for path in files if os.path.isfile(path) and not path.endswith(".py"))


@attrs.frozen
class SampleFile:
    path: str
    transfer_syntax: str
    data_set: bytes


def _readable_sample_files() -> list[SampleFile]:
    """Files pydicom reads as Part 10 with a data set we can walk."""
    samples = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("pydicom").disabled = True
        try:
            for path in _sample_files():
                try:
                    with open(path, "rb") as fp:
                        read_preamble(fp, False)
                        meta = _read_file_meta_info(fp)
                        offset = fp.tell()
                    ds = dcmread(path)
                except Exception:  # not DICOM, or not Part 10
                    continue
                transfer_syntax = meta.get("TransferSyntaxUID")
                if transfer_syntax is None or dataset_encoding(transfer_syntax) is None:
                    continue
                if len(ds) == 0:  # pydicom could not read the data set
                    continue
                with open(path, "rb") as fp:
                    fp.seek(offset)
                    samples.append(SampleFile(path, str(transfer_syntax), fp.read()))
        finally:
            logging.getLogger("pydicom").disabled = False
    return samples


_SAMPLES = _readable_sample_files()


def test_enough_sample_files() -> None:
    assert len(_SAMPLES) > 200
    assert {sample.transfer_syntax for sample in _SAMPLES} >= {
        IMPLICIT_LE,
        EXPLICIT_LE,
        EXPLICIT_BE,
        DEFLATED,
        JPEG_LOSSLESS,
    }
    assert sum("charset_files" in sample.path for sample in _SAMPLES) >= 15
    assert sorted(map(_cut_short_name, _SAMPLES))[-2:] == [
        "MR_truncated.dcm",
        "rtplan_truncated.dcm",
    ]


def _cut_short_name(sample: SampleFile) -> str:
    """The name of a sample file whose end pydicom's test suite cut off, else ''."""
    name = os.path.basename(sample.path)
    return name if "truncated" in name else ""


@pytest.mark.parametrize("sample", _SAMPLES, ids=lambda sample: os.path.basename(sample.path))
def test_sample_files_read_as_pydicom_reads_them(sample: SampleFile) -> None:
    rng = random.Random(sample.path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's opinion of the sample files' values
        ds = dcmread(sample.path)
        for sizes in ([len(sample.data_set)], [1], [rng.randint(1, 300) for _ in range(10)]):
            # Past the header, big chunks: the tail is pixel data, megabytes of it.
            reader, _ = _read(sample.transfer_syntax, sample.data_set, sizes, then=65536)
            _assert_same_as_pydicom(reader.result(), ds)
            if _cut_short_name(sample):
                with pytest.raises(HeaderError, match="ended inside"):
                    reader.end()
            else:
                reader.end()


# -- hand-made encodings -------------------------------------------------------------------


def _le(tag: int, vr: str, value: bytes) -> bytes:
    """An explicit VR little endian element."""
    if vr in ("OB", "OW", "SQ", "UN", "UT", "UC", "UR", "OD", "OF", "OL", "OV", "SV", "UV"):
        return struct.pack("<HH2s2xI", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def _implicit(tag: int, value: bytes, length: int | None = None) -> bytes:
    size = len(value) if length is None else length
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, size) + value


def _undefined_le(tag: int, vr: str) -> bytes:
    return struct.pack("<HH2s2xI", tag >> 16, tag & 0xFFFF, vr.encode(), 0xFFFFFFFF)


def _item_start(length: int = 0xFFFFFFFF, little_endian: bool = True) -> bytes:
    return struct.pack("<HHI" if little_endian else ">HHI", 0xFFFE, 0xE000, length)


ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
SEQUENCE_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)

SERIES_UID = b"1.2.3.4.5.6\0"
STUDY_DATE = b"20240101"


def _wanted_tail_le() -> bytes:
    return (
        _le(0x0020000E, "UI", SERIES_UID)
        + _le(0x00200013, "IS", b"7 ")
        + _le(0x00280010, "US", b"\x02\x00")
    )


def _feed_all_ways(transfer_syntax: str, data: bytes) -> list[InstanceTags]:
    results = []
    for sizes in ([len(data)], [1], [3, 11, 7], [5000]):
        reader, _ = _read(transfer_syntax, data, sizes)
        results.append(reader.end())
    assert all(result == results[0] for result in results)
    return results


def test_un_of_undefined_length_holds_implicit_vr() -> None:
    nested = (
        _item_start()
        + _implicit(0x00100020, b"NESTED")
        + _implicit(0x00081140, b"", 0xFFFFFFFF)  # an implicit VR sequence inside
        + _item_start()
        + _implicit(0x00080100, b"CODE")
        + ITEM_END
        + SEQUENCE_END
        + ITEM_END
        + _item_start(8)
        + _implicit(0x00080100, b"")
        + SEQUENCE_END
    )
    data = (
        _le(0x00080020, "DA", STUDY_DATE)
        + _undefined_le(0x00091010, "UN")
        + nested
        + _le(0x00100020, "LO", b"TOP ")
        + _wanted_tail_le()
    )
    tags = _feed_all_ways(EXPLICIT_LE, data)[0]
    assert (tags.StudyDate, tags.PatientID, tags.SeriesInstanceUID) == (
        "20240101",
        "TOP ",
        "1.2.3.4.5.6\0",
    )
    assert tags.InstanceNumber == "7 "


def test_un_of_undefined_length_is_little_endian_in_a_big_endian_data_set() -> None:
    def be(tag: int, vr: str, value: bytes) -> bytes:
        return struct.pack(">HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value

    data = (
        be(0x00080020, "DA", STUDY_DATE)
        + struct.pack(">HH2s2xI", 0x0009, 0x1010, b"UN", 0xFFFFFFFF)
        + _item_start()
        + _implicit(0x00100020, b"NESTED")
        + ITEM_END
        + SEQUENCE_END
        + be(0x00100020, "LO", b"TOP ")
        + be(0x0020000E, "UI", SERIES_UID)
        + be(0x00280010, "US", b"\x00\x02")
    )
    tags = _feed_all_ways(EXPLICIT_BE, data)[0]
    assert (tags.StudyDate, tags.PatientID, tags.SeriesInstanceUID) == (
        "20240101",
        "TOP ",
        "1.2.3.4.5.6\0",
    )


def test_implicit_vr_item_inside_explicit_vr_data_set() -> None:
    data = (
        _undefined_le(0x00081140, "SQ")
        + _item_start()
        + _implicit(0x00081150, b"1.2\0")
        + _implicit(0x00081155, b"1.2.3.4\0")
        + ITEM_END
        + _item_start()  # the next item is explicit again
        + _le(0x00081150, "UI", b"1.2\0")
        + ITEM_END
        + SEQUENCE_END
        + _le(0x00100020, "LO", b"PID ")
        + _wanted_tail_le()
    )
    tags = _feed_all_ways(EXPLICIT_LE, data)[0]
    assert tags.PatientID == "PID "
    assert tags.SeriesInstanceUID == "1.2.3.4.5.6\0"


def test_encapsulated_pixel_data_inside_an_item_is_skipped() -> None:
    data = (
        _undefined_le(0x00091001, "SQ")
        + _item_start()
        + _undefined_le(0x7FE00010, "OB")
        + _item_start(0)
        + _item_start(6)
        + b"\xff\xd8\xff\xd9\0\0"
        + SEQUENCE_END
        + ITEM_END
        + SEQUENCE_END
        + _le(0x00100020, "LO", b"PID ")
        + _wanted_tail_le()
    )
    assert _feed_all_ways(EXPLICIT_LE, data)[0].PatientID == "PID "


@pytest.mark.parametrize(
    ("transfer_syntax", "data"),
    [
        # implicit VR data sent under an explicit VR transfer syntax
        (
            EXPLICIT_LE,
            _implicit(0x00100020, b"PID ")
            + _implicit(0x0020000E, SERIES_UID)
            + _implicit(0x00280010, b"\x02\x00"),
        ),
        # and the reverse
        (
            IMPLICIT_LE,
            _le(0x00100020, "LO", b"PID ")
            + _le(0x0020000E, "UI", SERIES_UID)
            + _le(0x00280010, "US", b"\x02\x00"),
        ),
    ],
)
def test_first_element_corrects_a_wrong_vr_encoding(
    transfer_syntax: str, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="oxidicom.storage.header"):
        tags = _feed_all_ways(transfer_syntax, data)[0]
    assert (tags.PatientID, tags.SeriesInstanceUID) == ("PID ", "1.2.3.4.5.6\0")
    assert "VR" in caplog.text


def test_stray_file_meta_elements_are_skipped() -> None:
    data = (
        _le(0x00020000, "UL", b"\x1c\x00\x00\x00")
        + _le(0x00020010, "UI", b"1.2.840.10008.1.2.1\0")
        + _le(0x00100020, "LO", b"PID ")
        + _wanted_tail_le()
    )
    assert _feed_all_ways(EXPLICIT_LE, data)[0].PatientID == "PID "


def test_wanted_tags_inside_sequences_are_ignored() -> None:
    data = (
        _undefined_le(0x00101002, "SQ")  # OtherPatientIDsSequence
        + _item_start()
        + _le(0x00100020, "LO", b"OTHER ")
        + ITEM_END
        + SEQUENCE_END
        + _wanted_tail_le()
    )
    assert _feed_all_ways(EXPLICIT_LE, data)[0].PatientID is None


def test_empty_values_are_empty_strings() -> None:
    data = _le(0x00100010, "PN", b"") + _le(0x00100020, "LO", b"") + _wanted_tail_le()
    tags = _feed_all_ways(EXPLICIT_LE, data)[0]
    assert (tags.PatientName, tags.PatientID, tags.PatientSex) == ("", "", None)


def test_explicit_vr_un_value_of_a_wanted_tag_is_kept() -> None:
    data = _le(0x00100020, "UN", b"PID ") + _wanted_tail_le()
    assert _feed_all_ways(EXPLICIT_LE, data)[0].PatientID == "PID "


def test_tags_after_instance_number_are_never_read() -> None:
    data = _le(0x00100020, "LO", b"PID ") + _wanted_tail_le()
    garbage = b"\xde\xad" * 1000
    reader = HeaderReader(EXPLICIT_LE)
    assert reader.feed(data + garbage)
    assert reader.result().PatientID == "PID "


def test_ends_at_the_first_tag_past_instance_number_without_its_value() -> None:
    reader = HeaderReader(EXPLICIT_LE)
    assert not reader.feed(_le(0x00200013, "IS", b"1 "))
    assert reader.feed(struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OB", 10**9))


def test_a_data_set_without_later_tags_ends_cleanly() -> None:
    data = _le(0x00100020, "LO", b"PID ") + _le(0x0020000E, "UI", SERIES_UID)
    reader, _ = _read(EXPLICIT_LE, data, [1])
    assert not reader.done
    assert reader.result().SeriesInstanceUID == "1.2.3.4.5.6\0"


def test_feed_after_the_walk_touches_nothing() -> None:
    reader = HeaderReader(EXPLICIT_LE)
    assert reader.feed(_undefined_le(0x00081140, "SQ") + ITEM_END)
    assert not reader.walking
    released = memoryview(b"abc")
    released.release()
    assert reader.feed(released)


# -- after the header: the data set's end --------------------------------------------------


def test_tags_are_final_before_the_walk_reaches_the_end() -> None:
    reader = HeaderReader(EXPLICIT_LE)
    assert reader.feed(_le(0x00100020, "LO", b"PID ") + _wanted_tail_le())
    assert reader.walking
    assert reader.result().PatientID == "PID "
    assert reader.feed(_le(0x00280011, "US", b"\x02\x00"))
    assert reader.end().PatientID == "PID "


_PIXELS = _le(0x7FE00010, "OW", bytes(range(256)) * 64)
_ENCAPSULATED = (
    _undefined_le(0x7FE00010, "OB")
    + _item_start(0)
    + _item_start(6)
    + b"\xff\xd8\xff\xd9\0\0"
    + SEQUENCE_END
)


@pytest.mark.parametrize("pixels", [_PIXELS, _ENCAPSULATED], ids=["native", "encapsulated"])
@pytest.mark.parametrize("sizes", [[1 << 20], [1], [3, 11, 7], [4096]], ids=str)
def test_a_whole_data_set_ends_cleanly(pixels: bytes, sizes: list[int]) -> None:
    data = _le(0x00100020, "LO", b"PID ") + _wanted_tail_le() + pixels + _le(0xFFFCFFFC, "OB", b"")
    reader, _ = _read(EXPLICIT_LE, data, sizes)
    assert reader.walking
    assert reader.end().PatientID == "PID "


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_PIXELS[:-1], r"ended inside the value of \(7FE0,0010\)"),
        (_PIXELS[:10], r"ended inside the element header at byte"),
        (_ENCAPSULATED[:-8], "ended inside a sequence"),
        (_ENCAPSULATED[:-9], r"ended inside the value of \(FFFE,E000\)"),
        (_PIXELS + b"\0\0", r"ended inside the element header at byte"),
        (_undefined_le(0x00091001, "SQ") + ITEM_END, r"unexpected \(FFFE,E00D\)"),
        (_ENCAPSULATED[:-8] + _le(0x00100020, "LO", b"X "), "expected an item in a sequence"),
    ],
    ids=[
        "pixels-one-byte-short",
        "pixels-header-cut",
        "no-sequence-delimiter",
        "fragment-cut",
        "trailing-bytes",
        "stray-delimiter",
        "element-in-sequence",
    ],
)
def test_a_data_set_cut_short_or_broken_after_the_header(data: bytes, message: str) -> None:
    whole = _le(0x00100020, "LO", b"PID ") + _wanted_tail_le() + data
    for sizes in ([len(whole)], [1], [3, 11, 7]):
        reader, _ = _read(EXPLICIT_LE, whole, sizes)
        assert reader.result().PatientID == "PID "  # the tags stand: a rejection names them
        with pytest.raises(HeaderError, match=message) as caught:
            reader.end()
        assert caught.value.tags.SeriesInstanceUID == "1.2.3.4.5.6\0"


def test_implicit_vr_pixel_data_cut_short() -> None:
    head = _implicit(0x0020000E, SERIES_UID) + _implicit(0x00200013, b"7 ")
    pixels = _implicit(0x7FE00010, bytes(1000))
    assert _feed_all_ways(IMPLICIT_LE, head + pixels)[0].InstanceNumber == "7 "
    reader, _ = _read(IMPLICIT_LE, head + pixels[:-2], [100])
    with pytest.raises(HeaderError, match=r"inside the value of \(7FE0,0010\)"):
        reader.end()


@pytest.mark.parametrize("cut", [0, 1, 2])
def test_feed_all_counts_bytes_not_items(cut: int) -> None:
    """A batch inside Pixel Data is skipped by its size in bytes, whatever the memoryview's
    item format; the batch that crosses the value's end is walked fragment by fragment."""
    head = _le(0x00100020, "LO", b"PID ") + _wanted_tail_le()
    pixels = array.array("H", range(4096))
    element = struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OW", pixels.itemsize * len(pixels))
    reader = HeaderReader(EXPLICIT_LE)
    assert reader.feed_all([head, element])
    words = memoryview(pixels)
    reader.feed_all([words[:1000], words[1000:2000]])
    reader.feed_all([words[2000:], _le(0xFFFCFFFC, "OB", b"")[: 12 - cut]])
    if cut:
        with pytest.raises(HeaderError, match="ended inside the element header"):
            reader.end()
    else:
        assert reader.end().PatientID == "PID "


def _deflate(data: bytes, *, final: bool = True) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(
        zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH
    )


_WHOLE = _le(0x00100020, "LO", b"PID ") + _wanted_tail_le() + _PIXELS


def test_a_deflated_data_set_is_walked_to_its_end() -> None:
    data = _deflate(_WHOLE) + b"\0" * 8  # bytes after the stream (padding) are ignored
    for sizes in ([len(data)], [1], [7, 300]):
        reader, _ = _read(DEFLATED, data, sizes, then=65536)
        assert reader.walking
        assert reader.end().PatientID == "PID "


@pytest.mark.parametrize(
    ("compressed", "message"),
    [
        # The peer stopped sending in the middle of the deflate stream.
        (_deflate(_WHOLE)[:-5], "ended inside the value of \\(7FE0,0010\\)"),
        # A whole deflate stream of a data set that was cut short before it was deflated.
        (_deflate(_WHOLE[:-10]), "ended inside the value of \\(7FE0,0010\\)"),
        # Whole elements, but the stream has no final block: more was to come.
        (_deflate(_WHOLE, final=False), "ended before the end of its deflate stream"),
    ],
)
def test_a_deflated_data_set_cut_short_after_its_header(compressed: bytes, message: str) -> None:
    for sizes in ([len(compressed)], [1], [13]):
        reader, _ = _read(DEFLATED, compressed, sizes, then=65536)
        assert reader.result().PatientID == "PID "  # the tags stand
        with pytest.raises(HeaderError, match=message):
            reader.end()


@settings(max_examples=100, deadline=None)
@given(st.integers(1, len(_deflate(_WHOLE)) - 1), _CHUNK_SIZES)
def test_a_deflated_data_set_cut_anywhere_is_never_whole(cut: int, sizes: list[int]) -> None:
    """Unlike a plain data set cut between two elements, a deflated one cannot pass for
    whole: its deflate stream has not ended."""
    reader, _ = _read(DEFLATED, _deflate(_WHOLE)[:cut], sizes)
    with pytest.raises(HeaderError, match="ended"):
        reader.end()


def test_past_the_allowed_ratio_a_deflated_end_goes_unchecked() -> None:
    """A tail that inflates 1000:1 is not inflated to its end: the CPU it would cost."""
    zeros = 256 * 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = _le(0x00100020, "LO", b"PID ") + _wanted_tail_le()
    bomb = compressor.compress(head + struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OB", zeros))
    block = bytes(1024 * 1024)
    for _ in range(zeros // len(block)):
        bomb += compressor.compress(block)
    bomb += compressor.flush()
    reader = HeaderReader(DEFLATED)
    view = memoryview(bomb)
    for start in range(0, len(bomb) - 1000, 16384):  # all but its last bytes
        reader.feed(view[start : start + 16384])
    assert not reader.walking
    assert reader.end().PatientID == "PID "  # cut short, but no longer checked


def test_pixel_data_is_skipped_without_being_held() -> None:
    reader = HeaderReader(EXPLICIT_LE)
    assert reader.feed(_wanted_tail_le() + struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OW", 1 << 30))
    block = memoryview(bytes(1 << 20))
    for _ in range(1024):
        reader.feed(block)
        assert reader.retained_bytes <= 64
    assert reader.end().InstanceNumber == "7 "


def test_the_largest_kept_value_and_one_byte_more() -> None:
    largest = b"x" * MAX_VALUE_LENGTH
    tags = _feed_all_ways(EXPLICIT_LE, _le(0x00081030, "UT", largest) + _wanted_tail_le())[0]
    assert tags.StudyDescription == largest.decode()
    reader, _ = _read(EXPLICIT_LE, _le(0x00081030, "UT", largest + b"y") + _wanted_tail_le())
    with pytest.raises(HeaderError, match="StudyDescription is 65537 bytes long"):
        reader.result()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_le(0x0020000E, "UI", SERIES_UID)[:5], "ended inside the element header at byte 16"),
        (_le(0x0020000E, "UI", SERIES_UID)[:-2], r"ended inside the value of \(0020,000E\)"),
        (_le(0x00191010, "OB", bytes(100))[:50], r"ended inside the value of \(0019,1010\)"),
        (_undefined_le(0x00081140, "SQ") + _item_start(), "ended inside a sequence"),
        (
            _undefined_le(0x00081140, "SQ") + _le(0x00100020, "LO", b"PID "),
            r"expected an item in a sequence, found \(0010,0020\)",
        ),
        (_undefined_le(0x00081140, "SQ") + ITEM_END, r"unexpected \(FFFE,E00D\)"),
        (
            _undefined_le(0x00081140, "SQ") + _item_start() + SEQUENCE_END,
            r"unexpected \(FFFE,E0DD\)",
        ),
    ],
)
def test_malformed_or_truncated_data_sets(data: bytes, message: str) -> None:
    prefix = _le(0x00080020, "DA", STUDY_DATE)
    for sizes in ([len(prefix + data)], [1]):
        reader, _ = _read(EXPLICIT_LE, prefix + data, sizes)
        with pytest.raises(HeaderError, match=message) as caught:
            reader.result()
        assert caught.value.tags.StudyDate == "20240101"


def test_a_rejection_still_knows_the_series() -> None:
    data = _le(0x0020000E, "UI", SERIES_UID) + _undefined_le(0x00200010, "SQ") + ITEM_END
    reader, _ = _read(EXPLICIT_LE, data)
    with pytest.raises(HeaderError) as caught:
        reader.result()
    assert caught.value.tags.SeriesInstanceUID == "1.2.3.4.5.6\0"


def test_invalid_deflate_data() -> None:
    reader = HeaderReader(DEFLATED)
    assert reader.feed(b"\xff" * 100)
    with pytest.raises(HeaderError, match="invalid deflate data"):
        reader.result()


def test_unknown_transfer_syntax_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"1\.2\.3\.4"):
        HeaderReader("1.2.3.4")


def _measure_peak(action: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_deflate_bomb_is_walked_in_bounded_memory() -> None:
    zeros = 64 * 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    bomb = compressor.compress(_le(0x00100020, "LO", b"PID "))
    bomb += compressor.compress(struct.pack("<HH2s2xI", 0x0019, 0x1010, b"OB", zeros))
    block = bytes(1024 * 1024)
    for _ in range(zeros // len(block)):
        bomb += compressor.compress(block)
    bomb += compressor.compress(_wanted_tail_le()) + compressor.flush()
    assert len(bomb) < zeros // 500
    reader = HeaderReader(DEFLATED)
    view = memoryview(bomb)
    peak = _measure_peak(
        lambda: [reader.feed(view[i : i + 16384]) for i in range(0, len(bomb), 16384)]
    )
    assert reader.result().SeriesInstanceUID == "1.2.3.4.5.6\0"
    assert peak < 1024 * 1024


def test_a_large_skipped_element_is_not_buffered() -> None:
    data = (
        _le(0x00100020, "LO", b"PID ")
        + _le(0x00191010, "OB", bytes(20 * 1024 * 1024))
        + _wanted_tail_le()
    )
    for sizes in ([len(data)], [65536], [1000, 3]):
        reader, most = _read(EXPLICIT_LE, data, sizes)
        assert reader.result().SeriesInstanceUID == "1.2.3.4.5.6\0"
        assert most <= reader.retained_bytes + 12


# -- character sets ------------------------------------------------------------------------


def _with_charset(charset: str | list[str], keyword: str, value: str) -> bytes:
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    setattr(ds, keyword, value)
    ds.SeriesInstanceUID = "1.2.3"
    return encode_data_set(ds, EXPLICIT_LE)


@pytest.mark.parametrize(
    ("charset", "keyword", "value"),
    [
        (["", "ISO 2022 IR 87"], "PatientName", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
        (["ISO 2022 IR 13", "ISO 2022 IR 87"], "PatientName", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"),
        (["", "ISO 2022 IR 149"], "PatientName", "Hong^Gildong=洪^吉洞=홍^길동"),
        (["", "ISO 2022 IR 87"], "StudyDescription", "頭部 MRI 検査"),
        ("GB18030", "PatientName", "Wang^XiaoDong=王^小东="),
        ("ISO_IR 192", "SeriesDescription", "Ünïcødé 🧠 séries"),
        ("ISO_IR 100", "PatientName", "Müller^Jürgen"),
        (
            "ISO_IR 144",
            "PatientName",
            "\u041b\u044e\u043a\u0441\u0435\u043c\u0431\u0443\u0440\u0433",
        ),
        ("ISO_IR 126", "PatientName", "Διονυσιος"),
    ],
)
def test_character_sets(charset: str | list[str], keyword: str, value: str) -> None:
    data = _with_charset(charset, keyword, value)
    tags = _feed_all_ways(EXPLICIT_LE, data)[0]
    expected = _read_back(data, EXPLICIT_LE)
    _assert_same_as_pydicom(tags, expected)
    assert _normalized(getattr(tags, keyword), keyword in PERSON_NAMES) == [value.rstrip("=")]


def test_invalid_bytes_are_replaced_without_warnings(caplog: pytest.LogCaptureFixture) -> None:
    data = (
        _le(0x00080005, "CS", b"ISO_IR 192")
        + _le(0x00100010, "PN", b"Bad\xff\xfe^Name")
        + _le(0x00100020, "LO", b"\x1b$BNo\xff\x1b(B ")
        + _wanted_tail_le()
    )
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        for _ in range(3):
            tags = _feed_all_ways(EXPLICIT_LE, data)[0]
    assert tags.PatientName == "Bad\ufffd\ufffd^Name"
    assert tags.PatientID is not None
    assert "\ufffd" in tags.PatientID
    assert caught == []
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_unknown_character_set_falls_back_to_latin_1() -> None:
    data = (
        _le(0x00080005, "CS", b"ISO_IR 999")
        + _le(0x00100010, "PN", b"M\xfcller")
        + _wanted_tail_le()
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tags = _feed_all_ways(EXPLICIT_LE, data)[0]
    assert tags.PatientName == "Müller"
    assert caught == []
