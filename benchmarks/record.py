"""Publishing a speed or memory benchmark: its table and the stamp that made it.

A benchmark script run with ``--publish`` hands its result table (columns already named
and rounded as the docs show them) and a few sentences of measured facts to
:func:`publish`, which writes ``docs/data/benchmarks/<name>.csv`` and ``<name>.json``
(date, commit, the command, the machine) and regenerates ``docs/benchmarks.md`` from them
(``docs/generate.py``), so that no benchmark figure is typed into the docs by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "docs" / "data" / "benchmarks"


def commit() -> str:
    """This checkout's short commit, ``+dirty`` when tracked files differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise OSError(done.stderr)
        return done.stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def machine() -> str:
    """CPU model, usable cores and memory: what a reader needs to compare a figure."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = ""
    return f"{model}, {cores} cores{memory}"


def command(argv: list[str] | None = None) -> str:
    """The command line that made the figures, relative to the repository."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    if script.is_relative_to(REPO):
        argv[0] = script.relative_to(REPO).as_posix()
    return "python " + shlex.join(a for a in argv if a != "--publish")


def publish(
    name: str,
    table: pd.DataFrame,
    notes: list[str],
    argv: list[str] | None = None,
    folder: Path = PUBLISHED,
    regenerate: bool = True,
) -> Path:
    """Write the benchmark's table and stamp for the docs; regenerate the pages from them."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "commit": commit(),
        "command": command(argv),
        "machine": machine(),
        "notes": list(notes),
    }
    csv, meta = folder / f"{name}.csv", folder / f"{name}.json"
    tmp_csv, tmp_meta = csv.with_suffix(".csv.tmp"), meta.with_suffix(".json.tmp")
    table.to_csv(tmp_csv, index=False)
    tmp_meta.write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
    tmp_csv.replace(csv)
    tmp_meta.replace(meta)
    if regenerate:
        sys.path.insert(0, str(REPO / "docs"))
        import generate

        generate.main([])
    return csv


# --- benchmarks that run the workflow from nothing (run_budget.py, synthesize_world.py) ---


def workflow_run_parser(description: str) -> argparse.ArgumentParser:
    """The options of a benchmark that runs a workflow target in a fresh directory."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--configfile", default=str(REPO / "config.yaml"))
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    ap.add_argument(
        "--publish", action="store_true", help="the table into docs/benchmarks.md (record.py)"
    )
    return ap


def run_snakemake(target: str, work: Path, configfile: str, cores: int) -> bool:
    """``snakemake --cores N target`` of the repository's Snakefile in ``work``, quietly;
    on failure the output's tail goes to stderr and False is returned."""
    cmd = [sys.executable, "-m", "snakemake", target, "--cores", str(cores)]
    cmd += ["--configfile", configfile, "-s", str(REPO / "Snakefile")]
    cmd += ["--directory", str(work), "--quiet"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        print(run.stdout[-4000:], run.stderr[-4000:], file=sys.stderr)
    return run.returncode == 0


def shown_path(path: str | Path) -> Path:
    """A path as the docs show it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def finish_work(work: Path, keep: bool) -> None:
    """Remove a benchmark's working directory, or say where it was kept."""
    if keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work)
