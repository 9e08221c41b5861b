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

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def folder_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default=str(REPO / "config.yaml"))
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    ap.add_argument(
        "--publish", action="store_true", help="the table into docs/benchmarks.md (record.py)"
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ecoembed-bench-"))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "synthesize",
        "--cores",
        str(args.cores),
        "--configfile",
        args.configfile,
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--quiet",
    ]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if run.returncode:
        print(run.stdout[-4000:], run.stderr[-4000:], file=sys.stderr)
        return run.returncode

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
        from record import publish

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
        config = Path(args.configfile).resolve()
        shown = config.relative_to(REPO) if config.is_relative_to(REPO) else config
        notes = [
            f"`snakemake --cores {args.cores} synthesize` of `{shown}` from nothing: "
            f"{wall:.1f} s wall time; it writes {sizes['raw']:.0f} MB of raw data "
            f"(`results/raw`) and {sizes['truth']:.0f} MB of truth (`results/truth`)."
        ]
        publish("synthesize_world", table, notes)
    if args.keep:
        print(f"kept: {work}")
    else:
        subprocess.run(["rm", "-rf", str(work)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
