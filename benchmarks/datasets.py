"""The benchmark data sets: what each one holds and where its files live.

Shared by the generator (which writes a set) and the runner (which needs the count, the byte
total and the transfer syntax to choose how to send it and to verify the receiver's output).
A set counts as present only when its manifest exists: the generator writes it last.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import cattrs

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
MULTIFRAME_GRAYSCALE_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"

DATA_ROOT = Path(__file__).resolve().parent / "data"

# Bump when the generated content changes, so stale sets are regenerated.
GENERATOR_VERSION = 1


@attrs.frozen
class SetSpec:
    """What one set holds; its files are ``instances`` Part 10 files in one folder."""

    name: str
    instances: int
    series: int
    rows: int
    columns: int
    frames: int
    transfer_syntax: str
    sop_class: str
    seed: int
    summary: str


SETS: dict[str, SetSpec] = {
    spec.name: spec
    for spec in (
        SetSpec(
            name="small",
            instances=2000,
            series=5,
            rows=40,
            columns=40,
            frames=1,
            transfer_syntax=EXPLICIT_VR_LE,
            sop_class=MR_IMAGE_STORAGE,
            seed=1,
            summary="2000 x ~4 KB MR (40x40x16 bit), 5 series, Explicit VR LE",
        ),
        SetSpec(
            name="medium",
            instances=200,
            series=2,
            rows=512,
            columns=512,
            frames=1,
            transfer_syntax=EXPLICIT_VR_LE,
            sop_class=MR_IMAGE_STORAGE,
            seed=2,
            summary="200 x 512 KB MR (512x512x16 bit), 2 series, Explicit VR LE",
        ),
        SetSpec(
            name="large",
            instances=1,
            series=1,
            rows=512,
            columns=512,
            frames=1024,
            transfer_syntax=EXPLICIT_VR_LE,
            sop_class=MULTIFRAME_GRAYSCALE_WORD_SC,
            seed=3,
            summary="1 x 512 MiB multi-frame SC (1024 frames 512x512x16 bit), Explicit VR LE",
        ),
        SetSpec(
            name="deflated",
            instances=200,
            series=2,
            rows=256,
            columns=256,
            frames=1,
            transfer_syntax=DEFLATED_EXPLICIT_VR_LE,
            sop_class=MR_IMAGE_STORAGE,
            seed=4,
            summary="200 x 128 KB-before-deflate MR (256x256x16 bit), 2 series, Deflated LE",
        ),
        SetSpec(
            name="jpeg",
            instances=200,
            series=2,
            rows=512,
            columns=512,
            frames=1,
            transfer_syntax=JPEG_LOSSLESS_SV1,
            sop_class=MR_IMAGE_STORAGE,
            seed=5,
            summary="200 x 512x512 12-bit MR, 2 series, JPEG Lossless SV1 (dcmcjpeg)",
        ),
    )
}


@attrs.frozen
class Manifest:
    """What the generator wrote: the runner's source of truth for counts and sizes."""

    spec: SetSpec
    generator_version: int
    files: int
    total_bytes: int
    sample_file: str
    sample_sop_instance_uid: str

    def directory(self, root: Path = DATA_ROOT) -> Path:
        return set_directory(self.spec.name, root)

    def file_paths(self, root: Path = DATA_ROOT) -> list[Path]:
        """Every instance file of the set, in a stable order."""
        return sorted(p for p in self.directory(root).iterdir() if p.is_file())


_converter = cattrs.Converter()


def set_directory(name: str, root: Path = DATA_ROOT) -> Path:
    return root / name


def manifest_path(name: str, root: Path = DATA_ROOT) -> Path:
    return root / f"{name}.json"


def write_manifest(manifest: Manifest, root: Path = DATA_ROOT) -> None:
    path = manifest_path(manifest.spec.name, root)
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(_converter.unstructure(manifest), indent=2) + "\n")
    tmp.replace(path)


def read_manifest(name: str, root: Path = DATA_ROOT) -> Manifest | None:
    """The set's manifest, or None when the set is absent, partial or from an older generator."""
    path = manifest_path(name, root)
    if not path.is_file():
        return None
    raw: Any = json.loads(path.read_text())
    try:
        manifest = _converter.structure(raw, Manifest)
    except (cattrs.BaseValidationError, KeyError, TypeError, ValueError):
        return None
    if manifest.generator_version != GENERATOR_VERSION or manifest.spec != SETS.get(name):
        return None
    if not set_directory(name, root).is_dir():
        return None
    return manifest


def parse_set_names(text: str) -> list[str]:
    """``small,medium`` -> names, in the given order; unknown names raise ValueError."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in SETS]
    if unknown:
        raise ValueError(f"unknown set(s) {', '.join(unknown)}; known: {', '.join(SETS)}")
    if not names:
        raise ValueError("no set named")
    return names
