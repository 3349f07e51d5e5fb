"""Write the benchmark data sets (``python -m benchmarks.generate --sets small,medium``).

Everything is deterministic (seeded numpy, UIDs derived from names), so two machines that
generate the same set send byte-identical files. Sets already present are skipped. A set is
written into a hidden ``.partial`` folder and renamed into place before its manifest is
written, so an interrupted run leaves nothing that looks complete.

Pixel data is a smooth head-like phantom plus noise rather than random bytes, so that the
deflated and JPEG sets compress as real images do.
"""

from __future__ import annotations

import argparse
import io
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, generate_uid

from benchmarks.datasets import (
    DATA_ROOT,
    EXPLICIT_VR_LE,
    GENERATOR_VERSION,
    JPEG_BASELINE,
    JPEG_LOSSLESS_SV1,
    MULTIFRAME_GRAYSCALE_WORD_SC,
    SETS,
    Manifest,
    SetSpec,
    manifest_path,
    parse_set_names,
    read_manifest,
    set_directory,
    write_manifest,
)

BITS_STORED = 12
MAX_VALUE = (1 << BITS_STORED) - 1

Pixels = npt.NDArray[np.uint16]


@attrs.frozen
class Patient:
    patient_id: str
    name: str
    birth_date: str
    sex: str


@attrs.frozen
class Study:
    description: str
    date: str
    time: str
    accession: str


# Names chosen to exercise path sanitising in receivers that build paths from tags:
# carets, spaces, slashes and one non-ASCII name (hence ISO_IR 192 everywhere).
PATIENTS = (
    Patient("BNCH-0001", "Doe^Jane", "19660101", "F"),
    Patient("BNCH-0002", "Müller^Jürgen^^Dr.", "19480923", "M"),
    Patient("BNCH-0003", "Hanke_Stadler^0024_transrep", "19800412", "M"),
)
STUDIES = (
    Study("MR-Brain w/o Contrast", "20130308", "101512", "98edede8b2"),
    Study("MR Knee (left)", "20190717", "083001", "ACC20190717-17"),
    Study("Research: fMRI/DTI", "20240229", "154500.250", "R-4711"),
)
SERIES_DESCRIPTIONS = (
    "SAG MPRAGE 220 FOV",
    "AX T2 FLAIR",
    "DWI b=1000",
    "COR T1 POST GAD",
    "localizer",
)


def _uid(*parts: object) -> UID:
    """A UID that depends only on ``parts``: same set, same UIDs on every machine."""
    return generate_uid(entropy_srcs=["oxidicom-benchmarks", *map(str, parts)])


class Phantom:
    """Head-like ellipses whose size follows the slice position, plus seeded noise."""

    def __init__(self, rows: int, columns: int, seed: int) -> None:
        y, x = np.mgrid[-1.0 : 1.0 : rows * 1j, -1.0 : 1.0 : columns * 1j]
        self._x = x.astype(np.float32)
        self._y = y.astype(np.float32)
        self._rng = np.random.default_rng(seed)

    def slice(self, z: float) -> Pixels:
        """One image at ``z`` in [-1, 1]; ellipses shrink towards both ends."""
        x, y = self._x, self._y
        scale = np.float32(max(0.05, 1.0 - z * z))
        skull = (x / 0.82) ** 2 + (y / 0.95) ** 2 <= scale
        brain = (x / 0.74) ** 2 + (y / 0.87) ** 2 <= scale
        ventricle = ((x - 0.12) / 0.1) ** 2 + (y / 0.28) ** 2 <= scale
        image = 0.35 * skull + 0.3 * brain - 0.2 * ventricle + 0.05 * np.cos(6.0 * x + 3.0 * z)
        image = image + self._rng.normal(0.0, 0.015, size=image.shape).astype(np.float32)
        scaled = np.clip(image * MAX_VALUE, 0, MAX_VALUE)
        pixels: Pixels = scaled.astype("<u2")
        return pixels


@attrs.frozen
class InstancePlace:
    """Where instance ``index`` of a set sits in the patient/study/series hierarchy."""

    series_index: int
    instance_number: int
    instances_in_series: int

    @classmethod
    def of(cls, spec: SetSpec, index: int) -> InstancePlace:
        per_series = -(-spec.instances // spec.series)
        return cls(
            series_index=index // per_series,
            instance_number=index % per_series + 1,
            instances_in_series=min(
                per_series, spec.instances - (index // per_series) * per_series
            ),
        )

    @property
    def study_index(self) -> int:
        return self.series_index // 2

    def z(self) -> float:
        """Slice position in [-0.9, 0.9] within the series."""
        if self.instances_in_series == 1:
            return 0.0
        return -0.9 + 1.8 * (self.instance_number - 1) / (self.instances_in_series - 1)


def header(spec: SetSpec, place: InstancePlace) -> Dataset:
    """Every attribute but Pixel Data, with realistic patient/study/series values."""
    patient = PATIENTS[place.study_index % len(PATIENTS)]
    study = STUDIES[place.study_index % len(STUDIES)]
    study_uid = _uid(spec.name, "study", place.study_index)
    series_uid = _uid(spec.name, "series", place.series_index)
    sop_uid = _uid(spec.name, "instance", place.series_index, place.instance_number)
    thickness = 1.0

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.SOPClassUID = spec.sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = study.date
    ds.SeriesDate = study.date
    ds.ContentDate = study.date
    ds.StudyTime = study.time
    ds.SeriesTime = study.time
    ds.ContentTime = study.time
    ds.AccessionNumber = study.accession
    ds.Modality = "MR"
    ds.Manufacturer = "OXIDICOM BENCH"
    ds.InstitutionName = "Benchmark General Hospital"
    ds.ReferringPhysicianName = "Grey^Meredith"
    ds.StudyDescription = study.description
    ds.SeriesDescription = SERIES_DESCRIPTIONS[place.series_index % len(SERIES_DESCRIPTIONS)]
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.ProtocolName = f"bench_{spec.name}"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = str(place.study_index + 1)
    ds.SeriesNumber = place.series_index + 1
    ds.InstanceNumber = place.instance_number
    ds.FrameOfReferenceUID = _uid(spec.name, "frame-of-reference", place.study_index)
    ds.PositionReferenceIndicator = ""
    if spec.sop_class == MULTIFRAME_GRAYSCALE_WORD_SC:
        ds.ConversionType = "WSD"
        ds.NumberOfFrames = spec.frames
        ds.FrameTime = 33.3
        ds.FrameIncrementPointer = 0x00181063
    else:
        z_mm = round(place.z() * 100.0, 3)
        ds.ScanningSequence = "GR"
        ds.SequenceVariant = "SP"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.SliceThickness = thickness
        ds.RepetitionTime = 2300.0
        ds.EchoTime = 2.98
        ds.MagneticFieldStrength = 3.0
        ds.ImagePositionPatient = [-120.0, -120.0, z_mm]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.SliceLocation = z_mm
        ds.PixelSpacing = [round(240.0 / spec.rows, 4), round(240.0 / spec.columns, 4)]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = spec.rows
    ds.Columns = spec.columns
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = MAX_VALUE // 4
    ds.WindowWidth = MAX_VALUE // 2

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(spec.sop_class)
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = UID(EXPLICIT_VR_LE)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "OXIBENCH_GEN1"
    ds.file_meta = meta
    return ds


def write_single_frame(path: Path, ds: Dataset, pixels: Pixels, transfer_syntax: str) -> None:
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    dcmwrite(path, ds, enforce_file_format=True)


def write_multi_frame(path: Path, ds: Dataset, frames: Iterator[Pixels], nbytes: int) -> None:
    """Header through pydicom, then Pixel Data appended frame by frame: never all in memory.

    Pixel Data (7FE0,0010) is the last element of the data set, so appending its Explicit VR
    Little Endian element header and value after the encoded header yields a valid file.
    """
    head = io.BytesIO()
    dcmwrite(head, ds, enforce_file_format=True)
    with path.open("wb") as out:
        out.write(head.getvalue())
        out.write(struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OW", nbytes))
        written = 0
        for frame in frames:
            data = frame.tobytes()
            out.write(data)
            written += len(data)
    if written != nbytes:
        raise RuntimeError(f"wrote {written} pixel bytes, announced {nbytes}")


def encode_jpeg(source: Path, target: Path, transfer_syntax: str) -> None:
    """Compress with DCMTK's dcmcjpeg (pydicom has no JPEG encoder)."""
    process = {JPEG_LOSSLESS_SV1: "+e1", JPEG_BASELINE: "+eb"}[transfer_syntax]
    subprocess.run(
        ["dcmcjpeg", "-q", process, str(source), str(target)],
        check=True,
        capture_output=True,
    )


def _generate_into(spec: SetSpec, folder: Path) -> None:
    if spec.frames > 1:
        place = InstancePlace.of(spec, 0)
        ds = header(spec, place)
        phantom = Phantom(spec.rows, spec.columns, spec.seed)
        frames = (
            phantom.slice(-0.9 + 1.8 * i / max(1, spec.frames - 1)) for i in range(spec.frames)
        )
        nbytes = spec.rows * spec.columns * 2 * spec.frames
        write_multi_frame(folder / _file_name(place), ds, frames, nbytes)
        return

    compressed = spec.transfer_syntax in (JPEG_LOSSLESS_SV1, JPEG_BASELINE)
    staging = folder.parent / f".{spec.name}.staging"
    if compressed:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    phantom = Phantom(spec.rows, spec.columns, spec.seed)
    pending: list[tuple[Path, Path]] = []
    for index in range(spec.instances):
        place = InstancePlace.of(spec, index)
        ds = header(spec, place)
        pixels = phantom.slice(place.z())
        if compressed:
            source = staging / _file_name(place)
            write_single_frame(source, ds, pixels, EXPLICIT_VR_LE)
            pending.append((source, folder / _file_name(place)))
        else:
            write_single_frame(folder / _file_name(place), ds, pixels, spec.transfer_syntax)
    if compressed:
        with ThreadPoolExecutor() as pool:
            list(pool.map(lambda st: encode_jpeg(st[0], st[1], spec.transfer_syntax), pending))
        shutil.rmtree(staging)


def _file_name(place: InstancePlace) -> str:
    return f"s{place.series_index + 1:02d}-i{place.instance_number:05d}.dcm"


def generate_set(spec: SetSpec, root: Path = DATA_ROOT) -> Manifest:
    """Write one set (replacing any partial one) and its manifest."""
    root.mkdir(parents=True, exist_ok=True)
    final = set_directory(spec.name, root)
    partial = root / f".{spec.name}.partial"
    manifest_path(spec.name, root).unlink(missing_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    partial.mkdir()
    _generate_into(spec, partial)
    partial.rename(final)

    files = sorted(final.iterdir())
    if len(files) != spec.instances:
        raise RuntimeError(f"{spec.name}: wrote {len(files)} files, expected {spec.instances}")
    sample = files[len(files) // 2]
    sample_ds = dcmread(sample, stop_before_pixels=True)
    if sample_ds.file_meta.TransferSyntaxUID != spec.transfer_syntax:
        raise RuntimeError(f"{sample}: transfer syntax {sample_ds.file_meta.TransferSyntaxUID}")
    manifest = Manifest(
        spec=spec,
        generator_version=GENERATOR_VERSION,
        files=len(files),
        total_bytes=sum(f.stat().st_size for f in files),
        sample_file=sample.name,
        sample_sop_instance_uid=str(sample_ds.SOPInstanceUID),
    )
    write_manifest(manifest, root)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated (default: all)")
    parser.add_argument("--data-dir", type=Path, default=DATA_ROOT)
    parser.add_argument("--force", action="store_true", help="regenerate sets already present")
    args = parser.parse_args(argv)
    try:
        names = parse_set_names(args.sets)
    except ValueError as error:
        parser.error(str(error))
    needs_jpeg = any(SETS[n].transfer_syntax in (JPEG_LOSSLESS_SV1, JPEG_BASELINE) for n in names)
    if needs_jpeg and shutil.which("dcmcjpeg") is None:
        print("error: the jpeg set needs DCMTK's dcmcjpeg on PATH", file=sys.stderr)
        return 2

    for name in names:
        existing = read_manifest(name, args.data_dir)
        if existing is not None and not args.force:
            print(f"{name}: present ({existing.files} files, {existing.total_bytes:,} bytes)")
            continue
        started = time.perf_counter()
        manifest = generate_set(SETS[name], args.data_dir)
        print(
            f"{name}: wrote {manifest.files} files, {manifest.total_bytes:,} bytes "
            f"in {time.perf_counter() - started:.1f} s -> {set_directory(name, args.data_dir)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
