"""The lever comparison (benchmarks/levers.py): per-seed values from the runs' own
tables, paired changes against the baseline's same seed."""

from __future__ import annotations

import runpy
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
LEVERS = runpy.run_path(str(REPO / "benchmarks" / "levers.py"))


def fake_run(out: Path, seed: int, fused_s2: float, cloud_fused: float, anchored: float):
    res = out / f"world-42-seed-{seed}" / "results"
    for sub in ("gpp", "eval", "models"):
        (res / sub).mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        [{"input_set": "fused", "model": "temporal_net", "split": "loso", "r2": 0.7}]
    ).to_csv(res / "gpp" / "summary.csv", index=False)
    pd.DataFrame(
        [
            {
                "input_set": "fused",
                "other": "s2",
                "model": "temporal_net",
                "split": "loso",
                "r2_diff": fused_s2,
                "resolved": False,
            }
        ]
    ).to_csv(res / "gpp" / "differences.csv", index=False)
    pd.DataFrame(
        [
            {
                "tile": "all",
                "band": "all",
                "period": "s2_dates",
                "subset": "cloud",
                "method": m,
                "rmse": v,
                "n": 10,
            }
            for m, v in (("fused", cloud_fused), ("linear", 0.02))
        ]
    ).to_csv(res / "eval" / "reconstruction_crop.csv", index=False)
    pd.DataFrame(
        [
            {"heldout_s2_rmse_hidden": 0.3, "heldout_s2_rmse_anchored_hidden": a}
            for a in (0.5, anchored)
        ]
    ).to_csv(res / "models" / "fusion_curves.csv", index=False)


def test_levers_are_paired_seed_by_seed(tmp_path):
    base, lever = tmp_path / "base", tmp_path / "lever"
    fake_run(base, 42, 0.02, 0.014, 0.25)
    fake_run(base, 43, 0.04, 0.012, 0.23)
    fake_run(lever, 42, 0.03, 0.012, 0.24)
    fake_run(lever, 43, 0.03, 0.013, 0.22)
    fake_run(lever, 44, 0.50, 0.001, 0.01)  # no baseline seed: left out of the pairs
    fake_run(base, 45, 0.90, 0.001, 0.01)  # not in the lever: left out of the means
    table = LEVERS["compare"]([base, lever]).set_index(["quantity", "benchmark"])
    gpp = table.loc[("fused − s2 (ΔR² >= 0.03, resolved in every seed)", "lever")]
    assert gpp["seeds"] == 2 and gpp["mean"] == pytest.approx(0.03)
    assert gpp["change"] == pytest.approx(0.0) and gpp["improved"] == 1  # +0.01, -0.01
    cloud = table.loc[("under true cloud: fused / linear", "lever")]
    assert cloud["change"] == pytest.approx(((0.012 - 0.014) + (0.013 - 0.012)) / 0.02 / 2)
    assert cloud["improved"] == 1
    held = table.loc[("held-out: S2 anchored, day hidden", "lever")]  # the last epoch's
    assert held["change"] == pytest.approx(-0.01) and held["improved"] == 2
    assert held["change_sd"] == pytest.approx(0.0, abs=1e-12)
    base_held = table.loc[("held-out: S2 anchored, day hidden", "base")]
    assert base_held["change"] == 0.0 and base_held["seeds"] == 2
    assert base_held["mean"] == pytest.approx(0.24)
