"""Where the default run's time goes: wall time per stage and the CPU time of the whole run.

Runs ``snakemake --cores N gpp_eval`` (what ``make run`` builds) for a config in a fresh
temporary directory and reports, per rule, the jobs, their summed run time and the core
seconds they reserved (run time x the rule's threads), from Snakemake's own ``benchmark:``
files; and for the whole run its wall time and the CPU time of every process it started
(the operating system's count for reaped children, not Snakemake's sampling, which misses
the last seconds of short jobs). The CPU time divided by the cores is the least wall time
any scheduling could reach with the same work: a wall-time target below it needs less
work, not better packing.

    .venv/bin/python benchmarks/run_budget.py                 # config.yaml, 2 cores
    .venv/bin/python benchmarks/run_budget.py --publish       # docs/benchmarks.md
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # record.py, also when imported
from record import finish_work, publish, run_snakemake, shown_path, workflow_run_parser  # noqa: E402

TARGET = "gpp_eval"


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's reaped children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def rule_threads(work: Path, configfile: str) -> dict[str, int]:
    """Threads each rule declares, as the workflow resolves them for this run's cores."""
    sys.path.insert(0, str(REPO / "workflow_scripts"))
    from _common import loaded_workflow

    here = Path.cwd()
    os.chdir(work)
    try:
        with loaded_workflow([configfile]) as workflow:
            return {r.name: int(r.resources.get("_cores").value) for r in workflow.rules}
    finally:
        os.chdir(here)


def rule_of(benchmark: Path) -> str:
    """The rule a benchmark file belongs to: ``{rule}/{wildcard}.tsv`` or ``{rule}.tsv``,
    except the GPP stage's ``gpp/{cv_<set>,inputs,eval}.tsv`` (rules/common.smk)."""
    if benchmark.parts[0] == "gpp":
        return "gpp_cv" if benchmark.stem.startswith("cv_") else f"gpp_{benchmark.stem}"
    return benchmark.parts[0] if len(benchmark.parts) > 1 else benchmark.stem


def stage_table(benchmarks: Path, threads: dict[str, int]) -> pd.DataFrame:
    """One row per rule: jobs, summed run time, core seconds reserved, peak memory."""
    rows = []
    for tsv in sorted(benchmarks.rglob("*.tsv")):
        b = pd.read_csv(tsv, sep="\t").iloc[0]
        rows.append(
            {"rule": rule_of(tsv.relative_to(benchmarks)), "s": b["s"], "rss": b["max_rss"]}
        )
    df = pd.DataFrame(rows)
    table = (
        df.groupby("rule", sort=False)
        .agg(jobs=("s", "size"), seconds=("s", "sum"), peak_mb=("rss", "max"))
        .reset_index()
    )
    table["threads"] = [threads.get(r, 1) for r in table["rule"]]
    table["core_seconds"] = table["seconds"] * table["threads"]
    return table.sort_values("core_seconds", ascending=False, ignore_index=True)


def main() -> int:
    args = workflow_run_parser(__doc__.splitlines()[0]).parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecoembed-budget-"))
    cpu0, t0 = children_cpu_seconds(), time.perf_counter()
    ok = run_snakemake(TARGET, work, args.configfile, args.cores)
    wall, cpu = time.perf_counter() - t0, children_cpu_seconds() - cpu0
    if not ok:
        return 1

    table = stage_table(work / "results" / "benchmarks", rule_threads(work, args.configfile))
    reserved = float(table["core_seconds"].sum())
    floor = cpu / args.cores
    print(f"config: {args.configfile}\ncores: {args.cores}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"wall time of `snakemake {TARGET}`: {wall:.0f} s ({wall / 60:.1f} min)")
    print(f"CPU time of all its processes: {cpu:.0f} s; / {args.cores} cores = {floor:.0f} s")
    print(f"core seconds reserved by the jobs: {reserved:.0f} of {wall * args.cores:.0f}")

    if args.publish:
        shown = shown_path(args.configfile)
        out = pd.DataFrame(
            {
                "rule": [f"`{r}`" for r in table["rule"]],
                "jobs": table["jobs"],
                "threads each": table["threads"],
                "summed job time (s)": table["seconds"].round(0).astype(int),
                "core seconds reserved": table["core_seconds"].round(0).astype(int),
                "share of reserved": (table["core_seconds"] / reserved).map("{:.0%}".format),
                "peak memory (MB)": table["peak_mb"].round(0).astype(int),
            }
        )
        notes = [
            f"`snakemake --cores {args.cores} {TARGET}` of `{shown}` from nothing (no "
            f"`.venv` set-up): {wall:.0f} s wall time ({wall / 60:.1f} min).",
            f"CPU time of every process it started: {cpu:.0f} s, so at least {floor:.0f} s "
            f"({floor / 60:.1f} min) on {args.cores} cores however the jobs are packed; the "
            f"jobs reserved {reserved:.0f} of the {wall * args.cores:.0f} core seconds the "
            "run held.",
            f"A run of 6 minutes on {args.cores} cores has {6 * 60 * args.cores} CPU seconds "
            f"to spend: {6 * 60 * args.cores / cpu:.0%} of this run's.",
        ]
        publish("run_budget", out, notes)
    finish_work(work, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
