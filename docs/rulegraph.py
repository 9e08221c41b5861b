"""Write the workflow's rule graph into README.md and docs/workflow.md as a Mermaid
flowchart (rendered as a picture by GitHub, GitLab, most Markdown viewers and the docs
site), or check that it is current.

    python docs/rulegraph.py           # rewrite the blocks between the files' markers
    python docs/rulegraph.py --check   # exit 1 if a file's graph is out of date

The graph comes from ``snakemake all --rulegraph dot`` on the default config; the rule
``all`` (which only collects targets) is left out.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TARGETS = (README, REPO / "docs" / "workflow.md")
START, END = "<!-- rulegraph:start -->", "<!-- rulegraph:end -->"
LEFT_OUT = {"all"}


def rulegraph_dot() -> str:
    with tempfile.TemporaryDirectory() as workdir:
        run = subprocess.run(
            [sys.executable, "-m", "snakemake", "all", "--rulegraph", "dot", "--quiet", "all"]
            + ["-s", str(REPO / "Snakefile"), "--directory", workdir],
            capture_output=True,
            text=True,
            check=True,
        )
    return run.stdout


def edges(dot: str) -> list[tuple[str, str]]:
    """(upstream rule, downstream rule) pairs, sorted."""
    labels = dict(re.findall(r"^\s*(\d+)\[label = \"(\w+)\"", dot, re.MULTILINE))
    pairs = {
        (labels[a], labels[b])
        for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.MULTILINE)
        if labels[a] not in LEFT_OUT and labels[b] not in LEFT_OUT
    }
    return sorted(pairs)


def mermaid(pairs: list[tuple[str, str]]) -> str:
    lines = ["```mermaid", "flowchart LR"]
    lines += [f"    {a} --> {b}" for a, b in pairs]
    lines.append("```")
    return "\n".join(lines)


def between_markers(text: str, start: str, end: str, block: str, where: Path) -> str:
    """``text`` with what lies between the ``start`` and ``end`` markers replaced by
    ``block`` (docs/layers.py writes its graph into docs/design.md the same way)."""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{where}: no {start} ... {end} markers")
    return pattern.sub(lambda _: f"{start}\n{block}\n{end}", text)


def main(argv: list[str]) -> int:
    graph = mermaid(edges(rulegraph_dot()))
    stale = []
    for path in TARGETS:
        current = path.read_text(encoding="utf-8")
        wanted = between_markers(current, START, END, graph, path)
        if wanted == current:
            continue
        if "--check" in argv:
            stale.append(path.relative_to(REPO).as_posix())
        else:
            path.write_text(wanted, encoding="utf-8")
    if stale:
        print(f"{', '.join(stale)}: the rule graph is out of date; run python docs/rulegraph.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
