"""How much creating one file costs on the receivers' target, right now.

On an ext4 file system without a journal, allocating an inode skips every inode of the
block group freed in the last minutes (``recently_deleted`` in the kernel), checking each
one: creating files next to thousands just deleted costs ~1 ms of system CPU per file
instead of ~50 us. Every receiver writes one file per instance, so on the 4 KB set this can
dominate the measurement, and it depends on what anyone on the machine deleted lately.
Hence the runner

- never deletes received files before the end of the invocation,
- marks its scratch folder as a "top directory" (``chattr +T``), so that ext4's Orlov
  allocator spreads the runs' folders over block groups,
- probes the cost inside each run's folder (hidden files, which the file count ignores)
  and moves to another folder while it is high; the probe result is reported per run.
"""

from __future__ import annotations

import array
import fcntl
import os
import time
from pathlib import Path

PROBE_FILES = 200
PROBE_BYTES = 4096
SLOW_CREATE_US = 200.0

# From <linux/fs.h>; the flag's ioctls take a pointer to a long.
_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_TOPDIR_FL = 0x00020000


def spread_subdirectories(folder: Path) -> bool:
    """Set the ext4 "top of directory hierarchy" flag on ``folder`` (``chattr +T``): its new
    subdirectories are then spread over block groups. False where unsupported (tmpfs)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        flags[0] |= _FS_TOPDIR_FL
        fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def create_cost_us(folder: Path, files: int = PROBE_FILES) -> float:
    """Mean wall time in microseconds to create, write 4 KiB to and close one new file.

    The files are hidden (``.create-probe-*``) and left in place: deleting them would slow
    the receivers' creates.
    """
    folder.mkdir(parents=True, exist_ok=True)
    payload = b"\0" * PROBE_BYTES
    started = time.perf_counter()
    for index in range(files):
        path = folder / f".create-probe-{index:05d}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, payload)
        finally:
            os.close(fd)
    return (time.perf_counter() - started) / files * 1e6
