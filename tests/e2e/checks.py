"""Assertions on what the receiver stored: Part 10 structure, file meta, element values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID

from oxidicom.implementation import IMPLEMENTATION_CLASS_UID
from tests.peers.oxidicom_receiver import Receiver

__all__ = ["Registrations", "assert_part10", "assert_same_elements", "files_from"]

Registrations = Callable[[str, int], list[dict[str, Any]]]
"""The ``wait_for_registrations`` fixture: ``(calling_aet, count)`` to the kwargs of the
registrations of that AE title, once there are ``count``."""

_PIXEL_DATA = Tag(0x7FE0, 0x0010)
_TRAILING_PADDING = Tag(0xFFFC, 0xFFFC)


def files_from(receiver: Receiver, calling_aet: str) -> list[str]:
    """Stored files of one calling AE title, relative to FILES_ROOT, sorted."""
    prefix = f"SERVICES/PACS/{calling_aet}/"
    return [path for path in receiver.files() if path.startswith(prefix)]


def assert_part10(
    path: Path,
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str,
    calling_aet: str,
) -> Dataset:
    """``path`` is a Part 10 file whose meta says what the C-STORE said (contract §3);
    return it read by pydicom."""
    with path.open("rb") as file:
        assert file.read(132)[128:] == b"DICM", f"{path}: no DICM prefix after the preamble"
    meta = read_file_meta_info(path)
    assert meta.MediaStorageSOPClassUID == sop_class_uid
    assert meta.MediaStorageSOPInstanceUID == sop_instance_uid
    assert meta.TransferSyntaxUID == transfer_syntax
    assert (meta.SourceApplicationEntityTitle or "").strip() == calling_aet
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.FileMetaInformationVersion == b"\x00\x01"
    stored = dcmread(path)
    assert stored.file_meta.TransferSyntaxUID == transfer_syntax
    return stored


def assert_same_elements(stored: Dataset, sent: Dataset, *, where: str = "") -> None:
    """Same elements with equal values, ignoring group lengths and trailing padding (which
    re-encoding SCUs drop) and comparing native pixel data as pixels (its bytes depend on
    the byte order)."""
    stored_tags = {element.tag for element in stored if _compared(element.tag)}
    sent_tags = {element.tag for element in sent if _compared(element.tag)}
    assert stored_tags == sent_tags, (
        f"{where}: only stored {sorted(stored_tags - sent_tags)}, "
        f"only sent {sorted(sent_tags - stored_tags)}"
    )
    for tag in sorted(sent_tags):
        here = f"{where}{sent[tag].keyword or tag}"
        if sent[tag].VR == "SQ":
            items, sent_items = stored[tag].value, sent[tag].value
            assert len(items) == len(sent_items), here
            for index, (item, sent_item) in enumerate(zip(items, sent_items, strict=True)):
                assert_same_elements(item, sent_item, where=f"{here}[{index}].")
        elif tag == _PIXEL_DATA and not _encapsulated(stored) and not _encapsulated(sent):
            assert np.array_equal(stored.pixel_array, sent.pixel_array), here
        else:
            assert stored[tag].value == sent[tag].value, here


def _compared(tag: BaseTag) -> bool:
    return tag.element != 0 and tag != _TRAILING_PADDING


def _encapsulated(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None)
    return syntax is not None and UID(syntax).is_encapsulated
