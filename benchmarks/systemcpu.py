"""Machine-wide CPU counters, to tell a clean round from a disturbed one.

The machine is shared: CPU that neither the receiver nor the sender used during a push was
used by someone else (or by interrupt handling the processes were not charged for), and
``steal`` is time the hypervisor gave to other guests. Both explain a slow round whose
receiver CPU looks normal.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class SystemCpu:
    busy_seconds: float
    """user + nice + system + irq + softirq, summed over all CPUs."""
    steal_seconds: float


def read_system_cpu() -> SystemCpu:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return SystemCpu(
        busy_seconds=(user + nice + system + irq + softirq) / _CLOCK_TICKS,
        steal_seconds=steal / _CLOCK_TICKS,
    )
