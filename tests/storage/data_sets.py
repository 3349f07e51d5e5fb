"""Data sets encoded by pydicom as a peer would send them, for the storage tests."""

from __future__ import annotations

import zlib

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from oxidicom.storage.transfer_syntax import dataset_encoding

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"


def encode_data_set(ds: Dataset, transfer_syntax: str = EXPLICIT_LE) -> bytes:
    """``ds`` without file meta, in ``transfer_syntax`` (deflated when it says so)."""
    encoding = dataset_encoding(transfer_syntax)
    assert encoding is not None
    fp = DicomBytesIO()
    fp.is_implicit_VR = encoding.implicit_vr
    fp.is_little_endian = encoding.little_endian
    write_dataset(fp, ds)
    data = fp.getvalue()
    if encoding.deflated:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
    return data
