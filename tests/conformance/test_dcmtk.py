"""The fuzzer against DCMTK's storescp finds what DCMTK 3.6.7 is known to do differently
from PS3.8 (each reproduced by hand with the reproducer's bytes)."""

from __future__ import annotations

import pytest

from oxidicom.conformance import Severity, Target, run
from oxidicom.conformance.script import Act
from tests.conformance.conftest import finding_keys, quick
from tests.peers.dcmtk import Storescp

pytestmark = pytest.mark.interop


def test_known_dcmtk_findings(dcmtk_storescp: Storescp) -> None:
    config = quick(probes=("sta2-unrecognized", "sta6-unrecognized", "reserved-fields"))
    report = run(Target.resolve(dcmtk_storescp.host, dcmtk_storescp.port), config)

    keys = finding_keys(report)
    # AA-8 names the service-provider (2) as the source; DCMTK sends 0 (service-user).
    assert ("sta6-unrecognized-pdu", "abort-source") in keys
    # Table 9-17: the AC repeats bytes 11-74; DCMTK zeroes the 32 reserved bytes.
    assert ("ac-echoes-request-fields", "not-echoed") in keys
    # AA-1: A-ABORT first. DCMTK resets the connection instead (or, for a zero-length PDU
    # of an undefined type, waits for more bytes).
    assert {
        ("sta2-unrecognized-pdu", "closed-without-abort"),
        ("sta2-unrecognized-pdu", "kept-open"),
    } & keys
    assert not report.stopped

    by_key = {(f.verdict.check, f.verdict.code): f for f in report.findings}
    abort_source = by_key["sta6-unrecognized-pdu", "abort-source"]
    assert abort_source.severity is Severity.WARNING
    assert abort_source.reproduced == (1, 1)
    # Shrunk: associate, then the smallest PDU of an undefined type (0x00, empty).
    associate, injected, echo = abort_source.script.steps
    assert (associate.act, injected.act, echo.act) == (Act.ASSOCIATE, Act.INJECT, Act.ECHO)
    assert injected.wire == bytes.fromhex("000000000000")
    assert "source 0" in abort_source.verdict.observed
