"""The Part 10 header, checked by reading it back with pydicom."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID

from oxidicom.storage.filemeta import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    encode_part10_header,
)
from tests.storage.data_sets import encode_data_set

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


def _data_set() -> bytes:
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientID = "p1"
    return encode_data_set(ds)


def test_pydicom_reads_back_every_value() -> None:
    header = encode_part10_header(
        sop_class_uid=MR_IMAGE_STORAGE,
        sop_instance_uid="1.2.3.4",
        transfer_syntax_uid=EXPLICIT_VR_LITTLE_ENDIAN,
        source_ae_title="OXITESTORTHANC",
    )
    ds = dcmread(io.BytesIO(header + _data_set()))
    assert ds.preamble == bytes(128)
    meta = ds.file_meta
    assert meta.FileMetaInformationVersion == b"\x00\x01"
    assert meta.MediaStorageSOPClassUID == MR_IMAGE_STORAGE
    assert meta.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert meta.TransferSyntaxUID == EXPLICIT_VR_LITTLE_ENDIAN
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert meta.SourceApplicationEntityTitle == "OXITESTORTHANC"
    assert ds.PatientID == "p1"


def test_group_length_and_padding() -> None:
    header = encode_part10_header(
        sop_class_uid="1.2.3",  # odd: one NUL of padding
        sop_instance_uid="1.2.34",  # even: none
        transfer_syntax_uid="1.2.840.10008.1.2",
        source_ae_title="ODD",  # odd: one space of padding
    )
    assert header[128:132] == b"DICM"
    tag, vr, length, group_length = struct.unpack_from("<I2sHI", header, 132)
    assert (tag, vr, length) == (0x00000002, b"UL", 4)
    assert len(header) == 132 + 12 + group_length
    assert b"\x02\x00\x02\x00UI\x06\x001.2.3\0" in header
    assert b"\x02\x00\x03\x00UI\x06\x001.2.34" in header
    assert header.endswith(b"\x02\x00\x16\x00AE\x04\x00ODD ")


def test_empty_source_ae_title_is_left_out() -> None:
    header = encode_part10_header(
        sop_class_uid=MR_IMAGE_STORAGE,
        sop_instance_uid="1.2.3.4",
        transfer_syntax_uid=EXPLICIT_VR_LITTLE_ENDIAN,
        source_ae_title="  ",
    )
    meta = dcmread(io.BytesIO(header + _data_set())).file_meta
    assert "SourceApplicationEntityTitle" not in meta


@pytest.mark.parametrize("aet", ["CT\u00c4SCANNER", "A" * 17, "BACK\\SLASH", "TAB\tAE", "NUL\0AE"])
def test_source_ae_title_that_is_no_ae_value_is_left_out(aet: str) -> None:
    # A PACS with an odd calling AE title still has its instances stored.
    header = encode_part10_header(
        sop_class_uid=MR_IMAGE_STORAGE,
        sop_instance_uid="1.2.3.4",
        transfer_syntax_uid=EXPLICIT_VR_LITTLE_ENDIAN,
        source_ae_title=aet,
    )
    meta = dcmread(io.BytesIO(header + _data_set())).file_meta
    assert "SourceApplicationEntityTitle" not in meta
    assert meta.MediaStorageSOPInstanceUID == "1.2.3.4"


def test_uid_padding_from_the_request_is_not_doubled() -> None:
    header = encode_part10_header(
        sop_class_uid=MR_IMAGE_STORAGE + "\0",
        sop_instance_uid="1.2.3.4\0",
        transfer_syntax_uid=EXPLICIT_VR_LITTLE_ENDIAN + "\0",
    )
    meta = dcmread(io.BytesIO(header + _data_set())).file_meta
    assert meta.MediaStorageSOPClassUID == MR_IMAGE_STORAGE
    assert meta.TransferSyntaxUID == EXPLICIT_VR_LITTLE_ENDIAN


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sop_instance_uid": "1.2.\u00e9"},
        {"sop_class_uid": "1.2.\u00e9"},
        {"sop_instance_uid": "1" * 70000},
    ],
)
def test_unencodable_values_raise_value_error(kwargs: dict[str, str]) -> None:
    arguments = {
        "sop_class_uid": MR_IMAGE_STORAGE,
        "sop_instance_uid": "1.2.3",
        "transfer_syntax_uid": EXPLICIT_VR_LITTLE_ENDIAN,
        **kwargs,
    }
    with pytest.raises(ValueError, match=r"\S"):
        encode_part10_header(**arguments)


def test_implementation_identity_is_valid() -> None:
    assert UID(IMPLEMENTATION_CLASS_UID).is_valid
    assert IMPLEMENTATION_CLASS_UID.startswith("2.25.")
    assert len(IMPLEMENTATION_VERSION_NAME) <= 16


_UID = st.from_regex(r"[1-9][0-9]{0,5}(\.(0|[1-9][0-9]{0,8})){1,5}", fullmatch=True)


@given(
    _UID,
    _UID,
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\\"), max_size=16
    ),
)
def test_any_uids_round_trip(sop_class: str, sop_instance: str, aet: str) -> None:
    header = encode_part10_header(
        sop_class_uid=sop_class,
        sop_instance_uid=sop_instance,
        transfer_syntax_uid=EXPLICIT_VR_LITTLE_ENDIAN,
        source_ae_title=aet,
    )
    meta = dcmread(io.BytesIO(header + _data_set())).file_meta
    assert meta.MediaStorageSOPClassUID == sop_class
    assert meta.MediaStorageSOPInstanceUID == sop_instance
    assert meta.get("SourceApplicationEntityTitle", "") == aet
