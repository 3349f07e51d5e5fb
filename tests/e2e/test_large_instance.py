"""A single instance of several hundred MB streams through: the receiver's memory stays flat.

The check is memory, not time: the receiver's peak resident set (``VmHWM``) is read
before and after it receives a 300 MB multi-frame image, which our own SCU streams from
disk. A receiver that buffered the data set would grow by its size; a streaming one by
no more than its buffers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydicom import dcmread

from tests.e2e.cube_contract import expected_file_path
from tests.e2e.dicom_files import data_set_digest, make_instance, write_large_instance
from tests.peers.oxidicom_receiver import ReceiverFactory

MiB = 1 << 20
FRAMES = 600
"""600 frames of 512 x 512 16-bit pixels: 300 MiB of pixel data."""
ALLOWED_GROWTH = 64 * MiB
PEAK_LIMIT = 64 * MiB
"""The whole receiver, imports included, after the large instance (the performance target)."""


def peak_rss(pid: int) -> int:
    """``VmHWM`` of a process, in bytes: the most memory it has ever held resident."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:]
            assert unit == "kB"
            return int(value) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def send(host: str, port: int, path: Path, aet: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "oxidicom", "send", "-q", "-aet", aet, host, str(port), str(path)],
        check=True,
        timeout=600,
    )


def test_receiving_300_mb_keeps_peak_memory_flat(
    own_receiver: ReceiverFactory, tmp_path: Path
) -> None:
    rx = own_receiver()
    tags = {"PatientID": "BIG1", "StudyDate": "20240315", "SeriesDescription": "large"}
    warm_up = tmp_path / "small.dcm"
    make_instance(tags).save_as(warm_up, enforce_file_format=True)
    large = write_large_instance(tmp_path / "large.dcm", tags, frames=FRAMES)
    assert large.stat().st_size > 300 * MiB
    # Everything an association needs once (imports, buffers) is in the baseline.
    send(rx.host, rx.port, warm_up, "WARMUP")
    before = peak_rss(rx.process.pid)

    send(rx.host, rx.port, large, "LARGE")

    peak = peak_rss(rx.process.pid)
    growth = peak - before
    assert growth < ALLOWED_GROWTH, f"peak RSS grew by {growth / MiB:.1f} MiB"
    assert peak < PEAK_LIMIT, f"peak RSS {peak / MiB:.1f} MiB"
    stored = rx.files_root / expected_file_path("LARGE", dcmread(large, stop_before_pixels=True))
    assert data_set_digest(stored) == data_set_digest(large)


def test_receiver_does_not_load_numpy(own_receiver: ReceiverFactory, tmp_path: Path) -> None:
    """pydicom would import numpy (17 MiB) for pixel data the receiver never decodes."""
    rx = own_receiver()
    instance = tmp_path / "one.dcm"
    tags = {"PatientID": "NONUMPY", "StudyDate": "20240315"}
    make_instance(tags).save_as(instance, enforce_file_format=True)
    send(rx.host, rx.port, instance, "NONUMPY")

    assert len(rx.files()) == 1
    mapped = Path(f"/proc/{rx.process.pid}/maps").read_text()
    assert "/numpy/" not in mapped
