"""DICOM data for the end-to-end tests: pydicom's own files, synthetic series, big instances.

Files are Part 10 files on disk, because every peer (DCMTK, pynetdicom, Orthanc, our own
SCU) sends from disk. :func:`data_set_bytes` cuts a file at the end of its file meta group
with a parser of its own, so a test can compare what arrived with what was sent byte for
byte without trusting the receiver's reader.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pydicom.data
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

__all__ = [
    "CHARSET_FILES",
    "FILE_META_GROUP",
    "SeriesTags",
    "charset_file",
    "data_set_bytes",
    "data_set_digest",
    "data_set_offset",
    "make_instance",
    "pydicom_file",
    "with_values",
    "write_large_instance",
    "write_series",
]

FILE_META_GROUP = 0x0002
_PREAMBLE_AND_MAGIC = 128 + 4
# Explicit VR Little Endian: these VRs have 2 reserved bytes and a 4-byte length.
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})

CHARSET_FILES = (
    "chrArab.dcm",
    "chrFren.dcm",
    "chrFrenMulti.dcm",
    "chrGerm.dcm",
    "chrGreek.dcm",
    "chrH31.dcm",
    "chrH32.dcm",
    "chrHbrw.dcm",
    "chrI2.dcm",
    "chrJapMulti.dcm",
    "chrJapMultiExplicitIR6.dcm",
    "chrKoreanMulti.dcm",
    "chrRuss.dcm",
    "chrX1.dcm",
    "chrX2.dcm",
)
"""pydicom's character set files that are images (the chrSQEncoding ones hold only a
sequence and none of the tags the contract requires)."""


def pydicom_file(name: str) -> Path:
    """A file of pydicom's test data (pydicom-data included), by name."""
    found = get_testdata_file(name)
    assert isinstance(found, str), f"pydicom test file {name} not found"
    return Path(found)


def charset_file(name: str) -> Path:
    """A file of pydicom's ``charset_files`` (which ``get_testdata_file`` does not search)."""
    path = Path(pydicom.data.__file__).parent / "charset_files" / name
    assert path.is_file(), f"pydicom charset file {name} not found"
    return path


def data_set_offset(path: Path) -> int:
    """Where the data set starts in a Part 10 file: after preamble, ``DICM`` and group 2."""
    with path.open("rb") as file:
        head = file.read(_PREAMBLE_AND_MAGIC)
        assert head[128:] == b"DICM", f"{path} is not a DICOM Part 10 file"
        offset = _PREAMBLE_AND_MAGIC
        while True:
            element = file.read(8)
            if len(element) < 8:
                return offset
            group, _, vr, short_length = struct.unpack("<HH2sH", element)
            if group != FILE_META_GROUP:
                return offset
            if vr in _LONG_VRS:
                (length,) = struct.unpack("<I", file.read(4))
                header = 12
            else:
                length, header = short_length, 8
            file.seek(length, 1)
            offset += header + length


def data_set_bytes(path: Path) -> bytes:
    """The encoded data set of a Part 10 file, exactly as stored."""
    with path.open("rb") as file:
        file.seek(data_set_offset(path))
        return file.read()


def data_set_digest(path: Path) -> str:
    """SHA-256 of the data set of a (possibly huge) Part 10 file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        file.seek(data_set_offset(path))
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def with_values(source: Path, destination: Path, values: Mapping[str, object]) -> Path:
    """A copy of ``source`` in its own transfer syntax with some elements set.

    Only the elements named change; the others are written back as pydicom read them,
    so character sets and encapsulated pixel data are untouched.
    """
    ds = dcmread(source)
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    destination.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(destination, enforce_file_format=True)
    return destination


SeriesTags = Mapping[str, object]


def make_instance(tags: SeriesTags, *, rows: int = 8, columns: int = 8) -> Dataset:
    """A small MR image with ``tags`` (UIDs generated unless given), Explicit VR LE."""
    ds = Dataset()
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "MR"
    ds.Rows = rows
    ds.Columns = columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.arange(rows * columns, dtype="<u2").tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(ds.SOPClassUID)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def write_series(
    folder: Path,
    tags: SeriesTags,
    count: int,
    *,
    first_instance_uid: str | None = None,
) -> list[Path]:
    """``count`` instances of one series (same study and series UIDs, InstanceNumber 1..)
    as files ``folder/NNNN.dcm``, in InstanceNumber order."""
    folder.mkdir(parents=True, exist_ok=True)
    shared = {
        "StudyInstanceUID": generate_uid(),
        "SeriesInstanceUID": generate_uid(),
        **tags,
    }
    paths = []
    for number in range(1, count + 1):
        instance_tags = dict(shared, InstanceNumber=str(number))
        if number == 1 and first_instance_uid is not None:
            instance_tags["SOPInstanceUID"] = first_instance_uid
        path = folder / f"{number:04}.dcm"
        make_instance(instance_tags).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _frames(frames: int, frame_pixels: int) -> Iterator[bytes]:
    base = np.arange(frame_pixels, dtype="<u2")
    for index in range(frames):
        yield (base + np.uint16(index)).tobytes()


def write_large_instance(path: Path, tags: SeriesTags, *, frames: int, rows: int = 512) -> Path:
    """A multi-frame 16-bit image of ``frames`` square frames, written frame by frame so
    that the test never holds the whole pixel data in memory."""
    ds = make_instance(tags, rows=rows, columns=rows)
    del ds.PixelData
    ds.NumberOfFrames = str(frames)
    ds.save_as(path, enforce_file_format=True)
    frame_pixels = rows * rows
    length = frames * frame_pixels * 2
    with path.open("ab") as file:
        # (7FE0,0010) Pixel Data, OW, 4-byte length: the last element of the data set.
        file.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length))
        for frame in _frames(frames, frame_pixels):
            file.write(frame)
    return path
