"""What the numbers were measured on: printed above every table, stored with every result."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import attrs


@attrs.frozen
class Filesystem:
    path: str
    mount_point: str
    fs_type: str
    device: str


@attrs.frozen
class Machine:
    cpu_model: str
    logical_cpus: int
    usable_cpus: int
    memory_gib: float
    kernel: str
    python: str
    dcmtk: str
    pynetdicom: str
    pydicom: str
    scratch: Filesystem
    data: Filesystem

    def markdown(self) -> str:
        rows = [
            ("CPU", f"{self.cpu_model}, {self.logical_cpus} logical ({self.usable_cpus} usable)"),
            ("memory", f"{self.memory_gib:.1f} GiB"),
            ("kernel", self.kernel),
            ("Python", self.python),
            ("DCMTK", self.dcmtk),
            ("pynetdicom / pydicom", f"{self.pynetdicom} / {self.pydicom}"),
            ("receivers write to", _fs_text(self.scratch)),
            ("data read from", _fs_text(self.data)),
        ]
        return "\n".join(f"- {key}: {value}" for key, value in rows)


def _fs_text(fs: Filesystem) -> str:
    return f"{fs.path} ({fs.fs_type} on {fs.device}, mounted at {fs.mount_point})"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return 0.0


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable ({error})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0].strip("$ ") if text else "unknown"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def filesystem_of(path: Path) -> Filesystem:
    """The mount that holds ``path``: the longest mount point that is a prefix of it."""
    real = os.path.realpath(path)
    best = Filesystem(real, "/", "unknown", "unknown")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount_point, fs_type, *_ = line.split()
        mount_point = mount_point.replace("\\040", " ")
        inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best.mount_point):
            best = Filesystem(real, mount_point, fs_type, device)
    return best


def describe(scratch: Path, data: Path) -> Machine:
    return Machine(
        cpu_model=_cpu_model(),
        logical_cpus=os.cpu_count() or 0,
        usable_cpus=len(os.sched_getaffinity(0)),
        memory_gib=_memory_gib(),
        kernel=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0],
        dcmtk=_first_line(["storescp", "--version"]),
        pynetdicom=_version("pynetdicom"),
        pydicom=_version("pydicom"),
        scratch=filesystem_of(scratch),
        data=filesystem_of(data),
    )
