"""CPU time and peak memory of a process and all its descendants, read from /proc.

A receiver may fork workers or spawn helpers, so every number here covers the whole tree:
the root, its live descendants (found by parent pid), and anything in its session (the
runner starts each receiver as a session leader, so daemonised helpers that were re-parented
to init still count). CPU includes cutime/cstime, i.e. children already reaped by their
parent; a child that exited and was reaped is therefore counted, but its peak RSS is lost
(VmHWM disappears with the process). ``os.wait4`` cannot replace it: its ru_maxrss also counts
the runner's memory that the child carried between fork and exec.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


@attrs.frozen
class ProcessSample:
    pid: int
    command: str
    user_seconds: float
    """utime + cutime: own threads plus reaped children, in user mode."""
    system_seconds: float
    """stime + cstime: the same in the kernel (file creation, copies, page faults)."""
    peak_rss_bytes: int
    """VmHWM: the highest resident set size since the process started."""

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.system_seconds


@attrs.frozen
class TreeSample:
    processes: tuple[ProcessSample, ...]

    @property
    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self.processes)

    @property
    def user_seconds(self) -> float:
        return sum(p.user_seconds for p in self.processes)

    @property
    def system_seconds(self) -> float:
        return sum(p.system_seconds for p in self.processes)

    @property
    def peak_rss_max_bytes(self) -> int:
        return max((p.peak_rss_bytes for p in self.processes), default=0)

    @property
    def peak_rss_sum_bytes(self) -> int:
        return sum(p.peak_rss_bytes for p in self.processes)

    def busiest_share_since(self, earlier: TreeSample) -> float:
        """The largest share of the CPU spent since ``earlier`` that went to one process."""
        before = {p.pid: p.cpu_seconds for p in earlier.processes}
        spent = [p.cpu_seconds - before.get(p.pid, 0.0) for p in self.processes]
        total = sum(spent)
        return max(spent) / total if total > 0 else 1.0


@attrs.frozen
class _Stat:
    pid: int
    command: str
    ppid: int
    session: int
    user_ticks: int
    system_ticks: int


def _read_stat(pid: int) -> _Stat | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command sits in parentheses and may itself contain spaces or parentheses.
    command = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return _Stat(
        pid=pid,
        command=command,
        ppid=int(rest[1]),
        session=int(rest[3]),
        user_ticks=utime + cutime,
        system_ticks=stime + cstime,
    )


def _peak_rss_bytes(pid: int) -> int:
    try:
        status = (_PROC / str(pid) / "status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0  # zombies and kernel threads have no memory lines


def tree_pids(root: int) -> list[int]:
    """The root, its descendants, and every process in the root's session."""
    stats = [s for s in map(_read_stat, _all_pids()) if s is not None]
    children: dict[int, list[int]] = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat.pid)
    found = {root}
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    found.update(s.pid for s in stats if s.session == root)
    return sorted(found)


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in _PROC.iterdir() if entry.name.isdigit()]


def sample_tree(root: int) -> TreeSample:
    samples = []
    for pid in tree_pids(root):
        stat = _read_stat(pid)
        if stat is None:
            continue
        samples.append(
            ProcessSample(
                pid=pid,
                command=stat.command,
                user_seconds=stat.user_ticks / _CLOCK_TICKS,
                system_seconds=stat.system_ticks / _CLOCK_TICKS,
                peak_rss_bytes=_peak_rss_bytes(pid),
            )
        )
    return TreeSample(tuple(samples))
