"""Our asyncio requestor (``oxidicom.net.associate``) against pynetdicom's storage SCP.

The SCP runs in this process (pynetdicom's threads, see ``pynetdicom_peer.StorageScp``) and
records every data set exactly as it came off the wire, so what we sent can be compared
byte for byte with what the file holds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.pdu import A_ABORT_RQ

from oxidicom.net.requestor import (
    AssociationAbortedError,
    RequestorConfig,
    associate,
    propose,
)
from oxidicom.part10 import read_part10_header
from tests.peers.ports import LOOPBACK
from tests.peers.pynetdicom_peer import VERIFICATION, AssociationRecord, StorageScp

pytestmark = pytest.mark.interop

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CONFIG = RequestorConfig(
    calling_ae_title="OXISCU",
    called_ae_title="PYNETDICOM",
    acse_timeout=10.0,
    dimse_timeout=10.0,
    connect_timeout=10.0,
)


def encode(data_set: Dataset, transfer_syntax: str) -> bytes:
    """``data_set`` encoded in an uncompressed little endian ``transfer_syntax``."""
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = transfer_syntax == ImplicitVRLittleEndian
    write_dataset(buffer, data_set)
    return bytes(buffer.getvalue())


def small_instance(patient: str) -> Dataset:
    data_set = Dataset()
    data_set.SOPClassUID = UID(SECONDARY_CAPTURE)
    data_set.SOPInstanceUID = generate_uid()
    data_set.StudyInstanceUID = generate_uid()
    data_set.SeriesInstanceUID = generate_uid()
    data_set.PatientName = patient
    data_set.PatientID = "ODD"  # odd length: padded on encoding
    data_set.Modality = "OT"
    data_set.InstanceNumber = 1
    return data_set


def write_part10(path: Path, data_set: Dataset, transfer_syntax: str) -> bytes:
    """Write ``data_set`` as a Part 10 file; return its encoded data set (after the meta)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = data_set.SOPClassUID
    meta.MediaStorageSOPInstanceUID = data_set.SOPInstanceUID
    meta.TransferSyntaxUID = UID(transfer_syntax)
    encoded = encode(data_set, transfer_syntax)
    buffer = DicomBytesIO()
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, meta)
    path.write_bytes(bytes(buffer.getvalue()) + encoded)
    assert dcmread(path).SOPInstanceUID == data_set.SOPInstanceUID  # a valid file
    return encoded


async def ended_associations(scp: StorageScp, count: int) -> list[AssociationRecord]:
    return await asyncio.to_thread(scp.wait_for_associations, count)


async def test_echo_store_file_and_data_set_then_release(
    pynetdicom_scp: StorageScp, tmp_path: Path
) -> None:
    on_disk = small_instance("FILE^SENT")
    file = tmp_path / "instance.dcm"
    file_data_set = write_part10(file, on_disk, ExplicitVRLittleEndian)
    in_memory = small_instance("MEMORY^SENT")
    memory_data_set = encode(in_memory, ImplicitVRLittleEndian)
    contexts = propose(
        [
            (VERIFICATION, [ImplicitVRLittleEndian]),
            (SECONDARY_CAPTURE, [ExplicitVRLittleEndian]),
            (SECONDARY_CAPTURE, [ImplicitVRLittleEndian]),
        ]
    )

    association = await associate(pynetdicom_scp.host, pynetdicom_scp.port, contexts, CONFIG)
    echo_status = await association.echo()
    from_file = await association.store_file(read_part10_header(file))
    from_memory = await association.store_data_set(
        SECONDARY_CAPTURE,
        str(in_memory.SOPInstanceUID),
        ImplicitVRLittleEndian,
        memory_data_set,
    )
    await association.release()

    assert echo_status == 0x0000
    assert (from_file.status, from_memory.status) == (0x0000, 0x0000)
    [first, second] = pynetdicom_scp.received()
    assert (first.calling_aet, first.called_aet) == ("OXISCU", "PYNETDICOM")
    assert (first.sop_class_uid, first.sop_instance_uid) == (
        SECONDARY_CAPTURE,
        str(on_disk.SOPInstanceUID),
    )
    assert first.transfer_syntax == ExplicitVRLittleEndian
    assert first.data == file_data_set
    assert first.dataset().PatientName == "FILE^SENT"
    assert second.sop_instance_uid == str(in_memory.SOPInstanceUID)
    assert second.transfer_syntax == ImplicitVRLittleEndian
    assert second.data == memory_data_set
    [record] = await ended_associations(pynetdicom_scp, 1)
    assert record.ending == "released"
    assert record.max_pdu == CONFIG.max_length_received


async def test_store_file_larger_than_the_peers_pdu_arrives_whole(
    pynetdicom_scp: StorageScp, tmp_path: Path
) -> None:
    # Many P-DATA-TF PDUs for one data set: pynetdicom accepts 16382 bytes by default.
    data_set = small_instance("LARGE^FILE")
    data_set.Rows, data_set.Columns = 250, 400
    data_set.SamplesPerPixel = 1
    data_set.PhotometricInterpretation = "MONOCHROME2"
    data_set.BitsAllocated, data_set.BitsStored, data_set.HighBit = 8, 8, 7
    data_set.PixelRepresentation = 0
    data_set.PixelData = bytes(range(256)) * 390 + bytes(160)  # 100 000 bytes
    data_set["PixelData"].VR = "OB"
    file = tmp_path / "large.dcm"
    expected = write_part10(file, data_set, ExplicitVRLittleEndian)
    contexts = propose([(SECONDARY_CAPTURE, [ExplicitVRLittleEndian])])

    async with await associate(
        pynetdicom_scp.host, pynetdicom_scp.port, contexts, CONFIG
    ) as association:
        result = await association.store_file(read_part10_header(file))

    assert result.status == 0x0000
    [instance] = pynetdicom_scp.received()
    assert instance.sop_instance_uid == str(data_set.SOPInstanceUID)
    assert instance.data == expected


class AbortWatcher:
    """A pynetdicom Verification SCP that notes the PDUs it receives and its EVT_ABORTED.

    (``StorageScp`` keeps only the first ending it hears, and for an abort by the requestor
    pynetdicom reports the closed connection, EVT_CONN_CLOSE, before EVT_ABORTED.)
    """

    def __init__(self) -> None:
        self.aborted = threading.Event()
        self.pdus: list[object] = []
        ae = AE(ae_title="PYNETDICOM")
        ae.add_supported_context(VERIFICATION, [str(ImplicitVRLittleEndian)])
        handlers: list[Any] = [
            (evt.EVT_C_ECHO, lambda _event: 0x0000),
            (evt.EVT_PDU_RECV, lambda event: self.pdus.append(event.pdu)),
            (evt.EVT_ABORTED, lambda _event: self.aborted.set()),
        ]
        server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=handlers)
        assert server is not None
        self.server = server
        self.port: int = server.server_address[1]


@pytest.fixture
def abort_watcher() -> Iterator[AbortWatcher]:
    watcher = AbortWatcher()
    yield watcher
    watcher.server.shutdown()


async def test_abort_is_seen_by_pynetdicom_as_an_abort(abort_watcher: AbortWatcher) -> None:
    contexts = propose([(VERIFICATION, [ImplicitVRLittleEndian])])
    association = await associate(LOOPBACK, abort_watcher.port, contexts, CONFIG)
    assert await association.echo() == 0x0000
    assert not abort_watcher.aborted.is_set()

    association.abort()

    assert await asyncio.to_thread(abort_watcher.aborted.wait, 10.0), "no EVT_ABORTED"
    last = abort_watcher.pdus[-1]
    assert isinstance(last, A_ABORT_RQ)
    assert (last.source, last.reason_diagnostic) == (0, 0)  # service-user initiated
    with pytest.raises(AssociationAbortedError):
        await association.echo()
