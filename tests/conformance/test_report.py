"""The JSON report: its schema, and reading it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oxidicom.conformance import CHECKS, Severity, read_json, to_json, write_json
from oxidicom.conformance.report import SCHEMA
from tests.conformance.conftest import App, fuzz, quick, start_server

_STEP_ACTS = {"associate", "inject", "echo", "release", "idle"}


def _check_schema(data: dict[str, Any]) -> None:
    assert data["schema"] == SCHEMA
    assert set(data) >= {
        "target",
        "command",
        "settings",
        "peer",
        "started",
        "seconds",
        "stopped",
        "counts",
        "probes",
        "checks",
        "findings",
    }
    assert set(data["target"]) == {"host", "port", "address"}
    assert set(data["counts"]) == {severity.value for severity in Severity}
    assert [check["name"] for check in data["checks"]] == list(CHECKS)
    for check in data["checks"]:
        assert check["status"] in {"pass", "finding", "not-exercised", "not-applicable"}
        assert isinstance(check["examples"], int)
        assert check["section"] == CHECKS[check["name"]].section
    for probe in data["probes"]:
        assert set(probe) == {"name", "examples", "seconds", "note"}
    for finding in data["findings"]:
        assert set(finding) == {
            "id",
            "check",
            "code",
            "severity",
            "section",
            "requirement",
            "summary",
            "expected",
            "observed",
            "probe",
            "reproduced",
            "reproducer",
            "transcript",
        }
        assert finding["check"] in CHECKS
        assert finding["severity"] in data["counts"]
        for step in finding["reproducer"]["steps"]:
            assert step["act"] in _STEP_ACTS
            bytes.fromhex(step["wire"])
        for entry in finding["transcript"]:
            assert entry["sent"] is None or bytes.fromhex(entry["sent"]) is not None
            for pdu in entry.get("received", ()):
                assert set(pdu) == {"pdu", "hex"}


async def test_json_report_schema_and_round_trip(tmp_path: Path) -> None:
    server = await start_server(App(refuse=lambda rq: rq.protocol_version != 1))
    try:
        report = await fuzz(server.port, quick(probes=("protocol-version",)))
    finally:
        await server.close(grace=2.0)
    assert report.findings, "the planted bug (rejecting version bits besides bit 0) is found"

    data = to_json(report)
    _check_schema(data)
    assert json.loads(json.dumps(data)) == data  # plain JSON types only

    path = tmp_path / "report.json"
    write_json(report, path)
    _check_schema(json.loads(path.read_text()))
    back = read_json(path)
    assert [f.script for f in back.findings] == [f.script for f in report.findings]
    assert [f.verdict for f in back.findings] == [f.verdict for f in report.findings]
    assert to_json(back)["findings"] == data["findings"]
