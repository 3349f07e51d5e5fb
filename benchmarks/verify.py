"""Did every instance arrive, and did it arrive intact?

Counting files is the check that every run gets. Hidden files and folders (names starting
with ``.``) are not counted: a receiver may keep its own bookkeeping next to the instances
(oxidicom has an outbox under ``FILES_ROOT/.oxidicom``). The byte comparison is done on one sample
instance per run: the data set that follows the file meta group must be the bytes that were
sent (receivers write their own meta group, so that part may differ). A receiver that
re-encodes passes with ``equal-elements`` when pydicom reads the same attributes back.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
_CHUNK = 1 << 20
_ELEMENT_COMPARE_LIMIT = 64 << 20


def count_files(root: Path) -> tuple[int, int]:
    """Regular, non-hidden files under ``root`` (recursively) and their total size."""
    files = 0
    size = 0
    for folder, folders, names in os.walk(root):
        folders[:] = [f for f in folders if not f.startswith(".")]
        for name in names:
            if name.startswith("."):
                continue
            try:
                size += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue  # a temporary file renamed away while we looked
            files += 1
    return files, size


def wait_for_files(root: Path, expected: int, timeout: float) -> tuple[int, int]:
    """Poll until ``expected`` files are there (or the timeout passes); returns the count."""
    deadline = time.monotonic() + timeout
    while True:
        files, size = count_files(root)
        if files >= expected or time.monotonic() > deadline:
            return files, size
        time.sleep(0.05)


def dataset_offset(path: Path) -> int:
    """Where the data set starts in a Part 10 file: after preamble, DICM and group 0002."""
    with path.open("rb") as f:
        head = f.read(132)
        if len(head) < 132 or head[128:] != b"DICM":
            raise ValueError(f"{path}: not a DICOM Part 10 file")
        offset = 132
        while True:
            f.seek(offset)
            element = f.read(8)
            if len(element) < 8:
                return offset
            group, _, vr = struct.unpack("<HH2s", element[:6])
            if group != 0x0002:
                return offset
            if vr in _LONG_VRS:
                (length,) = struct.unpack("<I", f.read(4))
                offset += 12 + length
            else:
                (length,) = struct.unpack("<H", element[6:8])
                offset += 8 + length


def _same_tail(a: Path, a_from: int, b: Path, b_from: int) -> bool:
    if a.stat().st_size - a_from != b.stat().st_size - b_from:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        fa.seek(a_from)
        fb.seek(b_from)
        while True:
            chunk = fa.read(_CHUNK)
            if chunk != fb.read(_CHUNK):
                return False
            if not chunk:
                return True


def find_received(root: Path, sop_instance_uid: str) -> Path | None:
    """The received file of one instance: by name first (every receiver here puts the
    SOP Instance UID in the file name), else by reading headers."""
    candidates: list[Path] = []
    for folder, folders, names in os.walk(root):
        folders[:] = [f for f in folders if not f.startswith(".")]
        for name in names:
            path = Path(folder, name)
            if sop_instance_uid in name:
                return path
            candidates.append(path)
    for path in candidates:
        try:
            ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        except (InvalidDicomError, OSError, ValueError):
            continue
        if str(ds.get("SOPInstanceUID", "")) == sop_instance_uid:
            return path
    return None


def compare_sample(sent: Path, received_root: Path, sop_instance_uid: str) -> str:
    """``identical-dataset-bytes``, ``equal-elements``, ``DIFFERENT`` or ``MISSING``."""
    received = find_received(received_root, sop_instance_uid)
    if received is None:
        return "MISSING"
    try:
        if _same_tail(sent, dataset_offset(sent), received, dataset_offset(received)):
            return "identical-dataset-bytes"
    except ValueError:
        return "DIFFERENT"
    if max(sent.stat().st_size, received.stat().st_size) > _ELEMENT_COMPARE_LIMIT:
        return "DIFFERENT"
    try:
        same = dcmread(sent) == dcmread(received)
    except (InvalidDicomError, OSError, ValueError):
        return "DIFFERENT"
    return "equal-elements" if same else "DIFFERENT"
