"""``python -m ecoembed summary``: what a run made, read from hand-made tables laid out as
rule gpp_eval (ecoembed.gpp.evaluate.collect) and rule eval_reconstruction
(ecoembed.evaluation.reconstruction.evaluate_tiles) write them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ecoembed.__main__ import main as cli
from ecoembed.evaluation.summary import MissingResultsError, summary_text
from ecoembed.gpp.confidence import DIFFERENCE_COLUMNS
from ecoembed.io.names import FIGURE_NAMES

REPO = Path(__file__).resolve().parents[1]
# the columns collect() writes to results/gpp/summary.csv, in its order
SUMMARY_COLUMNS = ["input_set", "model", "split", "r2", "r2_lo", "r2_hi", "rmse", "rmse_lo"]
SUMMARY_COLUMNS += ["rmse_hi", "bias", "n", "n_sites", "of_oracle"]
RECONSTRUCTION_COLUMNS = ["tile", "period", "subset", "method", "band", "resolution_m"]
RECONSTRUCTION_COLUMNS += ["rmse", "n", "whittaker_lambda"]

# (input set, R², lo, hi) of the headline model and split
HEADLINE = [
    ("fused", 0.772, 0.701, 0.815),
    ("fused+met", 0.918, 0.877, 0.94),
    ("fused_interp", 0.7197, 0.5683, 0.7904),
    ("fused_interp+met", 0.9074, 0.8627, 0.932),
    ("s2", 0.7518, 0.6544, 0.8014),
    ("s2+met", 0.9055, 0.8591, 0.93),
    ("s1", 0.6872, 0.5785, 0.7705),
    ("s1+met", 0.8805, 0.8295, 0.9156),
    ("oracle", 0.855, 0.8136, 0.8779),
    ("oracle+met", 0.9578, 0.9446, 0.965),
]


def write_summary(root: Path, headline=HEADLINE) -> None:
    rows = []
    for name, r2, lo, hi in headline:
        for model, split, shift in (("temporal_net", "loso", 0.0), ("gbm", "loyo", -0.3)):
            met = "+met" if name.endswith("+met") else ""
            oracle = {n: v for n, v, _, _ in headline}[f"oracle{met}"]
            rows.append(
                [name, model, split, r2 + shift, lo + shift, hi + shift, 1.8, 1.6, 2.0]
                + [-0.16, 5535, 10, (r2 + shift) / oracle]
            )
    gpp = root / "results" / "gpp"
    gpp.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=SUMMARY_COLUMNS).to_csv(
        gpp / "summary.csv", index=False, float_format="%.4g"
    )


def write_differences(root: Path) -> None:
    pairs = [
        ("fused", "fused_interp", 0.04474, 0.008179, 0.1142, True),
        ("fused", "s2", 0.01261, -0.02391, 0.0552, False),
        ("fused", "s1", 0.07721, -0.00907, 0.1645, False),
        ("fused", "oracle", -0.09056, -0.1428, -0.05832, True),
        ("fused+met", "fused_interp+met", 0.01088, -0.001973, 0.02679, False),
        ("fused+met", "s2+met", 0.01283, 0.0002331, 0.03176, True),
        ("fused+met", "s1+met", 0.03781, 0.007446, 0.07196, True),
        ("fused+met", "oracle+met", -0.03949, -0.06945, -0.02367, True),
    ]
    rows = []
    for model, split, shift in (("temporal_net", "loso", 0.0), ("gbm", "loyo", 0.5)):
        for ref, other, d, lo, hi, resolved in pairs:
            rows.append(
                [ref, other, model, split, d + shift, lo + shift, hi + shift]
                + [-0.1, -0.2, 0.0, 0.9, resolved]
            )
    pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS).to_csv(
        root / "results" / "gpp" / "differences.csv", index=False, float_format="%.4g"
    )


def write_reconstruction(root: Path) -> None:
    rmse = {  # (period, subset) -> fused, linear, whittaker
        ("s2_dates", "cloud"): (0.010713, 0.0169042, 0.0210068),
        ("s2_dates", "clear"): (0.00553732, 0.00572469, 0.0109725),
        ("s2_dates", "shadow"): (0.0116839, 0.0148772, 0.0180137),
        ("no_s2_days", "all"): (0.0112511, 0.0153351, 0.0214852),
    }
    rows = []
    for tile in ("tile00", "all"):
        for (period, subset), values in rmse.items():
            for method, v in zip(("fused", "linear", "whittaker"), values, strict=True):
                lam = 100000.0 if tile != "all" else float("nan")
                for band, res in (("B02", 10), ("B11", 20)):  # per band: never the summary's
                    rows.append([tile, period, subset, method, band, res, 9.0, 100, lam])
                scale = 1.0 if tile == "all" else 2.0  # per tile: not the pooled figure
                rows.append([tile, period, subset, method, "all", None, v * scale, 200, lam])
    path = root / "results" / "eval" / "reconstruction.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame(rows, columns=RECONSTRUCTION_COLUMNS).to_csv(
        path, index=False, float_format="%.6g"
    )


def line_of(text: str, start: str) -> str:
    found = [ln for ln in text.splitlines() if ln.startswith(f"  {start}")]
    assert len(found) == 1, (start, text)
    return found[0]


def test_the_headline_gpp_table_shows_every_set_with_its_interval_fused_first(tmp_path):
    write_summary(tmp_path)
    text = summary_text(tmp_path)
    assert "temporal_net, LOSO, 10 towers" in text
    fused = line_of(text, "fused ")
    assert "0.772 [0.701, 0.815]" in fused and "0.918 [0.877, 0.940]" in fused
    assert "0.855 [0.814, 0.878]" in line_of(text, "oracle")
    names = [ln.split()[0] for ln in text.splitlines() if ln.startswith("  ") and "[" in ln]
    # fused sets first, then the rest by R² without meteorology, the oracle last
    assert names == ["fused", "fused_interp", "s2", "s1", "oracle"]
    assert "gbm" not in text and "0.472" not in text  # other model and split: not shown
    assert len(text.splitlines()) <= 25


def test_without_the_headline_model_the_first_of_the_table_is_shown(tmp_path):
    write_summary(tmp_path)
    path = tmp_path / "results" / "gpp" / "summary.csv"
    table = pd.read_csv(path)
    table[table["model"] == "gbm"].to_csv(path, index=False)
    text = summary_text(tmp_path)
    assert "gbm, LOYO" in text and "0.472 [0.401, 0.515]" in line_of(text, "fused ")


def test_differences_of_fused_with_intervals_and_resolved_marks(tmp_path):
    write_summary(tmp_path)
    write_differences(tmp_path)
    text = summary_text(tmp_path)
    row = line_of(text, "− fused_interp")
    assert "+0.045 [+0.008, +0.114]*" in row and row.endswith("+0.011 [-0.002, +0.027]")
    assert "-0.091 [-0.143, -0.058]*" in line_of(text, "− oracle")
    assert "+0.013 [+0.000, +0.032]*" in line_of(text, "− s2")
    others = [ln.split()[1] for ln in text.splitlines() if ln.strip().startswith("−")]
    assert others == ["fused_interp", "s2", "s1", "oracle"]  # the GPP table's order


def test_reconstruction_rmse_pooled_over_tiles_and_bands(tmp_path):
    write_summary(tmp_path)
    write_reconstruction(tmp_path)
    text = summary_text(tmp_path)
    assert line_of(text, "S2 dates under cloud").split()[-3:] == ["0.0107", "0.0169", "0.0210"]
    assert line_of(text, "S2 dates, clear").split()[-3:] == ["0.0055", "0.0057", "0.0110"]
    assert line_of(text, "days without S2").split()[-3:] == ["0.0113", "0.0153", "0.0215"]
    assert "shadow" not in text


def test_what_is_missing_is_named_with_the_command_that_makes_it(tmp_path):
    write_summary(tmp_path)
    text = summary_text(tmp_path)
    assert "Paired differences" not in text
    assert "no results/eval/reconstruction.csv yet; make run TARGET=embeddings" in text
    assert "results/figures/: none yet; make run TARGET=figures" in text
    assert "snakemake --report results/report.html" in text
    figures = tmp_path / "results" / "figures"
    figures.mkdir()
    (figures / "gpp_skill.png").write_bytes(b"")
    text = summary_text(tmp_path)
    assert f"(1 of {len(FIGURE_NAMES)}): gpp_skill; the rest: make run TARGET=figures" in text
    for name in FIGURE_NAMES:
        (figures / f"{name}.png").write_bytes(b"")
    (tmp_path / "results" / "report.html").write_text("<html></html>")
    text = summary_text(tmp_path)
    assert f"all {len(FIGURE_NAMES)} figures" in text
    assert line_of(text, "report").split() == ["report", "results/report.html"]


def test_without_the_gpp_summary_the_command_names_the_target_and_fails(tmp_path, capsys):
    with pytest.raises(MissingResultsError, match="gpp_eval"):
        summary_text(tmp_path)
    assert cli(["summary", "--workdir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "results/gpp/summary.csv" in captured.err and "gpp_eval" in captured.err
    assert "make run" in captured.err


def test_the_command_line_prints_the_summary_of_the_working_directory(tmp_path):
    write_summary(tmp_path)
    write_differences(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "ecoembed", "summary"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "0.772 [0.701, 0.815]" in line_of(done.stdout, "fused ")


def test_make_run_prints_the_summary_after_the_workflow():
    recipe = (REPO / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    lines = [ln.strip() for ln in recipe.splitlines()[1:]]
    assert lines == [
        "$(BIN)/snakemake --cores $(CORES) $(TARGET)",
        "-$(BIN)/python -m ecoembed summary",
    ]
