"""What a workflow run made, in a screenful of plain text (``python -m ecoembed summary``).

Read from the tables the rules write under ``results/`` of a working directory:

* ``results/gpp/summary.csv`` (rule gpp_eval; required): pooled R² of every input set with
  its bootstrap interval, for the headline model and split (those of the README's seed
  benchmark, ``benchmarks/seeds.py``), without and with the tower's meteorology side by
  side; fused sets first, then the others by R², the oracle last;
* ``results/gpp/differences.csv`` (rule gpp_eval): the paired R² differences of ``fused``
  against every other set, with their intervals;
* ``results/eval/reconstruction.csv`` (rule eval_reconstruction, target ``embeddings``):
  the RMSE of the fused reconstruction, linear interpolation and the Whittaker smoother
  under cloud, on clear dates and on days without S2, pooled over tiles and bands;

then where the figures, the report and the docs are, or how to make them.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pandas as pd

from ecoembed.gpp.confidence import REFERENCE
from ecoembed.io.names import FIGURE_NAMES, MET_SUFFIX

# The model and split the README quotes (benchmarks/seeds.py HEADLINE_MODEL, HEADLINE_SPLIT);
# where a config ran neither, the first of the table's.
HEADLINE_MODEL, HEADLINE_SPLIT = "temporal_net", "loso"
FUSED_SETS = (REFERENCE, "fused_interp")  # shown first
LAST_SETS = ("oracle",)  # the truth's fAPAR: the ceiling, shown last
SUMMARY = Path("results/gpp/summary.csv")
DIFFERENCES = Path("results/gpp/differences.csv")
RECONSTRUCTION = Path("results/eval/reconstruction.csv")
FIGURES = Path("results/figures")
REPORT = Path("results/report.html")
# (label, period, subset) of the reconstruction table's pooled rows shown
RECONSTRUCTION_ROWS = (
    ("S2 dates under cloud", "s2_dates", "cloud"),
    ("S2 dates, clear", "s2_dates", "clear"),
    ("days without S2", "no_s2_days", "all"),
)
RECONSTRUCTION_METHODS = ("fused", "linear", "whittaker")
NAME_WIDTH = 18


class MissingResultsError(FileNotFoundError):
    """The working directory has no GPP summary: the workflow's main target has not run."""


def _num(value: float, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _with_interval(value: float, lo: float, hi: float, signed: bool = False) -> str:
    return f"{_num(value, signed):>6} [{_num(lo, signed)}, {_num(hi, signed)}]"


def headline(table: pd.DataFrame) -> tuple[str, str]:
    """The headline model and split if the table has them, else its first pair."""
    pairs = list(dict.fromkeys(zip(table["model"], table["split"], strict=True)))
    if (HEADLINE_MODEL, HEADLINE_SPLIT) in pairs:
        return HEADLINE_MODEL, HEADLINE_SPLIT
    return pairs[0]


def base_name(input_set: str) -> str:
    return input_set.removesuffix(MET_SUFFIX)


def set_order(rows: pd.DataFrame) -> list[str]:
    """Base input sets (no ``+met``): fused ones first, then by R² without meteorology
    (with it where a set has only that), best first, the oracle last."""
    r2 = {}
    for r in rows.itertuples(index=False):
        name = base_name(r.input_set)
        if r.input_set == name or name not in r2:
            r2[name] = r.r2
    rest = [n for n in r2 if n not in FUSED_SETS and n not in LAST_SETS]
    rest.sort(key=lambda n: -r2[n] if not math.isnan(r2[n]) else math.inf)
    return [n for n in FUSED_SETS if n in r2] + rest + [n for n in LAST_SETS if n in r2]


def _columns(has_plain: bool, has_met: bool) -> list[tuple[str, str]]:
    """(suffix, heading) of the columns shown: without and with meteorology."""
    cols = [("", "without met")] if has_plain else []
    return cols + ([(MET_SUFFIX, f"with met ({MET_SUFFIX})")] if has_met else [])


def gpp_lines(summary: pd.DataFrame) -> list[str]:
    model, split = headline(summary)
    rows = summary[(summary["model"] == model) & (summary["split"] == split)]
    towers = int(rows["n_sites"].max()) if len(rows) else 0
    names = set(rows["input_set"])
    cols = _columns(any(n == base_name(n) for n in names), any(n != base_name(n) for n in names))
    by_set = rows.set_index("input_set")
    lines = [
        f"GPP at the flux towers: pooled R² [bootstrap interval], {model}, "
        f"{split.upper()}, {towers} towers",
        " " * (NAME_WIDTH + 2) + "".join(f"{h:<24}" for _, h in cols).rstrip(),
    ]
    for name in set_order(rows):
        cells = []
        for suffix, _ in cols:
            key = f"{name}{suffix}"
            if key in by_set.index:
                r = by_set.loc[key]
                cells.append(f"{_with_interval(r['r2'], r['r2_lo'], r['r2_hi']):<24}")
            else:
                cells.append(f"{'-':<24}")
        lines.append(f"  {name:<{NAME_WIDTH}}" + "".join(cells).rstrip())
    return lines


def difference_lines(
    differences: pd.DataFrame, model: str, split: str, order: list[str] | None = None
) -> list[str]:
    """``fused`` (and ``fused+met``) minus every other set, in ``order`` (base names) where
    given, else as the table has them."""
    rows = differences[(differences["model"] == model) & (differences["split"] == split)]
    if rows.empty:
        return []
    plain = rows[rows["input_set"] == REFERENCE]
    met = rows[rows["input_set"] == f"{REFERENCE}{MET_SUFFIX}"]
    cols = _columns(not plain.empty, not met.empty)
    cell = {}
    for r in rows.itertuples(index=False):
        resolved = str(r.resolved).lower() == "true"
        text = _with_interval(r.r2_diff, r.r2_diff_lo, r.r2_diff_hi, signed=True)
        cell[r.other] = text + ("*" if resolved else "")
    others = list(dict.fromkeys(base_name(o) for o in rows["other"]))
    if order is not None:
        others = [o for o in order if o in others] + [o for o in others if o not in order]
    lines = [
        f"Paired differences, {REFERENCE} minus each set: ΔR² [interval]; "
        "* the interval excludes 0",
        " " * (NAME_WIDTH + 2) + "".join(f"{h:<26}" for _, h in cols).rstrip(),
    ]
    for other in others:
        cells = [f"{cell.get(f'{other}{suffix}', '-'):<26}" for suffix, _ in cols]
        lines.append(f"  {'− ' + other:<{NAME_WIDTH}}" + "".join(cells).rstrip())
    return lines


def reconstruction_lines(table: pd.DataFrame) -> list[str]:
    pooled = table[(table["tile"] == "all") & (table["band"] == "all")]
    rmse = pooled.set_index(["period", "subset", "method"])["rmse"]
    width = 28
    lines = [
        "Reconstruction RMSE (reflectance; all tiles and bands)",
        " " * (width + 2) + "".join(f"{m:>11}" for m in RECONSTRUCTION_METHODS),
    ]
    for label, period, subset in RECONSTRUCTION_ROWS:
        values = [rmse.get((period, subset, m), float("nan")) for m in RECONSTRUCTION_METHODS]
        if all(math.isnan(v) for v in values):
            continue
        cells = "".join(f"{'n/a' if math.isnan(v) else f'{v:.4f}':>11}" for v in values)
        lines.append(f"  {label:<{width}}" + cells)
    return lines


def where_lines(workdir: Path) -> list[str]:
    made = [n for n in FIGURE_NAMES if (workdir / FIGURES / f"{n}.png").is_file()]
    if len(made) == len(FIGURE_NAMES):
        figures = f"{FIGURES}/: all {len(made)} figures, <name>.png (they are in the report)"
    elif made:
        figures = f"{FIGURES}/ ({len(made)} of {len(FIGURE_NAMES)}): " + ", ".join(made)
        figures += "; the rest: make run TARGET=figures"
    else:
        figures = f"{FIGURES}/: none yet; make run TARGET=figures"
    report = (
        f"{REPORT}"
        if (workdir / REPORT).is_file()
        else f"{REPORT}: not made; .venv/bin/snakemake --report {REPORT}"
    )
    wrap = textwrap.TextWrapper(width=92, initial_indent="  figures ", subsequent_indent=" " * 10)
    return [
        "Where things are (tables: results/gpp/*.csv, results/eval/*.csv)",
        *wrap.wrap(figures),
        f"  report  {report}",
        "  docs    README.md and docs/ (docs/gpp.md: what the GPP tables mean)",
    ]


def summary_text(workdir: str | Path = ".") -> str:
    """The summary of the run in ``workdir``; :class:`MissingResultsError` without
    ``results/gpp/summary.csv``."""
    workdir = Path(workdir)
    path = workdir / SUMMARY
    if not path.is_file():
        raise MissingResultsError(
            f"no {SUMMARY} in {workdir.resolve()}: the GPP evaluation has not run there. "
            "It is made by the target gpp_eval: `make run` (or "
            "`.venv/bin/snakemake --cores N gpp_eval`)."
        )
    summary = pd.read_csv(path)
    if summary.empty:
        raise MissingResultsError(f"{path}: no rows; re-run the target gpp_eval")
    model, split = headline(summary)
    lines = [f"ecoembed: what the run in {workdir.resolve()} made"]
    lines += gpp_lines(summary)
    if (workdir / DIFFERENCES).is_file():
        rows = summary[(summary["model"] == model) & (summary["split"] == split)]
        diff = difference_lines(
            pd.read_csv(workdir / DIFFERENCES), model, split, order=set_order(rows)
        )
        lines += ["", *diff] if diff else []
    lines.append("")
    if (workdir / RECONSTRUCTION).is_file():
        lines += reconstruction_lines(pd.read_csv(workdir / RECONSTRUCTION))
    else:
        lines.append(f"Reconstruction: no {RECONSTRUCTION} yet; make run TARGET=embeddings")
    lines += ["", *where_lines(workdir)]
    return "\n".join(lines)
