"""``oxidicom fuzz``: the command line, its report file and ``--replay``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from oxidicom.cli import main
from oxidicom.conformance import CHECKS
from oxidicom.net.server import DicomServer
from tests.conformance.conftest import App, start_server

_QUICK = ["--examples", "3", "--timeout", "1", "--artim", "0", "--shrink-seconds", "10", "-q"]


async def test_clean_peer_exits_zero(
    oxidicom_scp: DicomServer, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fuzz", "127.0.0.1", str(oxidicom_scp.port), "--probe", "sta6-unexpected", *_QUICK]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "findings: none" in out
    assert "pass            sta6-unexpected-pdu" in out


async def test_findings_report_and_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_server(App(refuse=lambda rq: bool(rq.user_information.unknown_items)))
    report = tmp_path / "report.json"
    port = str(server.port)
    try:
        argv = ["fuzz", "127.0.0.1", port, "--probe", "unknown-sub-items", "--report", str(report)]
        assert await asyncio.to_thread(main, [*argv, *_QUICK]) == 1
        out = capsys.readouterr().out
        assert "[F1] ERROR  unknown-sub-items-ignored (answer-changed)" in out
        data = json.loads(report.read_text())
        assert data["command"].startswith("oxidicom fuzz 127.0.0.1 ")
        assert [f["check"] for f in data["findings"]] == ["unknown-sub-items-ignored"]

        replay = ["fuzz", "127.0.0.1", port, "--replay", str(report), "-q"]
        assert await asyncio.to_thread(main, replay) == 1
        assert (
            "F1 unknown-sub-items-ignored (answer-changed): reproduced" in capsys.readouterr().out
        )
    finally:
        await server.close(grace=2.0)


def test_list_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--list-checks"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CHECKS)


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "127.0.0.1"]) == 2
    assert main(["fuzz", "127.0.0.1", "104", "--probe", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert "HOST and PORT are required" in err
    assert "unknown probe 'nonsense'" in err
