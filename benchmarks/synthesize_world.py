"""Time and memory of building a synthetic world through the workflow.

Runs ``snakemake --cores N synthesize`` for a config in a fresh temporary directory and
reports the wall time, each tile job's run time and peak memory (Snakemake's own
``benchmark:`` files), and the size of what was written. The issue's requirement: the
embedded default (config.yaml) builds in under a minute on 2 cores.

    .venv/bin/python benchmarks/synthesize_world.py                 # config.yaml, 2 cores
    .venv/bin/python benchmarks/synthesize_world.py --configfile config/tiny.yaml --cores 1
    .venv/bin/python benchmarks/synthesize_world.py --publish       # docs/benchmarks.md
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # record.py, also when imported
from record import finish_work, publish, run_snakemake, shown_path, workflow_run_parser  # noqa: E402


def folder_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> int:
    args = workflow_run_parser(__doc__.splitlines()[0]).parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecoembed-bench-"))
    t0 = time.perf_counter()
    ok = run_snakemake("synthesize", work, args.configfile, args.cores)
    wall = time.perf_counter() - t0
    if not ok:
        return 1

    rows = []
    for tsv in sorted((work / "results" / "benchmarks" / "synthesize_tile").glob("*.tsv")):
        b = pd.read_csv(tsv, sep="\t").iloc[0]
        rows.append(
            {
                "tile": tsv.stem,
                "seconds": b["s"],
                "max_rss_mb": b["max_rss"],
                "cpu_seconds": b["cpu_time"],
            }
        )
    print(f"config: {args.configfile}\ncores: {args.cores}")
    print(f"wall time of `snakemake synthesize`: {wall:.1f} s")
    print(pd.DataFrame(rows).to_string(index=False))
    results = work / "results"
    sizes = {part: folder_size_mb(results / part) for part in ("raw", "truth")}
    for part, mb in sizes.items():
        print(f"size of results/{part}: {mb:.0f} MB")
    if args.publish:
        table = pd.DataFrame(
            [
                {
                    "tile job": r["tile"],
                    "time (s)": f"{r['seconds']:.1f}",
                    "CPU time (s)": f"{r['cpu_seconds']:.1f}",
                    "peak memory (MB)": f"{r['max_rss_mb']:.0f}",
                }
                for r in rows
            ]
        )
        shown = shown_path(args.configfile)
        notes = [
            f"`snakemake --cores {args.cores} synthesize` of `{shown}` from nothing: "
            f"{wall:.1f} s wall time; it writes {sizes['raw']:.0f} MB of raw data "
            f"(`results/raw`) and {sizes['truth']:.0f} MB of truth (`results/truth`)."
        ]
        publish("synthesize_world", table, notes)
    finish_work(work, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
