"""CPU quotas for receiver processes: each one capped as if it had a core of its own.

The multi-core target asks whether two worker processes do 1.8 times the work of one. On a
2-core machine that cannot be seen directly: one worker already keeps one core busy and the
sender, NATS and RabbitMQ the other. With ``--cpu-quota 0.4`` every receiver process found
just before the push gets its own cgroup with a CFS bandwidth limit of 0.4 CPU: one worker
is then a receiver on a slow core, two workers a receiver on two such cores, and the
machine keeps 1.2 CPU for everything else. The ratio between the two is the scaling the
target asks about, provided the rest (sender, brokers, disk) never runs short: the report's
*other CPU* and *sender CPU* columns tell whether it did.

Processes forked later (storescp ``--fork`` children) inherit their parent's group and share
its limit. cgroup v1 (``cpu`` controller: ``cpu.cfs_quota_us``) and v2 (``cpu.max``) both
work; either needs root.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

PERIOD_US = 100_000
_GROUP_PREFIX = "oxidicom-bench-"


class QuotaUnavailableError(Exception):
    """No writable cgroup hierarchy with a CPU controller."""


def _cpu_hierarchy() -> tuple[Path, int]:
    """The mount point of a cgroup hierarchy with the cpu controller, and its version."""
    with open("/proc/self/mounts") as mounts:
        entries = [line.split() for line in mounts]
    for _, mount_point, kind, options, *_ in entries:
        if kind == "cgroup" and "cpu" in options.split(","):
            return Path(mount_point), 1
    for _, mount_point, kind, *_ in entries:
        controllers = Path(mount_point, "cgroup.controllers")
        if kind == "cgroup2" and controllers.exists() and "cpu" in controllers.read_text().split():
            return Path(mount_point), 2
    raise QuotaUnavailableError("no cgroup hierarchy with the cpu controller is mounted")


class CpuQuota:
    """Gives processes one cgroup each, limited to ``cpus`` of a CPU; undone by :meth:`close`."""

    def __init__(self, cpus: float) -> None:
        if not 0.01 <= cpus <= (os.cpu_count() or 1):
            raise QuotaUnavailableError(f"--cpu-quota {cpus}: expected 0.01 .. CPU count")
        self.cpus = cpus
        self._root, self._version = _cpu_hierarchy()
        self._groups: dict[int, Path] = {}
        if self._version == 2:
            with contextlib.suppress(OSError):  # may be enabled already
                Path(self._root, "cgroup.subtree_control").write_text("+cpu")
        probe = self._root / f"{_GROUP_PREFIX}probe-{os.getpid()}"
        try:
            probe.mkdir(exist_ok=True)
            probe.rmdir()
        except OSError as error:
            why = f"cannot create a cgroup in {self._root}: {error}"
            raise QuotaUnavailableError(why) from error

    def confine(self, pids: Iterable[int]) -> int:
        """Put each of ``pids`` not yet confined into a limited group of its own; how many."""
        placed = 0
        for pid in pids:
            if pid in self._groups:
                continue
            group = self._root / f"{_GROUP_PREFIX}{os.getpid()}-{pid}"
            group.mkdir(exist_ok=True)
            quota = round(self.cpus * PERIOD_US)
            if self._version == 1:
                (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            else:
                (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            try:
                (group / "cgroup.procs").write_text(str(pid))
            except ProcessLookupError:
                group.rmdir()
                continue
            self._groups[pid] = group
            placed += 1
        return placed

    def close(self) -> None:
        """Remove the groups (their processes have exited or go back to the root group)."""
        for group in self._groups.values():
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        (self._root / "cgroup.procs").write_text(pid)
                group.rmdir()
        self._groups.clear()
