"""``oxidicom.ul`` and ``oxidicom.dimse`` are sans-IO (docs/library.md): importing them
brings in no event loop, socket, thread or clock.

Two checks, because neither sees everything: a fresh interpreter shows what importing them
really adds (also through other oxidicom modules), but it starts with ``time`` loaded and
attrs, their one dependency, loads ``threading``; their source shows direct imports of those.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import oxidicom.dimse
import oxidicom.ul

PACKAGES = ("oxidicom.ul", "oxidicom.dimse")
IO_MODULES = frozenset({"asyncio", "socket", "selectors", "threading", "time"})

_IMPORT_ALL = f"""
import importlib, json, pkgutil, sys
import attrs  # their dependency: what it loads is not theirs
before = set(sys.modules)
for name in {PACKAGES!r}:
    package = importlib.import_module(name)
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(module.name)
print(json.dumps({{"before": sorted(before), "added": sorted(set(sys.modules) - before)}}))
"""


def test_importing_the_sans_io_packages_loads_no_io_module() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL], capture_output=True, text=True, check=True
    )
    modules = json.loads(done.stdout)
    assert "oxidicom.ul.association" in modules["added"]  # the walk did import them
    assert {"asyncio", "socket", "selectors"}.isdisjoint(modules["before"])  # so it can fail
    assert IO_MODULES.isdisjoint(modules["added"])


def test_the_sans_io_sources_import_no_io_module() -> None:
    sources = [
        path
        for package in (oxidicom.ul, oxidicom.dimse)
        for path in sorted(Path(package.__file__ or "").parent.rglob("*.py"))
    ]
    assert len(sources) > 10
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            imported = {name.partition(".")[0] for name in names}
            assert not imported & IO_MODULES, f"{path}:{node.lineno} imports {imported}"
