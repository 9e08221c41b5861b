"""The Snakemake workflow: lint, DAG, and one end-to-end run on config/tiny.yaml."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.image import imread

from ecoembed.config import load_config
from ecoembed.io.names import fluxnet_dd_filename
from ecoembed.plots.figures import FIGURES
from ecoembed.synth import plan

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "config" / "tiny.yaml"


def snakemake(workdir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile with ``workdir`` as working directory."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args]
        + ["-s", str(REPO / "Snakefile"), "--directory", str(workdir)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def expected_flux_files(cfg: dict) -> list[str]:
    first, last = plan.years(cfg["synth"])
    return [fluxnet_dd_filename(s.site_id, first, last) for s in plan.site_plan(cfg["synth"])]


# pyproject name -> conda-forge/bioconda name where they differ
CONDA_NAMES = {
    "matplotlib": "matplotlib-base",
    "snakemake": "snakemake-minimal",
    "dask": "dask-core",
}


def requirement_name(spec: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", spec.strip())[0].lower()


def test_conda_env_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {
        requirement_name(spec)
        for spec in project["dependencies"] + project["optional-dependencies"]["dev"]
    }
    deps = yaml.safe_load((REPO / "envs" / "cpu.yaml").read_text(encoding="utf-8"))[
        "dependencies"
    ]
    conda = {requirement_name(d) for d in deps if isinstance(d, str)}
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "torch==2.13.0" in pip
    pip_names = {requirement_name(d) for d in pip if not d.startswith("-")}
    assert {CONDA_NAMES.get(name, name) for name in wanted - {"torch"}} <= conda | pip_names
    assert "python=3.11" in deps


def test_lint_is_clean(tmp_path):
    run = snakemake(tmp_path, "--lint", "--cores", "1")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Congratulations" in out


def test_dry_run_builds_the_dag_of_tiny(tmp_path):
    run = snakemake(tmp_path, "synthesize", "-n", "--cores", "1", "--configfile", str(TINY))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    for rule in ("synthesize_tile", "flux_files", "stac_catalog", "synthesize"):
        assert f"rule {rule}:" in out
    for name in expected_flux_files(load_config(TINY)):
        assert name in out
    assert not (tmp_path / "results").exists()


def test_dry_run_plans_gpp_eval_on_the_default_config(tmp_path):
    run = snakemake(tmp_path, "gpp_eval", "-n", "--cores", "8")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    for rule in ("pretrain", "train_fusion", "site_embeddings", "gpp_inputs", "gpp_eval"):
        assert f"rule {rule}:" in out
    sets = load_config(REPO / "config.yaml")["gpp"]["input_sets"]
    for name in sets:
        assert f"results/gpp/cv/{name}.parquet" in out
        assert f"results/gpp/cv/{name}+met.parquet" in out
    assert "rule embed:" not in out  # GPP needs the towers' series, not whole tiles
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_workflow_tiny_end_to_end(tmp_path):
    """The default target (synthetic world, then the analysis-ready cubes) on tiny."""
    cfg = load_config(TINY)
    run = snakemake(tmp_path, "all", "--cores", "2", "--configfile", str(TINY), timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr

    raw = tmp_path / cfg["raw_dir"]
    assert (raw / "catalog.json").is_file()
    for tile in plan.tile_ids(cfg["synth"]):
        assert (raw / "tiles" / tile / "items.json").is_file()
        assert (tmp_path / "results" / "truth" / f"{tile}.zarr").is_dir()
        assert (tmp_path / "results" / "logs" / "synthesize_tile" / f"{tile}.log").is_file()
    assert (raw / "flux" / "sites.csv").is_file()
    for name in expected_flux_files(cfg):
        assert (raw / "flux" / name).is_file(), name

    # the catalog is what later stages read: both collections, every asset on disk
    from ecoembed.io import fluxnet, stac

    items = stac.read_catalog_items(raw / "catalog.json")
    by_collection = {
        c: [i for i in items if i.collection_id == c]
        for c in (stac.S2_COLLECTION_ID, stac.S1_COLLECTION_ID)
    }
    assert len(by_collection[stac.S2_COLLECTION_ID]) == 73  # 365 days, every 5th
    # ascending on days 1, 13, ..., descending 6 days later (12-day repeat each)
    assert len(by_collection[stac.S1_COLLECTION_ID]) == len(range(1, 365, 12)) + len(
        range(7, 365, 12)
    )
    assert all(Path(a.href).is_file() for i in items for a in i.assets.values())
    sites = fluxnet.read_site_table(raw / "flux" / "sites.csv")
    assert sorted(sites["SITE_ID"]) == sorted(s.site_id for s in plan.site_plan(cfg["synth"]))

    from ecoembed.io import zarrio

    for tile in plan.tile_ids(cfg["synth"]):
        cube = zarrio.open_zarr(tmp_path / "results" / "cube" / f"{tile}.zarr")
        assert cube.sizes["time"] == 73 and cube.sizes["y"] == cfg["synth"]["tile_size"]
        assert cube["s2_valid"].values.any() and cube.rio.crs.to_epsg() == cfg["synth"]["epsg"]
        assert json.loads(cube.attrs["cube_config"]) == cfg["cube"]
        assert len(cube.attrs["config_hash"]) == 16

    import pandas as pd

    models = tmp_path / "results" / "models"
    for modality, names in (("s2", ["B02", "B03"]), ("s1", ["VV", "VH"])):
        assert (models / f"encoder_{modality}.pt").is_file()
        heldout = pd.read_csv(models / f"pretrain_{modality}_heldout.csv")
        assert heldout["band"].tolist()[:2] == names
        assert (heldout["rmse_centre_visible"] < heldout["rmse_band_mean"]).all()
        assert len(pd.read_csv(models / f"pretrain_{modality}_curves.csv")) == 3
        assert not (models / "checkpoints" / f"pretrain_{modality}.pt").exists()
    fusion = pd.read_csv(models / "fusion_heldout.csv")
    assert (models / "fusion.pt").is_file() and set(fusion["sensor"]) == {"s2", "s1"}
    assert len(pd.read_csv(models / "fusion_curves.csv")) == 3

    # export: embeddings on every S2 date, the reconstruction, tower series, evaluation
    import torch

    from ecoembed.embed.sites import SOURCES

    res = tmp_path / "results"
    ckpt = torch.load(models / "fusion.pt", weights_only=False)
    for tile in plan.tile_ids(cfg["synth"]):
        emb = zarrio.open_zarr(res / "embeddings" / f"{tile}.zarr")
        cube = zarrio.open_zarr(res / "cube" / f"{tile}.zarr")
        assert emb["embedding"].shape == (73, cfg["embedding_dim"], 128, 128)
        assert emb.rio.crs == cube.rio.crs
        assert (emb["observed"].values == cube["s2_valid"].values).all()
        assert json.loads(emb.attrs["model"])["encoder_sha256"] == ckpt["encoder_sha256"]
        rec = zarrio.open_zarr(res / "reconstruction" / f"{tile}.zarr")
        assert bool(rec["s2"].notnull().all())
        daily = zarrio.open_zarr(res / "embeddings_daily" / f"{tile}.zarr")
        days = pd.DatetimeIndex(daily["day"].values)
        assert (days[1:] - days[:-1] == pd.Timedelta(days=1)).all() and len(days) >= 360
        # on a day with an S2 acquisition the daily product is the S2-date product
        t = 10
        d = days.get_loc(pd.Timestamp(emb["time"].values[t]).normalize())
        np.testing.assert_allclose(
            daily["embedding"].values[d], emb["embedding"].values[t], atol=1e-5
        )
    site_df = pd.read_parquet(res / "sites" / "site_embeddings.parquet")
    assert set(site_df["source"]) == set(SOURCES)
    assert sorted(site_df["site"].unique()) == sorted(sites["SITE_ID"])
    # every calendar day from the first to the last acquisition of either sensor
    span = (site_df["date"].max() - site_df["date"].min()).days + 1
    assert span >= 360 and site_df["date"].min() == pd.Timestamp("2022-01-01")
    assert site_df.groupby(["site", "source"], observed=True).size().eq(span).all()
    recon = pd.read_csv(res / "eval" / "reconstruction.csv")
    overall = recon[(recon["tile"] == "all") & (recon["band"] == "all")]
    assert set(overall["method"]) == {"fused", "linear", "whittaker"}
    assert set(overall["period"]) == {"s2_dates", "no_s2_days"}
    assert (overall["n"] > 0).all() and overall["rmse"].between(0, 0.5).all()

    # GPP: every input set (and +met) by both models, leave-one-site-out only (one year)
    metrics = pd.read_csv(res / "gpp" / "metrics.csv")
    assert list(metrics.columns) == [
        "input_set",
        "model",
        "split",
        "site",
        "r2",
        "rmse",
        "bias",
        "n",
    ]
    sets = {s + m for s in cfg["gpp"]["input_sets"] for m in ("", "+met")}
    assert set(metrics["input_set"]) == sets and set(metrics["split"]) == {"loso"}
    assert set(metrics["model"]) == {"temporal_net", "gbm"}
    pooled = metrics[metrics["site"] == "pooled"]
    assert len(pooled) == 2 * len(sets) and pooled["n"].nunique() == 1  # the same days
    assert pooled["n"].iloc[0] > 100 and pooled["rmse"].between(0, 20).all()
    assert set(metrics["site"]) == {"pooled", *sites["SITE_ID"]}
    pred = pd.read_parquet(res / "gpp" / "predictions.parquet")
    assert list(pred.columns[:7]) == [
        "site",
        "date",
        "input_set",
        "model",
        "split",
        "fold",
        "observed",
    ]
    assert json.loads(pred.attrs["provenance"])["config"]["gpp"] == cfg["gpp"]
    assert "examples" in (res / "logs" / "gpp" / "cv_fused+met.log").read_text()

    # every output is declared and up to date: a second run has nothing to do
    again = snakemake(tmp_path, "all", "-n", "--cores", "1", "--configfile", str(TINY))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing to be done" in again.stdout + again.stderr

    # figures: every one a real PNG of report size, all in the self-contained report
    figures = {p.stem: p for p in (res / "figures").glob("*.png")}
    assert set(figures) == set(FIGURES)
    for name, path in figures.items():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 20_000 < len(data) < 3_000_000, name
        height, width = imread(path).shape[:2]
        assert 400 < height < 3000 and 800 < width < 3000, (name, height, width)
    report = snakemake(tmp_path, "--report", "results/report.html", "--configfile", str(TINY))
    assert report.returncode == 0, report.stdout + report.stderr
    html = (res / "report.html").read_text(encoding="utf-8")
    embedded = dict(re.findall(r'filename=([^;"]+);base64,([A-Za-z0-9+/=]+)"', html))
    for name, path in figures.items():
        assert embedded[f"{name}.png"] == base64.b64encode(path.read_bytes()).decode(), name
    assert {"metrics.csv", "summary.csv"} <= set(embedded)
    assert "rulegraph" in html and "figure_gpp_scatter" in html

    # one figure is one command that re-runs nothing upstream
    (res / "figures" / "gpp_scatter.png").unlink()
    replot = snakemake(
        tmp_path, "results/figures/gpp_scatter.png", "-n", "--cores", "1", "--configfile", str(TINY)
    )
    assert replot.returncode == 0, replot.stdout + replot.stderr
    assert set(re.findall(r"^rule (\w+):", replot.stdout, re.MULTILINE)) == {"figure_gpp_scatter"}
    # changing what the figures show re-plots them and re-runs nothing else
    shown = tmp_path / "figures_without_met.yaml"
    shown.write_text("figures:\n  met: false\n", encoding="utf-8")
    replot = snakemake(
        tmp_path, "figures", "-n", "--cores", "1", "--configfile", str(TINY), str(shown)
    )
    assert replot.returncode == 0, replot.stdout + replot.stderr
    planned = set(re.findall(r"^rule (\w+):", replot.stdout, re.MULTILINE))
    assert planned == {f"figure_{name}" for name in FIGURES} | {"figures"}, replot.stdout


def test_readme_rule_graph_is_current():
    """The README's rule graph is the workflow's (python docs/rulegraph.py rewrites it)."""
    run = subprocess.run(
        [sys.executable, str(REPO / "docs" / "rulegraph.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
