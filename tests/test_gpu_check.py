"""The prepared GPU check (benchmarks/gpu_check.py), run here on the CPU at tiny sizes so
that it works the first time a GPU is lent: every figure present and plausible, and
two training runs with one seed giving identical weights."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_the_cpu_and_reports_every_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ECOEMBED_DEVICE", "cpu")  # the check sets it; restored afterwards
    check = runpy.run_path(str(REPO / "benchmarks" / "gpu_check.py"))
    out = tmp_path / "gpu.json"
    assert check["main"](["--device", "cpu", "--quick", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["info"]["device"] == "cpu" and figures["matmul_tflops"] > 0
    # the default architecture's count (2.9 MFLOP in benchmarks/export.py's table)
    assert 2e6 < figures["flops_per_pixel_date"] < 4e6
    rows = {r["precision"]: r for r in figures["export"]}
    assert set(rows) == {"fp32", "bf16"}
    assert rows["fp32"]["max_abs_diff_from_fp32"] == 0
    assert 0 < rows["bf16"]["max_abs_diff_from_fp32"] < 0.1
    for r in rows.values():
        assert r["pixel_dates_per_s"] > 0 and 0 < r["of_peak"] < 1
        assert r["tile_year_min"] == pytest.approx(10_980**2 * 73 / r["pixel_dates_per_s"] / 60)
    stages = {r["stage"]: r for r in figures["training"]}
    assert set(stages) == {"pretrain_s2", "pretrain_s1", "fusion"}
    assert all(r["identical_weights"] and r["seconds"] > 0 for r in stages.values())
    printed = capsys.readouterr().out
    assert "| fp32 | 512 |" in printed and "target 15 min" in printed
