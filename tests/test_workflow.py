"""The Snakemake workflow: lint, DAG, and one end-to-end run on config/tiny.yaml."""

from __future__ import annotations

import base64
import json
import os
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
from ecoembed.io.sites import years
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
    first, last = years(cfg["synth"])
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
    deps = yaml.safe_load((REPO / "envs" / "cpu.yaml").read_text(encoding="utf-8"))["dependencies"]
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


# --- the workflow's scripts: one code path, a mock of the job for running them by hand ---

sys.path.insert(0, str(REPO / "workflow_scripts"))
import _common  # noqa: E402

SCRIPTS = sorted(p for p in (REPO / "workflow_scripts").glob("*.py") if p.name != "_common.py")


def test_mock_snakemake_is_the_job_of_the_dag(tmp_path, monkeypatch):
    """The rule's real paths, params, log, threads and resources, as Snakemake would hand
    them to the script (tiny config, in an empty working directory)."""
    from ecoembed.config import config_hash

    cfg = load_config(TINY)
    monkeypatch.chdir(tmp_path)
    cube = _common.mock_snakemake("cube", [TINY], tile="tile00")
    assert cube.rule == "cube" and cube.wildcards.tile == "tile00"
    assert cube.input.catalog == "results/raw/catalog.json"
    assert cube.input.tile_dir == "results/raw/tiles/tile00"
    assert cube.output.cube == "results/cube/tile00.zarr"
    assert list(cube.log) == ["results/logs/cube/tile00.log"]
    assert dict(cube.params.cube) == cfg["cube"]
    assert cube.params.config_hash == config_hash(cfg["cube"])
    assert cube.threads == min(2, os.cpu_count()) and cube.config["synth"] == cfg["synth"]
    assert (cube.resources.mem_mb, cube.resources.runtime) == (3000, 30)
    retry = _common.mock_snakemake("cube", [TINY], attempt=2, tile="tile00")
    assert (retry.resources.mem_mb, retry.resources.runtime) == (6000, 60)

    pretrain = _common.by_hand("pretrain", ["modality=s1", "--configfile", str(TINY)])
    assert pretrain.output.encoder == "results/models/encoder_s1.pt"
    assert pretrain.params.checkpoint == "results/models/checkpoints/pretrain_s1.pt"
    assert dict(pretrain.params.cfg) == {
        "size": cfg["context"]["size"],
        "frames": cfg["context"]["frames"],
        "latent_dim": cfg["latent_dim"],
        "seed": cfg["seed"],
        **cfg["pretrain"],
        "centre_skip": False,  # the config's list of sensors names S2 only
    }
    assert cfg["pretrain"]["centre_skip"] == ["s2"]
    s2 = _common.by_hand("pretrain", ["modality=s2", "--configfile", str(TINY)])
    assert s2.params.cfg["centre_skip"] is True
    assert list(pretrain.input.cubes) == ["results/cube/tile00.zarr"]
    assert not (tmp_path / "results").exists()  # nothing run, nothing written


def test_every_script_reads_the_snakemake_object_only(tmp_path, monkeypatch):
    """No script rebuilds its rule's parameters by hand: each runs on the snakemake object,
    which by hand is the mock of a rule that really runs that script."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", "x")
    scripts = {}
    for configs in ([], [REPO / "config" / "real_example.yaml"]):
        with _common.loaded_workflow(configs) as wf:
            for rule in wf.rules:
                if rule.script:
                    scripts.setdefault(Path(rule.script).name, set()).add(rule.name)
    assert {p.name for p in SCRIPTS} == set(scripts)
    for path in SCRIPTS:
        text = path.read_text(encoding="utf-8")
        assert "argparse" not in text and "sys.argv" not in text, path.name
        mocked = re.findall(r'_common\.by_hand\("(\w+)"', text)
        assert len(mocked) == 1 and mocked[0] in scripts[path.name], (path.name, mocked)
        assert 'if "snakemake" not in globals():' in text, path.name


# --- one run of the whole workflow on tiny, and what it made ---------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Runs the default target ``all`` once on config/tiny.yaml (the synthetic world, cubes,
    both training stages, the export, the GPP evaluation and every figure) and returns
    (working directory, validated config). The tests below read what it made; the ones
    that change a file put it back."""
    workdir = tmp_path_factory.mktemp("tiny")
    run = snakemake(workdir, "all", "--cores", "2", "--configfile", str(TINY), timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    return workdir, load_config(TINY)


@pytest.mark.slow
def test_tiny_raw_inputs_and_truth(tiny):
    """The synthetic world in the raw layout: catalog, each tile's items, truth and log,
    the site table and every tower's FLUXNET file."""
    workdir, cfg = tiny
    raw = workdir / cfg["raw_dir"]
    assert (raw / "catalog.json").is_file()
    for tile in plan.tile_ids(cfg["synth"]):
        assert (raw / "tiles" / tile / "items.json").is_file()
        assert (workdir / "results" / "truth" / f"{tile}.zarr").is_dir()
        assert (workdir / "results" / "logs" / "synthesize_tile" / f"{tile}.log").is_file()
    assert (raw / "flux" / "sites.csv").is_file()
    for name in expected_flux_files(cfg):
        assert (raw / "flux" / name).is_file(), name


@pytest.mark.slow
def test_tiny_catalog_has_both_collections_and_every_asset_on_disk(tiny):
    """The catalog is what later stages read: both collections, every asset on disk, the
    towers of the site plan."""
    from ecoembed.io import fluxnet, stac

    workdir, cfg = tiny
    raw = workdir / cfg["raw_dir"]
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


@pytest.mark.slow
def test_tiny_cubes(tiny):
    """Each tile's cube: every S2 date, the tile's grid and CRS, the config it records."""
    from ecoembed.io import zarrio

    workdir, cfg = tiny
    for tile in plan.tile_ids(cfg["synth"]):
        cube = zarrio.open_zarr(workdir / "results" / "cube" / f"{tile}.zarr")
        assert cube.sizes["time"] == 73 and cube.sizes["y"] == cfg["synth"]["tile_size"]
        assert cube["s2_valid"].values.any() and cube.rio.crs.to_epsg() == cfg["synth"]["epsg"]
        assert json.loads(cube.attrs["cube_config"]) == cfg["cube"]
        assert len(cube.attrs["config_hash"]) == 16


@pytest.mark.slow
def test_tiny_training_stages(tiny):
    """Stage 1: an encoder per sensor that beats the band mean on held-out centres, its
    curves, no resume checkpoint left; stage 2: the fusion model over both sensors."""
    import pandas as pd

    workdir, _ = tiny
    models = workdir / "results" / "models"
    for modality, names in (("s2", ["B02", "B03"]), ("s1", ["VV", "VH"])):
        assert (models / f"encoder_{modality}.pt").is_file()
        heldout = pd.read_csv(models / f"pretrain_{modality}_heldout.csv")
        assert heldout["band"].tolist()[:2] == names
        assert (heldout["rmse_centre_visible"] < heldout["rmse_band_mean"]).all()
        assert len(pd.read_csv(models / f"pretrain_{modality}_curves.csv")) == 3
        assert not (models / "checkpoints" / f"pretrain_{modality}.pt").exists()
    fusion = pd.read_csv(models / "fusion_heldout.csv")
    assert (models / "fusion.pt").is_file() and set(fusion["sensor"]) == {"s2", "s1"}
    assert len(pd.read_csv(models / "fusion_curves.csv")) == load_config(TINY)["fusion"]["epochs"]
    # the anchored reconstruction's held-out figures beside linear interpolation's
    s2 = fusion[fusion["sensor"] == "s2"]
    assert s2[["rmse_anchored_hidden", "rmse_linear_hidden"]].notna().all().all()


@pytest.mark.slow
def test_tiny_export_products(tiny):
    """Embeddings on every S2 date on the cube's grid, recording the checkpoint; the
    reconstruction without gaps; the daily product, equal to the S2-date one on S2 days."""
    import pandas as pd
    import torch

    from ecoembed.io import zarrio

    workdir, cfg = tiny
    res = workdir / "results"
    ckpt = torch.load(res / "models" / "fusion.pt", weights_only=False)
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
        # every day of the configured period, one per day
        assert days[0] == pd.Timestamp(cfg["embed"]["daily_start"])
        assert days[-1] == pd.Timestamp(cfg["embed"]["daily_end"])
        assert (days[1:] - days[:-1] == pd.Timedelta(days=1)).all()
        # on a day with an S2 acquisition the daily product is the S2-date product
        s2_days = pd.DatetimeIndex(emb["time"].values).normalize()
        t = int(np.flatnonzero(s2_days >= days[0])[2])
        d = days.get_loc(s2_days[t])
        np.testing.assert_allclose(
            daily["embedding"].values[d], emb["embedding"].values[t], atol=1e-5
        )


@pytest.mark.slow
def test_tiny_tower_series(tiny):
    """Every source's daily series at every tower, over every calendar day of the year."""
    import pandas as pd

    from ecoembed.embed.sites import SOURCES
    from ecoembed.io import fluxnet

    workdir, cfg = tiny
    sites = fluxnet.read_site_table(workdir / cfg["raw_dir"] / "flux" / "sites.csv")
    site_df = pd.read_parquet(workdir / "results" / "sites" / "site_embeddings.parquet")
    assert set(site_df["source"]) == set(SOURCES)
    assert sorted(site_df["site"].unique()) == sorted(sites["SITE_ID"])
    # every calendar day from the first to the last acquisition of either sensor
    span = (site_df["date"].max() - site_df["date"].min()).days + 1
    assert span >= 360 and site_df["date"].min() == pd.Timestamp("2022-01-01")
    assert site_df.groupby(["site", "source"], observed=True).size().eq(span).all()


@pytest.mark.slow
def test_tiny_reconstruction_evaluation(tiny):
    """The fused reconstruction and both baselines, on S2 dates and days without S2."""
    import pandas as pd

    workdir, _ = tiny
    recon = pd.read_csv(workdir / "results" / "eval" / "reconstruction.csv")
    overall = recon[(recon["tile"] == "all") & (recon["band"] == "all")]
    assert set(overall["method"]) == {"fused", "linear", "whittaker"}
    assert set(overall["period"]) == {"s2_dates", "no_s2_days"}
    pooled = overall[overall["subset"].isin(["cloud", "shadow", "clear", "all"])]
    assert (pooled["n"] > 0).all() and pooled["rmse"].between(0, 0.5).all()
    # where fusion must pay: after unseen harvests and mowings, by cloud-gap length
    s2 = overall[overall["period"] == "s2_dates"].set_index(["subset", "method"])
    gaps = ["gap_le10d", "gap_11-20d", "gap_21-40d", "gap_41-80d", "gap_gt80d", "gap_edge"]
    assert {"cloud", "shadow", "clear", "after_unseen_event", *gaps} == set(
        s2.index.get_level_values("subset")
    )
    for subset in ["after_unseen_event", "gap_le10d", "gap_11-20d"]:
        rows = s2.loc[subset]
        assert (rows["n"] > 0).all() and rows["n"].nunique() == 1  # the same pixel-dates
        assert rows["rmse"].between(0, 0.5).all(), subset
    # the anchored reconstruction cannot collapse to a uniform image: even this briefly
    # trained, it stays near the linear baseline of the same clear views (which is the
    # observation on clear dates); a decode from the embedding alone missed by 4x here
    rmse = s2["rmse"]
    assert rmse[("clear", "fused")] <= 1.5 * rmse[("clear", "linear")], rmse
    assert rmse[("cloud", "fused")] <= 1.25 * rmse[("cloud", "linear")], rmse
    # image quality of the cloud-removal literature
    iq = pd.read_csv(workdir / "results" / "eval" / "image_quality.csv")
    assert list(iq.columns) == [
        "tile",
        "method",
        "n_images",
        "mean_cloud_fraction",
        "psnr_db",
        "ssim",
        "sam_deg",
    ]
    pooled = iq[iq["tile"] == "all"].set_index("method")
    assert set(pooled.index) == {"fused", "linear", "whittaker"}
    assert (pooled["n_images"] > 0).all() and pooled["n_images"].nunique() == 1
    assert pooled["mean_cloud_fraction"].between(0.1, 1).all()
    assert pooled["psnr_db"].between(15, 80).all() and pooled["ssim"].between(0, 1).all()
    assert pooled["sam_deg"].between(0, 45).all()


@pytest.mark.slow
def test_tiny_gpp_evaluation(tiny):
    """GPP: every input set (and +met) by both models, leave-one-site-out only (one year),
    on the same days; predictions recording the config; the models' logs."""
    import pandas as pd

    from ecoembed.io import fluxnet

    workdir, cfg = tiny
    res = workdir / "results"
    sites = fluxnet.read_site_table(workdir / cfg["raw_dir"] / "flux" / "sites.csv")
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


@pytest.mark.slow
def test_tiny_gpp_intervals_differences_and_decomposition(tiny):
    """The summary's intervals hold its point values, the paired differences are those of
    the summary's R², and the decomposition has every part for every set."""
    import pandas as pd

    workdir, cfg = tiny
    res = workdir / "results" / "gpp"
    summary = pd.read_csv(res / "summary.csv")
    metrics = pd.read_csv(res / "metrics.csv")
    pooled = metrics[metrics["site"] == "pooled"].set_index(["input_set", "model", "split"])
    s = summary.set_index(["input_set", "model", "split"])
    np.testing.assert_allclose(s["r2"], pooled.loc[s.index, "r2"], rtol=1e-3)
    assert (s["r2_lo"] <= s["r2"] + 1e-9).all() and (s["r2"] <= s["r2_hi"] + 1e-9).all()
    assert (s["rmse_lo"] <= s["rmse"] + 1e-9).all() and (s["rmse"] <= s["rmse_hi"] + 1e-9).all()
    assert (s["r2_hi"] > s["r2_lo"]).all() and s["n_sites"].eq(cfg["synth"]["n_sites"]).all()
    diff = pd.read_csv(res / "differences.csv")
    others = [x for x in cfg["gpp"]["input_sets"] if x != "fused"]
    assert len(diff) == 2 * 2 * len(others)  # with and without +met, two models
    for r in diff.itertuples():
        expect = (
            s.loc[(r.input_set, r.model, r.split), "r2"] - s.loc[(r.other, r.model, r.split), "r2"]
        )
        assert r.r2_diff == pytest.approx(expect, abs=2e-3)
        assert r.r2_diff_lo <= r.r2_diff + 1e-9 <= r.r2_diff_hi + 2e-9
    dec = pd.read_csv(res / "decomposition.csv", keep_default_na=False, na_values=[""])
    parts = dec.groupby(["input_set", "model"])["part"].agg(set)
    assert parts.map(lambda p: p == {"across_site", "seasonal", "anomaly", "igbp"}).all()
    assert len(parts) == len(s)
    across = dec[dec["part"] == "across_site"]
    assert across["n"].eq(cfg["synth"]["n_sites"]).all()


@pytest.mark.slow
def test_tiny_summary_command_shows_the_runs_gpp_skill(tiny):
    """``python -m ecoembed summary`` (what ``make run`` prints at the end) on the run's
    working directory: fused's pooled R² of the headline model and split, as in the table."""
    import pandas as pd

    from ecoembed.evaluation.summary import headline

    workdir, _ = tiny
    done = subprocess.run(
        [sys.executable, "-m", "ecoembed", "summary", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = pd.read_csv(workdir / "results" / "gpp" / "summary.csv")
    model, split = headline(summary)
    fused = summary.set_index(["input_set", "model", "split"]).loc[("fused", model, split)]
    rows = [ln.split() for ln in done.stdout.splitlines() if ln.startswith("  fused ")]
    assert len(rows) == 1 and rows[0][:3] == [
        "fused",
        f"{fused['r2']:.3f}",
        f"[{fused['r2_lo']:.3f},",
    ], done.stdout
    assert f"{model}, {split.upper()}" in done.stdout


@pytest.mark.slow
def test_tiny_every_job_left_a_log_and_a_benchmark(tiny):
    """log: and benchmark: on every rule that computes: one of each per job of the run."""
    workdir, cfg = tiny
    res = workdir / "results"
    jobs = [
        *(f"synthesize_tile/{t}" for t in plan.tile_ids(cfg["synth"])),
        "flux_files",
        "stac_catalog",
        *(f"cube/{t}" for t in plan.tile_ids(cfg["synth"])),
        "pretrain/s2",
        "pretrain/s1",
        "train_fusion",
        *(f"embed/{t}" for t in plan.tile_ids(cfg["synth"])),
        *(f"embed_daily/{t}" for t in plan.tile_ids(cfg["synth"])),  # daily: on in tiny
        "site_embeddings",
        "eval_reconstruction",
        "gpp/inputs",
        *(f"gpp/cv_{s}{m}" for s in cfg["gpp"]["input_sets"] for m in ("", "+met")),
        "gpp/eval",
        *(f"figures/{name}" for name in FIGURES),
    ]
    for job in jobs:
        assert (res / "logs" / f"{job}.log").is_file(), job
        assert (res / "benchmarks" / f"{job}.tsv").is_file(), job


@pytest.mark.slow
def test_tiny_second_run_has_nothing_to_do(tiny):
    """Every output is declared and up to date."""
    workdir, _ = tiny
    again = snakemake(workdir, "all", "-n", "--cores", "1", "--configfile", str(TINY))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_tiny_figures_are_report_sized_pngs(tiny):
    """Every figure a real PNG of report size."""
    workdir, _ = tiny
    figures = {p.stem: p for p in (workdir / "results" / "figures").glob("*.png")}
    assert set(figures) == set(FIGURES)
    for name, path in figures.items():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 20_000 < len(data) < 3_000_000, name
        height, width = imread(path).shape[:2]
        assert 400 < height < 3000 and 800 < width < 3000, (name, height, width)


@pytest.mark.slow
def test_tiny_report_embeds_every_figure_and_the_gpp_tables(tiny):
    """The self-contained report: every figure, the GPP tables, the rule graph."""
    workdir, _ = tiny
    res = workdir / "results"
    figures = {p.stem: p for p in (res / "figures").glob("*.png")}
    assert set(figures) == set(FIGURES)
    report = snakemake(workdir, "--report", "results/report.html", "--configfile", str(TINY))
    assert report.returncode == 0, report.stdout + report.stderr
    html = (res / "report.html").read_text(encoding="utf-8")
    embedded = dict(re.findall(r'filename=([^;"]+);base64,([A-Za-z0-9+/=]+)"', html))
    for name, path in figures.items():
        assert embedded[f"{name}.png"] == base64.b64encode(path.read_bytes()).decode(), name
    tables = {"metrics.csv", "summary.csv", "differences.csv", "decomposition.csv"}
    assert tables | {"image_quality.csv"} <= set(embedded)
    assert "rulegraph" in html and "figure_gpp_scatter" in html


@pytest.mark.slow
def test_tiny_one_figure_is_one_command_that_reruns_nothing_upstream(tiny):
    workdir, _ = tiny
    figure = workdir / "results" / "figures" / "gpp_scatter.png"
    aside = figure.with_suffix(".png.aside")
    figure.rename(aside)  # put back below, mtime kept: the run stays up to date
    try:
        replot = snakemake(
            workdir,
            "results/figures/gpp_scatter.png",
            "-n",
            "--cores",
            "1",
            "--configfile",
            str(TINY),
        )
    finally:
        aside.rename(figure)
    assert replot.returncode == 0, replot.stdout + replot.stderr
    assert set(re.findall(r"^rule (\w+):", replot.stdout, re.MULTILINE)) == {"figure_gpp_scatter"}


@pytest.mark.slow
def test_tiny_figure_config_change_replots_the_figures_only(tiny, tmp_path):
    """Changing what the figures show re-plots them and re-runs nothing else."""
    workdir, _ = tiny
    shown = tmp_path / "figures_without_met.yaml"
    shown.write_text("figures:\n  met: false\n", encoding="utf-8")
    replot = snakemake(
        workdir, "figures", "-n", "--cores", "1", "--configfile", str(TINY), str(shown)
    )
    assert replot.returncode == 0, replot.stdout + replot.stderr
    planned = set(re.findall(r"^rule (\w+):", replot.stdout, re.MULTILINE))
    assert planned == {f"figure_{name}" for name in FIGURES} | {"figures"}, replot.stdout


@pytest.mark.slow
def test_a_script_run_by_hand_without_its_inputs_says_why_on_the_terminal(tmp_path):
    """By hand the traceback still goes to the rule's log, but the error and where the log
    is reach the terminal (Snakemake shows the log itself; a person would see nothing)."""
    run = subprocess.run(
        [sys.executable, str(REPO / "workflow_scripts" / "gpp_cv.py"), "input_set=fused"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1
    assert "FileNotFoundError: results/gpp/inputs.parquet" in run.stderr
    assert "(traceback in results/logs/gpp/cv_fused.log)" in run.stderr
    log = (tmp_path / "results" / "logs" / "gpp" / "cv_fused.log").read_text()
    assert "Traceback (most recent call last)" in log and "inputs.parquet" in log


def test_tiny_a_script_run_by_hand_makes_what_the_rule_made(tiny, tmp_path):
    """workflow_scripts/plot_figure.py run by hand (the mock of rule figure_gpp_skill, in a
    working directory holding only the figure's input) writes the figure the workflow did."""
    workdir, _ = tiny
    (tmp_path / "results" / "gpp").mkdir(parents=True)
    for name in ("summary.csv", "differences.csv"):  # the figure's inputs, nothing else
        table = workdir / "results" / "gpp" / name
        (tmp_path / "results" / "gpp" / name).write_bytes(table.read_bytes())
    script = REPO / "workflow_scripts" / "plot_figure.py"
    run = subprocess.run(
        [sys.executable, str(script), "--rule", "figure_gpp_skill", "--configfile", str(TINY)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    made = tmp_path / "results" / "figures" / "gpp_skill.png"
    assert made.read_bytes() == (workdir / "results" / "figures" / "gpp_skill.png").read_bytes()
    assert (tmp_path / "results" / "logs" / "figures" / "gpp_skill.log").is_file()


def test_readme_rule_graph_is_current():
    """The README's rule graph is the workflow's (python docs/rulegraph.py rewrites it)."""
    run = subprocess.run(
        [sys.executable, str(REPO / "docs" / "rulegraph.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
