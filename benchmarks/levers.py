"""What a lever did, seed by seed: seed benchmarks (``benchmarks/seeds.py --out``) side by
side, each against the first (the baseline), on issue 24's targets and on the held-out
self-supervised figures that choose the defaults.

For each run directory ``world-W-seed-S`` found in every benchmark: the stage-1 S2
encoder's held-out centre MAE (reflectance), stage 2's held-out S2 RMSE with the day
hidden (decoded and anchored, normalised units, last epoch), and each target's value
(``seeds.targets_table`` on that seed alone). Then, per benchmark and quantity, the mean
over the runs every benchmark has and the mean and sd of the paired change against the
baseline (the same world and seed), so that a lever is judged on differences that share
the seed's noise.

    .venv/bin/python benchmarks/levers.py /tmp/base /tmp/lever-a /tmp/lever-b
    .venv/bin/python benchmarks/levers.py /tmp/base /tmp/lever-a --csv levers.csv
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEEDS = runpy.run_path(str(Path(__file__).with_name("seeds.py")))  # its tables and targets


def heldout_figures(run: Path) -> dict[str, float]:
    """The self-supervised held-out figures of one run (NaN where a file is missing)."""
    models = run / "results" / "models"
    out = {}
    pre = models / "pretrain_s2_heldout.csv"
    out["held-out: S2 centre MAE (stage 1)"] = (
        float(pd.read_csv(pre)["mae_centre_visible"].mean()) if pre.is_file() else np.nan
    )
    curves = models / "fusion_curves.csv"
    last = pd.read_csv(curves).iloc[-1] if curves.is_file() else {}
    for label, col in (
        ("held-out: S2 decoded, day hidden", "heldout_s2_rmse_hidden"),
        ("held-out: S2 anchored, day hidden", "heldout_s2_rmse_anchored_hidden"),
    ):
        out[label] = float(last[col]) if col in last else np.nan
    return out


def seed_rows(out: Path) -> pd.DataFrame:
    """One row per (run, quantity) of a benchmark directory."""
    rows = []
    for run in sorted(out.glob("world-*-seed-*")):
        if not (run / "results" / "gpp" / "differences.csv").is_file():
            continue
        world, seed = (int(v) for v in run.name.split("-")[1::2])
        tag = {"benchmark": out.name, "world_seed": world, "seed": seed}
        for quantity, value in heldout_figures(run).items():
            rows.append({**tag, "quantity": quantity, "value": value})
        _, diffs, recon, _ = SEEDS["collect"](out, [(world, seed)])
        fused = diffs[
            (diffs["model"] == SEEDS["HEADLINE_MODEL"])
            & (diffs["split"] == SEEDS["HEADLINE_SPLIT"])
        ]
        for t in SEEDS["targets_table"](recon, fused).itertuples(index=False):
            rows.append({**tag, "quantity": t.target, "value": float(t.value)})
    return pd.DataFrame(rows)


def compare(benchmarks: list[Path]) -> pd.DataFrame:
    """Mean over seeds per benchmark, and the paired change against the first."""
    rows = pd.concat([seed_rows(b) for b in benchmarks], ignore_index=True)
    # only the runs every benchmark has: each mean is then over the same worlds and seeds
    runs = rows.groupby(["world_seed", "seed"])["benchmark"].nunique()
    common = runs[runs == len(benchmarks)].index
    rows = rows.set_index(["world_seed", "seed"]).loc[common].reset_index()
    base = rows[rows["benchmark"] == benchmarks[0].name]
    keys = ["world_seed", "seed", "quantity"]
    paired = rows.merge(base[keys + ["value"]], on=keys, suffixes=("", "_base"))
    paired["change"] = paired["value"] - paired["value_base"]
    order = list(dict.fromkeys(rows["quantity"]))
    table = (
        paired.groupby(["quantity", "benchmark"], sort=False)
        .agg(
            seeds=("seed", "size"),
            mean=("value", "mean"),
            change=("change", "mean"),
            change_sd=("change", lambda v: v.std(ddof=1) if v.size > 1 else np.nan),
        )
        .reset_index()
    )
    # seeds in which the lever did better: GPP rows (R² differences) up, errors down
    lower_better = ~table["quantity"].str.startswith("fused")
    signs = paired.groupby(["quantity", "benchmark"], sort=False)["change"].apply(list)
    table["improved"] = [
        int(sum((c < 0) if low else (c > 0) for c in signs[(q, b)]))
        for q, b, low in zip(table["quantity"], table["benchmark"], lower_better, strict=True)
    ]
    table["quantity"] = pd.Categorical(table["quantity"], order, ordered=True)
    return table.sort_values(["quantity", "benchmark"], kind="stable").reset_index(drop=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("benchmarks", type=Path, nargs="+", help="seeds.py --out folders")
    ap.add_argument("--csv", type=Path, default=None, help="also write the table here")
    args = ap.parse_args()
    table = compare([b.resolve() for b in args.benchmarks])
    if args.csv:
        table.to_csv(args.csv, index=False, float_format="%.5g")
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
