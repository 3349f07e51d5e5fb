"""Every Python snippet of docs/library.md runs as written (in order, one namespace, as a
reader following the page would run them), and the examples use only what it makes public."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "library.md"
_SNIPPET = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_library_doc_snippets_run() -> None:
    snippets = _SNIPPET.findall(DOC.read_text())
    assert len(snippets) >= 5
    namespace: dict[str, object] = {"__name__": "library_doc"}
    for number, code in enumerate(snippets, 1):
        exec(compile(code, f"{DOC.name}, snippet {number}", "exec"), namespace)


def _oxidicom_imports(path: Path) -> Iterator[tuple[str, str]]:
    """(module, name) of each ``from oxidicom... import name`` in ``path``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            assert not any(alias.name.startswith("oxidicom") for alias in node.names), path
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("oxidicom"):
            yield from ((node.module or "", alias.name) for alias in node.names)


def test_examples_import_only_documented_public_names() -> None:
    documented = set(re.findall(r"^\| `(oxidicom[\w.]*)` \|", DOC.read_text(), re.MULTILINE))
    examples = sorted((ROOT / "examples").glob("*.py"))
    assert examples
    for path in examples:
        for module, name in _oxidicom_imports(path):
            if f"{module}.{name}" in documented:  # from oxidicom import net
                continue
            assert module in documented, f"{path.name}: {module} is not a documented package"
            public = importlib.import_module(module).__all__
            assert name in public, f"{path.name}: {name} is not in {module}.__all__"
