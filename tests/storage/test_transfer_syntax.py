"""Which transfer syntaxes we can walk, and how their data sets are encoded."""

from __future__ import annotations

import pydicom.uid
import pytest
from pydicom._uid_dict import UID_dictionary

from oxidicom.storage.transfer_syntax import (
    DatasetEncoding,
    dataset_encoding,
    standard_transfer_syntaxes,
)


def test_uncompressed_transfer_syntaxes() -> None:
    assert dataset_encoding(pydicom.uid.ImplicitVRLittleEndian) is (
        DatasetEncoding.IMPLICIT_VR_LITTLE_ENDIAN
    )
    assert dataset_encoding(pydicom.uid.ExplicitVRLittleEndian) is (
        DatasetEncoding.EXPLICIT_VR_LITTLE_ENDIAN
    )
    assert dataset_encoding(pydicom.uid.ExplicitVRBigEndian) is (
        DatasetEncoding.EXPLICIT_VR_BIG_ENDIAN
    )
    assert dataset_encoding(pydicom.uid.DeflatedExplicitVRLittleEndian) is (
        DatasetEncoding.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    )


@pytest.mark.parametrize(
    "uid",
    [
        pydicom.uid.JPEGBaseline8Bit,
        pydicom.uid.JPEGLosslessSV1,
        pydicom.uid.JPEG2000Lossless,
        pydicom.uid.JPEGLSLossless,
        pydicom.uid.RLELossless,
        pydicom.uid.HTJ2K,
        pydicom.uid.MPEG4HP41,
        pydicom.uid.HEVCMP51,
        "1.2.840.10008.1.2.1.98",  # Encapsulated Uncompressed Explicit VR Little Endian
        "1.2.840.10008.1.2.4.94",  # JPIP Referenced
        "1.2.840.10008.1.2.8.1",  # Deflated Image Frame Compression: frames, not the data set
        "1.2.840.10008.1.2.4.110",  # JPEG XL Lossless
        "1.2.840.10008.1.2.4.52",  # retired JPEG
    ],
)
def test_compressed_transfer_syntaxes_have_explicit_little_endian_data_sets(uid: str) -> None:
    assert dataset_encoding(uid) is DatasetEncoding.EXPLICIT_VR_LITTLE_ENDIAN


@pytest.mark.parametrize("uid", ["1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.205"])
def test_jpip_deflate_transfer_syntaxes_deflate_the_data_set(uid: str) -> None:
    encoding = dataset_encoding(uid)
    assert encoding is not None
    assert encoding.deflated


@pytest.mark.parametrize(
    "uid",
    [
        "1.2.840.113619.5.2",  # GE private implicit VR big endian pixels
        "1.3.46.670589.33.1.4.1",  # Philips private
        "1.2.840.10008.1.2.6.1",  # RFC 2557 MIME encapsulation (retired)
        "1.2.840.10008.1.2.6.2",  # XML encoding (retired)
        "1.2.840.10008.5.1.4.1.1.4",  # a SOP class, not a transfer syntax
        "",
    ],
)
def test_private_or_unknown_transfer_syntaxes_are_refused(uid: str) -> None:
    assert dataset_encoding(uid) is None


def test_padding_is_ignored() -> None:
    assert dataset_encoding("1.2.840.10008.1.2\0") is DatasetEncoding.IMPLICIT_VR_LITTLE_ENDIAN


def test_every_binary_transfer_syntax_pydicom_knows_is_standard() -> None:
    known = {uid for uid, entry in UID_dictionary.items() if entry[1] == "Transfer Syntax"}
    assert known - standard_transfer_syntaxes() == {
        "1.2.840.10008.1.2.6.1",
        "1.2.840.10008.1.2.6.2",
    }


def test_encoding_properties_agree_with_pydicom() -> None:
    # pydicom takes the retired Papyrus 3 Implicit VR Little Endian for explicit VR.
    for uid in standard_transfer_syntaxes() - {"1.2.840.10008.1.20"}:
        encoding = dataset_encoding(uid)
        assert encoding is not None
        pydicom_uid = pydicom.uid.UID(uid)
        if pydicom_uid.is_transfer_syntax:
            assert encoding.implicit_vr == pydicom_uid.is_implicit_VR, uid
            assert encoding.little_endian == pydicom_uid.is_little_endian, uid
