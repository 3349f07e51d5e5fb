"""The fuzzer against our own in-process server: it must come out clean."""

from __future__ import annotations

from oxidicom.conformance import CHECKS, Severity
from oxidicom.net.server import DicomServer
from tests.conformance.conftest import App, finding_keys, fuzz, quick, start_server


async def test_our_server_is_clean(oxidicom_scp: DicomServer) -> None:
    report = await fuzz(oxidicom_scp.port, quick())

    assert report.findings == (), [f.verdict for f in report.findings]
    assert not report.stopped
    statuses = {status.name: status.status for status in report.checks}
    assert set(statuses) == set(CHECKS)
    # Every check was exercised (none has "not-exercised" or "not-applicable").
    assert set(statuses.values()) == {"pass"}, statuses
    assert report.peer["max_length"] == 16384
    assert report.peer["accepted"] == [1, 3]


async def test_lenient_server_accepts_over_long_pdata_as_a_warning() -> None:
    server = await start_server(App(), strict=False)
    try:
        report = await fuzz(server.port, quick(probes=("max-length",)))
    finally:
        await server.close(grace=2.0)

    assert finding_keys(report) == {("pdata-max-length", "accepted-oversized")}
    (finding,) = report.findings
    assert finding.severity is Severity.WARNING
    # Shrunk to the smallest excess the data set's even length allows.
    assert finding.script.fact("pdu_length") == 16386
    assert report.worst() is Severity.WARNING


async def test_a_time_budget_is_not_capped_by_the_examples(oxidicom_scp: DicomServer) -> None:
    """Under a time budget the deadline ends a probe, not a count: neither ``examples`` nor
    the 1000 inputs that once capped it (this probe makes 250-500 inputs a second on the
    project's VMs, so such a cap would end it after 2-4 of its 6 seconds; a slower machine
    only makes the check weaker, never false)."""
    config = quick(examples=1, seconds=6.0, probes=("sta2-invalid-rq",))
    report = await fuzz(oxidicom_scp.port, config)

    (run,) = report.probes
    assert run.examples > 1
    assert 6.0 <= run.seconds < 6.0 + 2.0
