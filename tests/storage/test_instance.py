"""One C-STORE data set from first fragment to stored file or rejection."""

from __future__ import annotations

import errno
import io
import itertools
import os
import random
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from oxidicom.storage.events import AssociationInfo, InstanceRejected, InstanceStored
from oxidicom.storage.filemeta import IMPLEMENTATION_CLASS_UID
from oxidicom.storage.instance import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_INVALID_DATA_SET,
    STATUS_OUT_OF_RESOURCES,
    InstanceReceiver,
    Store,
)
from tests.storage.data_sets import DEFLATED, EXPLICIT_LE, encode_data_set

ASSOCIATION = AssociationInfo(
    association_id="01J9Z3ZV6Q8Y3X8W2K1M0N9P7R",
    calling_aet="OXITESTORTHANC",
    called_aet="ChRIS",
    peer_host="127.0.0.1",
    peer_port=40000,
)
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SERIES_UID = "1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0"
SOP_UID = "1.3.12.2.1107.5.2.19.45152.2013030808105190943789491"
SERIES_FOLDER = (
    "SERVICES/PACS/OXITESTORTHANC/1449c1d-anonymized-20090701/"
    "MR-Brain_w_o_Contrast-98edede8b2-20130308/00005-SAG_MPRAGE_220_FOV-a27cf06"
)
FILE_PATH = f"{SERIES_FOLDER}/0097-{SOP_UID}.dcm"


def _dataset(**changes: Any) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = SOP_UID
    ds.StudyDate = "20130308"
    ds.AccessionNumber = "98edede8b2"
    ds.Modality = "MR"
    ds.StudyDescription = "MR-Brain w/o Contrast"
    ds.SeriesDescription = "SAG MPRAGE 220 FOV"
    ds.PatientName = "anonymized"
    ds.PatientID = "1449c1d"
    ds.PatientBirthDate = "20090701"
    ds.PatientSex = "F"
    ds.PatientAge = "003Y"
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    ds.ReferencedImageSequence = Sequence([item])
    ds.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
    ds.add_new(0x00291010, "OB", bytes(range(256)) * 40)
    ds.ProtocolName = "SAG MPRAGE"
    ds.StudyInstanceUID = "1.2.840.113845.11.1000000001951524609.20200705182951.2689481"
    ds.SeriesInstanceUID = SERIES_UID
    ds.SeriesNumber = 5
    ds.InstanceNumber = 97
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated = 16
    ds.PixelData = bytes(64 * 64 * 2)
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def _receiver(store: Store, transfer_syntax: str = EXPLICIT_LE) -> InstanceReceiver:
    return store.receiver(
        ASSOCIATION,
        sop_class_uid=MR_IMAGE_STORAGE,
        sop_instance_uid=SOP_UID,
        transfer_syntax_uid=transfer_syntax,
    )


def _files(root: Path) -> list[str]:
    return sorted(
        str(Path(directory, name).relative_to(root))
        for directory, _, names in os.walk(root)
        for name in names
    )


def _receive_in_pdus(receiver: InstanceReceiver, data: bytes, seed: int = 0) -> None:
    """Hand over the data as a receive loop would: batches of slices of one reused buffer."""
    rng = random.Random(seed)
    buffer = bytearray(16384)
    position = 0
    while position < len(data):
        size = min(len(buffer), len(data) - position)
        buffer[:size] = data[position : position + size]
        view = memoryview(buffer)
        cuts = sorted(rng.sample(range(1, size), min(3, size - 1))) if size > 1 else []
        edges = [0, *cuts, size]
        receiver.data([view[start:end] for start, end in itertools.pairwise(edges)])
        view.release()
        buffer[:] = bytes(len(buffer))  # the slices are dead after the call
        position += size


@pytest.mark.parametrize(
    "transfer_syntax",
    [
        "1.2.840.10008.1.2",
        EXPLICIT_LE,
        "1.2.840.10008.1.2.2",
        DEFLATED,
        "1.2.840.10008.1.2.4.70",
    ],
)
def test_an_instance_is_stored_as_received(tmp_path: Path, transfer_syntax: str) -> None:
    data = encode_data_set(_dataset(), transfer_syntax)
    receiver = _receiver(Store(tmp_path), transfer_syntax)
    _receive_in_pdus(receiver, data)
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceStored)
    assert outcome.series_folder == SERIES_FOLDER
    assert outcome.file_path == FILE_PATH
    assert outcome.association == ASSOCIATION
    assert outcome.tags.PatientAge == "003Y"
    assert outcome.tags.SeriesInstanceUID == SERIES_UID
    assert outcome.study_date.isoformat() == "2013-03-08"
    content = (tmp_path / FILE_PATH).read_bytes()
    assert outcome.size == len(content)
    assert content.endswith(data)
    stored = dcmread(tmp_path / FILE_PATH)
    assert stored.file_meta.TransferSyntaxUID == transfer_syntax
    assert stored.file_meta.MediaStorageSOPInstanceUID == SOP_UID
    assert stored.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert stored.file_meta.SourceApplicationEntityTitle == "OXITESTORTHANC"
    assert stored.PatientID == "1449c1d"
    assert _files(tmp_path) == [FILE_PATH]


def test_the_same_instance_twice_overwrites(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for description in ("first", "second"):
        receiver = _receiver(store)
        receiver.data([encode_data_set(_dataset(ImageComments=description))])
        assert isinstance(receiver.complete(), InstanceStored)
    assert dcmread(tmp_path / FILE_PATH).ImageComments == "second"
    assert _files(tmp_path) == [FILE_PATH]


def test_missing_required_tag(tmp_path: Path) -> None:
    receiver = _receiver(Store(tmp_path))
    receiver.data([encode_data_set(_dataset(StudyDate=None))])
    outcome = receiver.complete()
    assert outcome == InstanceRejected(
        association=ASSOCIATION,
        series_instance_uid=SERIES_UID,
        reason="missing required tag: StudyDate",
        status=STATUS_CANNOT_UNDERSTAND,
    )
    assert _files(tmp_path) == []


def test_missing_series_instance_uid(tmp_path: Path) -> None:
    receiver = _receiver(Store(tmp_path))
    receiver.data([encode_data_set(_dataset(SeriesInstanceUID=None))])
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceRejected)
    assert outcome.series_instance_uid is None
    assert outcome.reason == "missing required tag: SeriesInstanceUID"


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_bad_study_date(tmp_path: Path) -> None:
    receiver = _receiver(Store(tmp_path))
    receiver.data([encode_data_set(_dataset(StudyDate="2013"))])
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceRejected)
    assert outcome.status == STATUS_CANNOT_UNDERSTAND
    assert outcome.reason.startswith("invalid StudyDate: '2013")
    assert _files(tmp_path) == []


def test_truncated_data_set(tmp_path: Path) -> None:
    ds = _dataset(Rows=None, Columns=None, BitsAllocated=None, PixelData=None)
    del ds[0x00290010], ds[0x00291010]  # InstanceNumber is now the last element
    data = encode_data_set(ds)
    receiver = _receiver(Store(tmp_path))
    receiver.data([data[:-3]])
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceRejected)
    assert outcome.status == STATUS_INVALID_DATA_SET
    assert outcome.reason.startswith("cannot read data set: data set ended inside")
    assert outcome.series_instance_uid == SERIES_UID
    assert _files(tmp_path) == []


@pytest.mark.parametrize("cut", [1, 2, 4096, 8192 + 7])
def test_a_data_set_cut_short_inside_its_pixel_data(tmp_path: Path, cut: int) -> None:
    """The header is whole, so the file is open and mostly written when the end shows
    that the peer sent less than the data set's own lengths announce."""
    ds = _dataset(Rows=128, Columns=128, PixelData=bytes(128 * 128 * 2))
    data = encode_data_set(ds)
    receiver = _receiver(Store(tmp_path))
    _receive_in_pdus(receiver, data[:-cut])
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceRejected)
    assert outcome.status == STATUS_INVALID_DATA_SET
    assert outcome.reason == "cannot read data set: data set ended inside the value of (7FE0,0010)"
    assert outcome.series_instance_uid == SERIES_UID
    assert _files(tmp_path) == []
    assert not (tmp_path / SERIES_FOLDER).exists()


def test_a_deflated_data_set_cut_short_is_not_stored(tmp_path: Path) -> None:
    ds = _dataset(Rows=128, Columns=128, PixelData=bytes(range(256)) * 128)
    data = encode_data_set(ds, DEFLATED)
    receiver = _receiver(Store(tmp_path), DEFLATED)
    _receive_in_pdus(receiver, data[:-5])  # the end of the deflate stream never came
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceRejected)
    assert outcome.status == STATUS_INVALID_DATA_SET
    assert outcome.reason.startswith("cannot read data set: data set ended inside the value")
    assert _files(tmp_path) == []


def test_empty_data_set(tmp_path: Path) -> None:
    receiver = _receiver(Store(tmp_path))
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceRejected)
    assert outcome.reason == "missing required tag: StudyInstanceUID"


def test_disk_full_while_receiving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode_data_set(_dataset())
    receiver = _receiver(Store(tmp_path))
    receiver.data([data[:100]])

    def full(fd: int, buffers: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "writev", full)
    receiver.data([data[100:]])
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceRejected)
    assert outcome.status == STATUS_OUT_OF_RESOURCES
    assert "No space left on device" in outcome.reason
    assert outcome.series_instance_uid == SERIES_UID
    assert _files(tmp_path) == []


def test_storage_error_at_commit(tmp_path: Path) -> None:
    (tmp_path / "SERVICES").write_bytes(b"in the way")
    receiver = _receiver(Store(tmp_path))
    receiver.data([encode_data_set(_dataset())])
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceRejected)
    assert outcome.status == STATUS_OUT_OF_RESOURCES
    # The file is created where it will live, so the error shows when it is created.
    assert "Not a directory (ENOTDIR)" in outcome.reason
    assert _files(tmp_path) == ["SERVICES"]


def test_missing_files_root(tmp_path: Path) -> None:
    receiver = _receiver(Store(tmp_path / "missing"))
    receiver.data([encode_data_set(_dataset())])
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceRejected)
    assert outcome.status == STATUS_OUT_OF_RESOURCES
    assert "No such file or directory" in outcome.reason


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    receiver = _receiver(Store(tmp_path))
    receiver.data([encode_data_set(_dataset())[:1000]])
    receiver.abort()
    receiver.abort()
    assert _files(tmp_path) == []
    with pytest.raises(RuntimeError):
        receiver.data([b"more"])
    with pytest.raises(RuntimeError):
        receiver.complete()


def _folders(root: Path) -> list[str]:
    return sorted(
        str(Path(directory, name).relative_to(root))
        for directory, names, _ in os.walk(root)
        for name in names
    )


def test_an_aborted_instance_takes_the_folders_it_made_with_it(tmp_path: Path) -> None:
    # Past the header (its folder known and made), then the peer goes away.
    (tmp_path / "SERVICES" / "PACS").mkdir(parents=True)
    receiver = _receiver(Store(tmp_path))
    receiver.data([encode_data_set(_dataset())[:-100]])
    assert (tmp_path / SERIES_FOLDER).is_dir()
    receiver.abort()
    assert _folders(tmp_path) == ["SERVICES", "SERVICES/PACS"]


def test_a_failed_write_takes_the_folders_it_made_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "SERVICES" / "PACS").mkdir(parents=True)
    data = encode_data_set(_dataset())
    receiver = _receiver(Store(tmp_path))
    receiver.data([data[: len(data) // 2]])

    def full(fd: int, buffers: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "writev", full)
    receiver.data([data[len(data) // 2 :]])
    assert isinstance(receiver.complete(), InstanceRejected)
    assert _folders(tmp_path) == ["SERVICES", "SERVICES/PACS"]


def test_an_aborted_instance_leaves_its_series_stored_before_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    stored = _receiver(store)
    stored.data([encode_data_set(_dataset())])
    assert isinstance(stored.complete(), InstanceStored)
    aborted = _receiver(store)
    aborted.data([encode_data_set(_dataset(InstanceNumber=98))[:-100]])
    aborted.abort()
    assert _files(tmp_path) == [FILE_PATH]
    # And the series goes on in the folder it has.
    again = _receiver(store)
    again.data([encode_data_set(_dataset())])
    assert isinstance(again.complete(), InstanceStored)


def test_a_series_folder_removed_as_empty_is_made_again(tmp_path: Path) -> None:
    # Another association's aborted instance removed the (then empty) folders this store
    # has in its cache: the next instance makes them again.
    store = Store(tmp_path)
    first = _receiver(store)
    first.data([encode_data_set(_dataset())[:-100]])
    first.abort()
    second = _receiver(store)
    second.data([encode_data_set(_dataset())])
    assert isinstance(second.complete(), InstanceStored)
    assert _files(tmp_path) == [FILE_PATH]


def test_invalid_uid_in_the_request(tmp_path: Path) -> None:
    receiver = Store(tmp_path).receiver(
        ASSOCIATION,
        sop_class_uid=MR_IMAGE_STORAGE,
        sop_instance_uid="1.2.\u00e9",
        transfer_syntax_uid=EXPLICIT_LE,
    )
    receiver.data([encode_data_set(_dataset())])
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceRejected)
    assert outcome.status == STATUS_INVALID_DATA_SET
    assert outcome.reason.startswith("invalid C-STORE request: UID")
    assert outcome.series_instance_uid == SERIES_UID
    assert _files(tmp_path) == []


def test_unknown_transfer_syntax_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="transfer syntax"):
        _receiver(Store(tmp_path), "1.2.840.113619.5.2")


def test_the_stored_file_is_a_valid_part_10_file(tmp_path: Path) -> None:
    ds = _dataset(PatientName="Müller^Jürgen")
    receiver = _receiver(Store(tmp_path, fsync=True))
    receiver.data([encode_data_set(ds)])
    outcome = receiver.complete()
    assert isinstance(outcome, InstanceStored)
    assert outcome.tags.PatientName == "Müller^Jürgen "  # as received, padding included
    stored = dcmread(io.BytesIO((tmp_path / outcome.file_path).read_bytes()))
    assert stored.PatientName == "Müller^Jürgen"
    assert stored.PixelData == ds.PixelData
