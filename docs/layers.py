"""The library's layers: which package may import which, checked against the code, and the
package graph drawn into docs/design.md as a Mermaid flowchart.

    python docs/layers.py            # check the imports, rewrite the graph in docs/design.md
    python docs/layers.py --check    # exit 1 on a forbidden import or a stale graph
    python docs/layers.py --png F    # also draw the graph as a picture (matplotlib)

Every import of an ``ecoembed`` module counts, also those inside functions. A package may
import its own modules and those of packages in lower layers, nothing else: not a higher
layer, not a sibling of its own layer: the two producers of raw data, ``synth`` and
``acquire``, know nothing of each other, and inference (``embed``) reads checkpoints
without the trainer (``train``).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rulegraph import between_markers  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ecoembed"
DESIGN = REPO / "docs" / "design.md"
START, END = "<!-- layers:start -->", "<!-- layers:end -->"

# Lowest first. Packages on one line form one layer. Top-level modules of ecoembed count
# as units of their own name (``config``, ``__main__``).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("io",),
    ("synth", "acquire"),
    ("cube",),
    ("models",),
    ("train", "embed"),
    ("gpp",),
    ("evaluation",),
    ("plots",),
    ("config",),
    ("__main__",),
)
# What each layer is for, shown in the graph.
ROLES = {
    "io": "formats, sensors, time axis, grid",
    "synth": "synthetic world",
    "acquire": "real data from STAC",
    "cube": "analysis-ready cubes",
    "models": "PyTorch modules, checkpoints",
    "train": "stage 1 and 2 training",
    "embed": "dense export, tower series",
    "gpp": "GPP inputs, models, CV",
    "evaluation": "scoring against truth",
    "plots": "figures",
    "config": "config checks",
    "__main__": "command line",
}
# The method never reads the synthetic world's physics nor the acquisition code.
METHOD = ("cube", "models", "train", "embed", "gpp")
PRODUCERS = ("synth", "acquire")


def rank_of() -> dict[str, int]:
    return {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str | None:
    """``ecoembed.embed.dense`` -> ``embed``; None outside the package."""
    parts = module.split(".")
    if parts[0] != "ecoembed" or len(parts) < 2:
        return None
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    return (PACKAGE / name / "__init__.py").exists() or (PACKAGE / f"{name}.py").exists()


def imported_modules(path: Path) -> list[str]:
    """Every ecoembed module the file imports, absolute or relative, at any depth."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.append(base)
            if base == "ecoembed":  # from ecoembed import io: the names that are modules
                found += [f"ecoembed.{a.name}" for a in node.names if _is_module(a.name)]
    return [m for m in found if unit_of(m) is not None]


def import_edges(root: Path = PACKAGE) -> Counter[tuple[str, str]]:
    """(importing unit, imported unit) -> number of importing files, across units."""
    edges: Counter[tuple[str, str]] = Counter()
    for path in sorted(root.rglob("*.py")):
        src = unit_of(module_name(path))
        targets = {unit_of(m) for m in imported_modules(path)} - {src, None}
        for dst in targets:
            edges[(src, dst)] += 1
    return edges


def violations(edges: Counter[tuple[str, str]]) -> list[str]:
    rank = rank_of()
    out = []
    for src, dst in sorted(edges):
        if src not in rank or dst not in rank:
            unknown = src if src not in rank else dst
            out.append(f"{unknown}: not in any layer (docs/layers.py LAYERS)")
        elif rank[dst] >= rank[src]:
            how = "a sibling" if rank[dst] == rank[src] else "a higher layer"
            out.append(f"{src} imports {dst}, {how}")
        elif src in METHOD and dst in PRODUCERS:
            out.append(f"{src} imports {dst}: the method must not read a data producer")
    return out


def mermaid(edges: Counter[tuple[str, str]]) -> str:
    """Layers top to bottom, an arrow per importing pair, labelled with the file count."""
    present = {u for pair in edges for u in pair} | {
        p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    node = {u: re.sub(r"\W", "", u) or "main" for u in ROLES}
    lines = ["```mermaid", "flowchart BT"]
    for layer in LAYERS:
        for unit in layer:
            if unit in present:
                lines.append(f'    {node[unit]}["<b>{unit}</b><br/>{ROLES[unit]}"]')
    for (src, dst), n in sorted(edges.items()):
        lines.append(f"    {node[src]} -->|{n}| {node[dst]}")
    lines.append("```")
    return "\n".join(lines)


def draw_png(edges: Counter[tuple[str, str]], path: Path) -> None:
    """The same graph as a picture: layers as rows, lowest at the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = {}
    for i, layer in enumerate(LAYERS):
        for j, unit in enumerate(layer):
            pos[unit] = ((j - (len(layer) - 1) / 2) * 3.0, i)
    fig, ax = plt.subplots(figsize=(9, 11))
    for (src, dst), n in edges.items():
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        bad = bool(violations(Counter({(src, dst): 1})))
        ax.annotate(
            "",
            xy=(x1, y1 + 0.25),
            xytext=(x0, y0 - 0.25),
            arrowprops={
                "arrowstyle": "->",
                "color": "#D55E00" if bad else "#0072B2",
                "alpha": 0.9 if bad else 0.5,
                "lw": 0.6 + 0.3 * n,
                "connectionstyle": f"arc3,rad={0.08 * (y0 - y1 - 1):.2f}",
            },
        )
    for unit, (x, y) in pos.items():
        ax.text(
            x,
            y,
            f"{unit}\n{ROLES[unit]}",
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "round", "fc": "#F0E442" if unit in PRODUCERS else "white"},
        )
    ax.set_xlim(-5, 5)
    ax.set_ylim(-0.7, len(LAYERS) - 0.3)
    ax.set_axis_off()
    ax.set_title(
        "ecoembed: imports between packages\n"
        "(width: importing files; vermilion: forbidden by docs/layers.py)"
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if wrong")
    parser.add_argument("--png", type=Path, help="also draw the graph into this file")
    args = parser.parse_args(argv)
    edges = import_edges()
    bad = violations(edges)
    for line in bad:
        print(f"forbidden import: {line}", file=sys.stderr)
    text = DESIGN.read_text(encoding="utf-8")
    new = between_markers(text, START, END, mermaid(edges), DESIGN)
    if args.png:
        draw_png(edges, args.png)
    if args.check:
        if new != text:
            print(
                f"{DESIGN}: the package graph is out of date; run python docs/layers.py",
                file=sys.stderr,
            )
            return 1
        return 1 if bad else 0
    if new != text:
        DESIGN.write_text(new, encoding="utf-8")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
