"""The README promises what the code does: its settings table and its test command."""

from __future__ import annotations

from pathlib import Path

from oxidicom.settings import settings_table_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_the_settings_table_is_the_one_the_code_documents() -> None:
    assert settings_table_markdown().strip() in (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nscripts/test\n" in readme
    assert "exec scripts/test" in ci
