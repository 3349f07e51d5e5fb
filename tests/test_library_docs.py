"""Every Python snippet of docs/library.md runs as written (in order, one namespace, as a
reader following the page would run them)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).parent.parent / "docs" / "library.md"
_SNIPPET = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_library_doc_snippets_run() -> None:
    snippets = _SNIPPET.findall(DOC.read_text())
    assert len(snippets) >= 5
    namespace: dict[str, object] = {"__name__": "library_doc"}
    for number, code in enumerate(snippets, 1):
        exec(compile(code, f"{DOC.name}, snippet {number}", "exec"), namespace)
