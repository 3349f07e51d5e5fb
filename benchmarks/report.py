"""Per-run records, their medians over rounds, and the markdown tables.

Rates are computed per run and the median is taken over rounds, so one slow round (a
neighbour on the shared machine, a writeback burst) does not move the result much. The
ratios divide one receiver's median by a baseline's median for the same set.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import attrs

MB = 1e6
GB = 1e9
MIB = 1 << 20
BASELINES = ("dcmtk-bitpreserving", "dcmtk-default")


@attrs.frozen
class RunRecord:
    """One push of one set into one receiver."""

    set_name: str
    receiver: str
    sender: str
    round: int
    instances: int
    bytes_sent: int
    ok: bool
    error: str | None
    wall_seconds: float
    receiver_cpu_seconds: float
    """Tree CPU just before stopping minus tree CPU once idle after start-up."""
    receiver_user_seconds: float
    receiver_system_seconds: float
    receiver_startup_cpu_seconds: float
    receiver_lifetime_cpu_seconds: float | None
    """os.wait4 of the root: whole life, root plus reaped descendants (cross-check)."""
    peak_rss_max_bytes: int
    peak_rss_sum_bytes: int
    receiver_processes: int
    sender_cpu_seconds: float
    sender_processes: int
    drain_seconds: float
    """From sender exit until every file was on disk (should be ~0)."""
    create_probe_us: float
    """File creation cost on the target measured just before the push (see fsprobe)."""
    other_cpu_seconds: float
    """Machine CPU during the push used by neither receiver nor sender: other load."""
    steal_seconds: float
    """CPU time the hypervisor gave to other guests during the push."""
    received_files: int
    received_bytes: int
    sample_check: str
    busiest_process_share: float = 1.0
    """The largest share of the push's receiver CPU spent by one process: 1.0 with one
    process; with two workers, 0.5 is a perfect split of the work. Children reaped during
    the push (storescp ``--fork``) count toward their parent."""

    @property
    def instances_per_second(self) -> float:
        return self.instances / self.wall_seconds

    @property
    def mb_per_second(self) -> float:
        return self.bytes_sent / MB / self.wall_seconds

    @property
    def cpu_seconds_per_gb(self) -> float:
        return self.receiver_cpu_seconds / (self.bytes_sent / GB)


@attrs.frozen
class Summary:
    """Medians over the successful rounds of one (set, receiver)."""

    set_name: str
    receiver: str
    rounds: int
    failed_rounds: int
    instances_per_second: float
    instances_per_second_min: float
    instances_per_second_max: float
    mb_per_second: float
    wall_seconds: float
    receiver_cpu_seconds: float
    receiver_user_seconds: float
    receiver_system_seconds: float
    cpu_seconds_per_gb: float
    peak_rss_max_bytes: float
    peak_rss_sum_bytes: float
    receiver_processes: int
    sender_cpu_seconds: float
    other_cpu_seconds: float
    create_probe_us: float
    sample_checks: tuple[str, ...]


def summarize(records: Sequence[RunRecord]) -> list[Summary]:
    keys: list[tuple[str, str]] = []
    for record in records:
        if (record.set_name, record.receiver) not in keys:
            keys.append((record.set_name, record.receiver))
    summaries = []
    for set_name, receiver in keys:
        mine = [r for r in records if (r.set_name, r.receiver) == (set_name, receiver)]
        good = [r for r in mine if r.ok]
        if not good:
            continue

        def median(metric: Callable[[RunRecord], float], runs: list[RunRecord] = good) -> float:
            return statistics.median(metric(r) for r in runs)

        rates = [r.instances_per_second for r in good]
        summaries.append(
            Summary(
                set_name=set_name,
                receiver=receiver,
                rounds=len(good),
                failed_rounds=len(mine) - len(good),
                instances_per_second=statistics.median(rates),
                instances_per_second_min=min(rates),
                instances_per_second_max=max(rates),
                mb_per_second=median(lambda r: r.mb_per_second),
                wall_seconds=median(lambda r: r.wall_seconds),
                receiver_cpu_seconds=median(lambda r: r.receiver_cpu_seconds),
                receiver_user_seconds=median(lambda r: r.receiver_user_seconds),
                receiver_system_seconds=median(lambda r: r.receiver_system_seconds),
                cpu_seconds_per_gb=median(lambda r: r.cpu_seconds_per_gb),
                peak_rss_max_bytes=median(lambda r: r.peak_rss_max_bytes),
                peak_rss_sum_bytes=median(lambda r: r.peak_rss_sum_bytes),
                receiver_processes=max(r.receiver_processes for r in good),
                sender_cpu_seconds=median(lambda r: r.sender_cpu_seconds),
                other_cpu_seconds=median(lambda r: r.other_cpu_seconds),
                create_probe_us=median(lambda r: r.create_probe_us),
                sample_checks=tuple(sorted({r.sample_check for r in good})),
            )
        )
    return summaries


def rate(value: float) -> str:
    """Three significant digits or more: 2,363 / 54.7 / 0.49."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(value: float, baseline: float | None) -> str:
    if baseline is None or baseline == 0:
        return "-"
    return f"{value / baseline:.2f}x"


def metrics_table(summaries: Sequence[Summary], failures: Sequence[RunRecord]) -> str:
    lines = [
        "| set | receiver | inst/s (min-max) | MB/s | push wall s | rx CPU s (user+sys) | CPU-s/GB "
        "| peak RSS max MiB | RSS sum MiB (procs) | sender CPU s | other CPU s | create us "
        "| rounds | sample |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        rounds = f"{s.rounds}" + (f" (+{s.failed_rounds} failed)" if s.failed_rounds else "")
        lines.append(
            f"| {s.set_name} | {s.receiver} "
            f"| {rate(s.instances_per_second)} ({rate(s.instances_per_second_min)}-"
            f"{rate(s.instances_per_second_max)}) "
            f"| {s.mb_per_second:,.1f} | {s.wall_seconds:.2f} | {s.receiver_cpu_seconds:.2f} "
            f"({s.receiver_user_seconds:.2f}+{s.receiver_system_seconds:.2f}) "
            f"| {s.cpu_seconds_per_gb:.2f} | {s.peak_rss_max_bytes / MIB:,.1f} "
            f"| {s.peak_rss_sum_bytes / MIB:,.1f} ({s.receiver_processes}) "
            f"| {s.sender_cpu_seconds:.2f} | {s.other_cpu_seconds:.2f} "
            f"| {s.create_probe_us:.0f} | {rounds} "
            f"| {', '.join(s.sample_checks)} |"
        )
    summarized = {(s.set_name, s.receiver) for s in summaries}
    for record in failures:
        if (record.set_name, record.receiver) not in summarized:
            summarized.add((record.set_name, record.receiver))
            lines.append(
                f"| {record.set_name} | {record.receiver} | FAILED: {record.error} "
                "| | | | | | | | | | | |"
            )
    return "\n".join(lines)


_RATIO_METRICS: tuple[Callable[[Summary], float], ...] = (
    lambda s: s.instances_per_second,
    lambda s: s.cpu_seconds_per_gb,
    lambda s: s.peak_rss_max_bytes,
)


def ratio_table(summaries: Sequence[Summary]) -> str:
    """Each receiver against both DCMTK baselines (>1x throughput is faster, >1x CPU/RSS
    is more expensive)."""
    lines = [
        "| set | receiver | inst/s ÷ +B | inst/s ÷ default | CPU-s/GB ÷ +B "
        "| CPU-s/GB ÷ default | peak RSS ÷ +B | peak RSS ÷ default |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_key = {(s.set_name, s.receiver): s for s in summaries}
    for s in summaries:
        cells = []
        for metric in _RATIO_METRICS:
            for baseline_name in BASELINES:
                baseline = by_key.get((s.set_name, baseline_name))
                cells.append(_ratio(metric(s), None if baseline is None else metric(baseline)))
        lines.append(f"| {s.set_name} | {s.receiver} | {' | '.join(cells)} |")
    return "\n".join(lines)
