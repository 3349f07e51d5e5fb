"""Real SCUs push into the receiver; every file must land at its contract path, intact.

* pynetdicom sends pydicom's own test files byte for byte in their own transfer syntax:
  the stored data set must be the very bytes of the source file's data set.
* DCMTK's storescu re-encodes what it sends (in the syntax it negotiated): the stored
  element values must equal the source's.
* Orthanc pushes a study whose instances use three compressed syntaxes, which it sends
  over one association per syntax.

In every case the file meta must describe the C-STORE: SOP class and instance of the
request, transfer syntax of the presentation context, calling AE title, our
implementation class UID (contract §3).
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from pydicom import dcmread
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

from tests.e2e.checks import Registrations, assert_part10, assert_same_elements, files_from
from tests.e2e.cube_contract import expected_file_path, expected_registration
from tests.e2e.dicom_files import data_set_bytes, pydicom_file, with_values
from tests.peers.dcmtk import Proposal, storescu
from tests.peers.orthanc import Modality, Orthanc
from tests.peers.oxidicom_receiver import Receiver
from tests.peers.pynetdicom_peer import run_scu


@attrs.frozen
class Source:
    """A test file, possibly completed with the tags the contract requires."""

    name: str
    transfer_syntax: str
    completion: dict[str, str] = attrs.field(factory=dict)

    def path(self, workdir: Path) -> Path:
        if not self.completion:
            return pydicom_file(self.name)
        return with_values(pydicom_file(self.name), workdir / self.name, self.completion)


PYDICOM_FILES = [
    Source("MR_small_implicit.dcm", ImplicitVRLittleEndian),
    Source("CT_small.dcm", ExplicitVRLittleEndian),
    Source("MR_small_bigendian.dcm", ExplicitVRBigEndian),
    # pydicom's only deflated file has an empty StudyDate and PatientID; pydicom re-deflates.
    Source(
        "image_dfl.dcm",
        DeflatedExplicitVRLittleEndian,
        {"StudyDate": "20001231", "PatientID": "DFL1"},
    ),
    Source("SC_rgb_jpeg_dcmtk.dcm", JPEGBaseline8Bit),
    Source("JPEG-lossy.dcm", JPEGExtended12Bit),
    Source("JPEG-LL.dcm", JPEGLosslessSV1),
    Source("MR_small_jpeg_ls_lossless.dcm", JPEGLSLossless),
    Source(
        "JPEGLSNearLossless_08.dcm",
        JPEGLSNearLossless,
        {
            "PatientID": "JLS1",
            "StudyDate": "20190101",
            "StudyInstanceUID": generate_uid(),
            "SeriesInstanceUID": generate_uid(),
        },
    ),
    Source("MR_small_jp2klossless.dcm", JPEG2000Lossless),
    Source("JPEG2000.dcm", JPEG2000),
    Source("MR_small_RLE.dcm", RLELossless),
]


def _stored_path(receiver: Receiver, calling_aet: str, source: Path) -> Path:
    """The one file ``calling_aet`` has stored, checked to be at the contract path."""
    expected = expected_file_path(calling_aet, dcmread(source, stop_before_pixels=True))
    assert files_from(receiver, calling_aet) == [expected]
    return receiver.files_root / expected


@pytest.mark.parametrize("source", PYDICOM_FILES, ids=lambda s: f"{s.name}-{s.transfer_syntax}")
def test_pynetdicom_file_is_stored_byte_for_byte(
    rx: Receiver, aet: str, tmp_path: Path, source: Source
) -> None:
    path = source.path(tmp_path)
    sent = dcmread(path)
    assert sent.file_meta.TransferSyntaxUID == source.transfer_syntax

    result = run_scu(rx.host, rx.port, items=[path], calling_aet=aet)

    assert (result.ending, result.statuses) == ("released", (0x0000,))
    [context] = result.contexts
    assert context.transfer_syntax == source.transfer_syntax
    stored_path = _stored_path(rx, aet, path)
    assert data_set_bytes(stored_path) == data_set_bytes(path)
    stored = assert_part10(
        stored_path,
        sop_class_uid=sent.SOPClassUID,
        sop_instance_uid=sent.SOPInstanceUID,
        transfer_syntax=source.transfer_syntax,
        calling_aet=aet,
    )
    assert_same_elements(stored, sent)


STORESCU_CASES = [
    # (file, storescu proposal, syntax it arrives in: the first proposed one we support,
    # then storescu picks the context with the file's own syntax if it can)
    ("MR_small_implicit.dcm", "little", ExplicitVRLittleEndian),
    ("CT_small.dcm", "implicit", ImplicitVRLittleEndian),
    ("MR_small_implicit.dcm", "big", ExplicitVRBigEndian),
    ("MR_small_bigendian.dcm", "implicit", ImplicitVRLittleEndian),
    ("MR_small_bigendian.dcm", "uncompr", ExplicitVRBigEndian),
    ("CT_small.dcm", "deflated", DeflatedExplicitVRLittleEndian),
    ("MR_small_RLE.dcm", "rle", RLELossless),
    ("JPEG-LL.dcm", "lossless", JPEGLosslessSV1),
    ("SC_rgb_jpeg_dcmtk.dcm", "jpeg8", JPEGBaseline8Bit),
    ("MR_small_jpeg_ls_lossless.dcm", "jls-lossless", JPEGLSLossless),
    ("MR_small_jp2klossless.dcm", "j2k-lossless", JPEG2000Lossless),
]


@pytest.mark.parametrize(("name", "proposal", "transfer_syntax"), STORESCU_CASES, ids=str)
def test_storescu_instance_keeps_its_values(
    rx: Receiver, aet: str, name: str, proposal: Proposal, transfer_syntax: str
) -> None:
    source = pydicom_file(name)
    sent = dcmread(source)

    result = storescu(rx.host, rx.port, [source], calling_aet=aet, proposal=proposal).check()

    assert result.responses == ("Success",)
    stored = assert_part10(
        _stored_path(rx, aet, source),
        sop_class_uid=sent.SOPClassUID,
        sop_instance_uid=sent.SOPInstanceUID,
        transfer_syntax=transfer_syntax,
        calling_aet=aet,
    )
    assert_same_elements(stored, sent)


ORTHANC_STUDY = [
    ("JPEG-lossy.dcm", JPEGExtended12Bit),
    ("JPEG-LL.dcm", JPEGLosslessSV1),
    ("JPEG2000.dcm", JPEG2000),
]
"""Three instances of one NM series (pydicom's CompressedSamples^NM1), each in its own
compressed syntax: Orthanc pushes them over three associations."""


def test_orthanc_pushes_a_study(
    rx: Receiver,
    aet: str,
    orthanc_peer: Orthanc,
    wait_for_registrations: Registrations,
) -> None:
    sources = [pydicom_file(name) for name, _ in ORTHANC_STUDY]
    for source in sources:
        orthanc_peer.upload(source)
    [study] = orthanc_peer.studies()
    orthanc_peer.put_modality("oxidicom", Modality("ChRIS", rx.host, rx.port))

    answer = orthanc_peer.store("oxidicom", [study], extra={"LocalAet": aet})

    assert answer.ok, answer
    assert (answer.body["InstancesCount"], answer.body["FailedInstancesCount"]) == (3, 0)
    sent = [dcmread(source) for source in sources]
    assert files_from(rx, aet) == sorted(expected_file_path(aet, ds) for ds in sent)
    for ds, (_, transfer_syntax) in zip(sent, ORTHANC_STUDY, strict=True):
        stored = assert_part10(
            rx.files_root / expected_file_path(aet, ds),
            sop_class_uid=ds.SOPClassUID,
            sop_instance_uid=ds.SOPInstanceUID,
            transfer_syntax=transfer_syntax,
            calling_aet=aet,
        )
        assert_same_elements(stored, ds)
    # One association per syntax, so one registration of the series per association.
    registrations = wait_for_registrations(aet, 3)
    assert registrations == [expected_registration(aet, sent[0], ndicom=1)] * 3
