"""The documentation cannot cite what does not exist: every test that docs/bad-inputs.md
names as the one showing a refusal is a test function of that file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_test_cited_in_the_bad_input_table_exists():
    text = (REPO / "docs" / "bad-inputs.md").read_text(encoding="utf-8")
    current = None
    cited = []
    # "test_x.py::test_a`, `::test_b" -- a bare ::name is of the file named before it
    for file, name in re.findall(r"(test_\w+\.py)?::(test_\w+)", text):
        current = file or current
        cited.append((current, name))
    assert len(cited) > 40
    missing = [
        f"{file}::{name}"
        for file, name in cited
        if name not in defined_functions(REPO / "tests" / file)
    ]
    assert missing == []
