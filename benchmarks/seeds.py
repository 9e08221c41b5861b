"""How much of a difference between input sets is real: everything downstream of the world,
re-trained with several seeds.

One world (``world_seed``) is synthesized and cubed once; then for every seed the workflow
runs again from stage 1 (both encoders, the fusion network, the export, the towers' series,
every GPP model on every input set and split) in its own directory, with the world's files
hard-linked in, so that only the training and evaluation seeds differ. The reconstruction
evaluation is run on a crop of the first tile (its top-left ``--crop-px`` square, cube and
truth cut once per world), exported with each seed's fusion checkpoint: exporting whole
tiles would cost more than the rest of a seed together.

Prints and writes (under ``--out``):

* ``skill.csv``: pooled R² and RMSE per world, seed, input set, model and split, with the
  run's own bootstrap interval (``results/gpp/summary.csv``);
* ``differences.csv``: the paired differences of ``fused`` against every other set per
  seed (``results/gpp/differences.csv``);
* ``reconstruction.csv``, ``image_quality.csv``: the reconstruction errors and image
  measures of the crop per seed (as rule eval_reconstruction writes them);
* ``summary.md``: mean, spread (standard deviation and range over seeds) of every set's R²,
  of the paired differences, and of the reconstruction errors, stamped with the commit,
  the config hash and the run's time. ``--publish`` makes it the benchmark the docs show:
  the tables and their stamp go to ``docs/data/seeds/``, from which ``docs/generate.py``
  writes ``docs/results.md`` and the README's headline.

    .venv/bin/python benchmarks/seeds.py                     # default world, seeds 42, 43, 44
    .venv/bin/python benchmarks/seeds.py --seeds 3 --world-seeds 42,7 --out /tmp/seeds
    .venv/bin/python benchmarks/seeds.py --configfile config/tiny.yaml --seeds 2
    # a stage-2 lever on the encoders of an earlier benchmark (only stage 2 on re-runs)
    .venv/bin/python benchmarks/seeds.py --configfile lever.yaml --stage1-from /tmp/seeds \\
        --out /tmp/lever

Runs take long (the default world: about half an hour per seed on 2 cores); already
finished seeds are kept, so an interrupted run goes on where it stopped.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ecoembed.config import config_hash, validate_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))  # generate.py: the pages built from the published tables
sys.path.insert(0, str(REPO / "benchmarks"))  # record.py, also when run by runpy
from record import commit  # noqa: E402

PUBLISHED = REPO / "docs" / "data" / "seeds"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
WORLD_DIRS = ("raw", "synth", "truth", "cube")  # made once per world, shared by the seeds
HEADLINE_MODEL, HEADLINE_SPLIT = "temporal_net", "loso"


def snakemake(workdir: Path, configfile: Path | None, overrides: dict, cores: int, *targets):
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "-d", str(workdir)]
    cmd += ["--cores", str(cores), "--rerun-triggers", "mtime", "--quiet", "rules"]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    cmd += ["--config", *(f"{k}={v}" for k, v in overrides.items()), "--", *targets]
    log = workdir / "benchmark-snakemake.log"
    workdir.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"snakemake failed in {workdir} (rc {done.returncode}); see {log}")


def make_world(out: Path, configfile: Path | None, world_seed: int, cores: int) -> Path:
    world = out / f"world-{world_seed}"
    if not (world / "results" / "cube").is_dir():
        print(f"world {world_seed}: synthesizing and cubing in {world}", flush=True)
        overrides = {"seed": world_seed, "world_seed": world_seed}
        snakemake(world, configfile, overrides, cores, "synthesize", "cubes")
    return world


def link_world(world: Path, run: Path) -> None:
    """Hard-link the world's files into a seed's directory (timestamps kept, so the
    world's rules count as done)."""
    for name in WORLD_DIRS:
        src, dst = world / "results" / name, run / "results" / name
        if src.exists() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-al", str(src), str(dst)], check=True)


STAGE1_FILES = ("encoder_*.pt", "pretrain_*_curves.csv", "pretrain_*_heldout.csv")


def link_stage1(source: Path, run: Path) -> None:
    """Hard-link a finished run's stage-1 outputs (the encoders, their curves and held-out
    figures) into ``run``, so that a stage-2 lever is measured on the very encoders of
    another benchmark: the paired difference then holds stage 2's effect alone."""
    src, dst = source / "results" / "models", run / "results" / "models"
    files = [f for pattern in STAGE1_FILES for f in sorted(src.glob(pattern))]
    if not any(f.name.startswith("encoder_") for f in files):
        raise SystemExit(f"--stage1-from: no encoder_*.pt in {src}")
    dst.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not (dst / f.name).exists():
            subprocess.run(["cp", "-al", str(f), str(dst / f.name)], check=True)
    (run / "stage1_from.txt").write_text(f"{source}\n")


FUSION_SETS = ("fused", "fused_interp")  # the GPP input sets that read the fusion network


def reuse_gpp_predictions(source: Path, run: Path) -> list[str]:
    """Copy the source run's cross-validated GPP predictions of every input set that does
    not read the fusion network (S2 and S1 codes, raw bands, NIRv, oracle, each with and
    without meteorology) into ``run``, where the towers' inputs of those sets are the very
    same as the source's (checked column by column): with the same seed and GPP settings
    their re-run would give the same predictions, and it costs most of a seed's time.
    Returns the sets copied; none where any column differs."""
    ours = pd.read_parquet(run / "results" / "gpp" / "inputs.parquet")
    theirs = pd.read_parquet(source / "results" / "gpp" / "inputs.parquet")

    def shared(table: pd.DataFrame) -> pd.DataFrame:  # the fusion's sets may change size
        return table[[c for c in table.columns if c.split(":", 1)[0] not in FUSION_SETS]]

    if not shared(ours).equals(shared(theirs)):
        return []
    copied = []
    cv_src, cv_dst = source / "results" / "gpp" / "cv", run / "results" / "gpp" / "cv"
    cv_dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(cv_src.glob("*.parquet")):
        if f.stem.split("+", 1)[0] in FUSION_SETS or (cv_dst / f.name).exists():
            continue
        shutil.copyfile(f, cv_dst / f.name)  # a copy, newer than the inputs: counts as done
        copied.append(f.stem)
    (run / "gpp_reused_from.txt").write_text(f"{source}: {', '.join(copied)}\n")
    return copied


def run_seed(world: Path, out: Path, seed: int, world_seed: int, args) -> float:
    """One seed's run; returns its wall time in seconds (0 when it was already done)."""
    run = out / f"world-{world_seed}-seed-{seed}"
    recon = run / "results" / "eval" / "reconstruction_crop.csv"
    if (run / "results" / "gpp" / "differences.csv").is_file() and (
        args.crop_px == 0 or recon.is_file()
    ):
        return 0.0
    link_world(world, run)
    if args.stage1_from is not None:
        link_stage1(args.stage1_from.resolve() / run.name, run)
    if not (run / "results" / "gpp" / "differences.csv").is_file():
        (run / "commit.txt").write_text(commit() + "\n")  # the code that trains and evaluates
    start = time.perf_counter()
    print(f"world {world_seed}, seed {seed}: gpp_eval in {run}", flush=True)
    overrides = {"seed": seed, "world_seed": world_seed}
    if args.stage1_from is not None:
        snakemake(run, args.configfile, overrides, args.cores, "gpp_inputs")
        reused = reuse_gpp_predictions(args.stage1_from.resolve() / run.name, run)
        print(f"  GPP predictions reused for {len(reused)} input sets", flush=True)
    snakemake(run, args.configfile, overrides, args.cores, "gpp_eval")
    if args.crop_px:
        crop_start = time.perf_counter()
        evaluate_reconstruction(world, run, args.cfg, seed, args.crop_px, args.cores, recon)
        seconds = time.perf_counter() - crop_start
        recon.with_name("reconstruction_crop_seconds.txt").write_text(f"{seconds:.1f}\n")
        recon.with_name("reconstruction_crop_commit.txt").write_text(commit() + "\n")
    return time.perf_counter() - start


def tile_ids(cfg: dict) -> list[str]:
    from ecoembed.config import tiles_of

    return tiles_of(cfg)


def merged_config(configfile: Path | None) -> dict:
    """The embedded config.yaml with the configfile's keys on top (as Snakemake merges
    them), validated."""

    def merge(base: dict, top: dict) -> dict:
        out = dict(base)
        for k, v in top.items():
            both = isinstance(v, dict) and isinstance(out.get(k), dict)
            out[k] = merge(out[k], v) if both else v
        return out

    cfg = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8")) or {}
    if configfile is not None:
        cfg = merge(cfg, yaml.safe_load(configfile.read_text(encoding="utf-8")) or {})
    return validate_config(cfg)


def crop_paths(world: Path, cfg: dict, crop_px: int) -> dict[str, Path]:
    """The first tile's cube and truth cut to its top-left ``crop_px`` square, written
    once per world (exporting a whole tile costs more than the rest of a seed)."""
    from ecoembed.io.zarrio import open_zarr, write_zarr

    tile = tile_ids(cfg)[0]
    paths = {}
    for kind in ("cube", "truth"):
        dst = world / "crop" / kind / f"{tile}.zarr"
        if not dst.exists():
            ds = open_zarr(world / "results" / kind / f"{tile}.zarr")
            part = ds.isel(y=slice(0, crop_px), x=slice(0, crop_px))
            for var in part.variables.values():
                var.encoding = {}
            write_zarr(part, dst, crs=ds.rio.crs, transform=part.rio.transform())
        paths[kind] = dst
    return paths


def evaluate_reconstruction(
    world: Path, run: Path, cfg: dict, seed: int, crop_px: int, cores: int, out: Path
) -> None:
    """Export the crop's reconstruction with this seed's fusion checkpoint and score it as
    rule eval_reconstruction does (the same library functions)."""
    import torch

    from ecoembed.embed.export import export_tile
    from ecoembed.evaluation.reconstruction import settings_from_config, write_reconstruction_table

    torch.set_num_threads(cores)
    crop = crop_paths(world, cfg, crop_px)
    checkpoint = run / "results" / "models" / "fusion.pt"
    rec = run / "crop" / "reconstruction.zarr"
    if not rec.exists():
        export_tile(
            crop["cube"],
            checkpoint,
            reconstruction_path=rec,
            window_px=int(cfg["embed"]["window_px"]),
            progress=False,
        )
    tile = crop["cube"].stem
    write_reconstruction_table(
        {tile: {"reconstruction": rec, "cube": crop["cube"], "truth": crop["truth"]}},
        checkpoint,
        out,
        image_quality_out=out.with_name("image_quality_crop.csv"),
        progress=False,
        **settings_from_config(
            cfg["reconstruction_eval"], window_px=cfg["embed"]["window_px"], seed=seed
        ),
    )


def elapsed_minutes(workdir: Path) -> float:
    """Minutes of every snakemake run this benchmark made in ``workdir`` (from its log)."""
    log = workdir / "benchmark-snakemake.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    times = re.findall(r"Elapsed time: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    return sum(int(h) * 60 + int(m) + float(sec) / 60 for h, m, sec in times)


def commits(out: Path, runs: list[tuple[int, int]]) -> str:
    """The commits that made the runs (the workflow's and the crops' evaluations)."""
    found = {"workflow": set(), "reconstruction crops": set()}
    for w, s in runs:
        run = out / f"world-{w}-seed-{s}"
        for kind, f in (
            ("workflow", run / "commit.txt"),
            ("reconstruction crops", run / "results" / "eval" / "reconstruction_crop_commit.txt"),
        ):
            if f.is_file():
                found[kind].add(f.read_text().strip())
    parts = [f"{kind} at {', '.join(sorted(c))}" for kind, c in found.items() if c]
    return "; ".join(parts) or "commit unknown"


def timing(out: Path, runs: list[tuple[int, int]], first: str = "stage 1") -> str:
    """The run's time, as the logs and the crop evaluations recorded it."""
    worlds = sorted({w for w, _ in runs})
    world = [elapsed_minutes(out / f"world-{w}") for w in worlds]
    flows = [elapsed_minutes(out / f"world-{w}-seed-{s}") for w, s in runs]
    crops = []
    for w, s in runs:
        f = out / f"world-{w}-seed-{s}" / "results" / "eval" / "reconstruction_crop_seconds.txt"
        if f.is_file():
            crops.append(float(f.read_text()) / 60)
    total = sum(world) + sum(flows) + sum(crops)
    text = (
        f"{total:.0f} min in all: the world {np.mean(world):.1f} min, per seed the workflow "
        f"from {first} to gpp_eval {min(flows):.0f}-{max(flows):.0f} min"
    )
    if crops:
        text += f" and the crop's export and evaluation {min(crops):.1f}-{max(crops):.1f} min"
    return text


def collect(out: Path, runs: list[tuple[int, int]]):
    skill, diffs, recon, images = [], [], [], []
    for world_seed, seed in runs:
        res = out / f"world-{world_seed}-seed-{seed}" / "results"
        tag = {"world_seed": world_seed, "seed": seed}
        skill.append(pd.read_csv(res / "gpp" / "summary.csv").assign(**tag))
        diffs.append(pd.read_csv(res / "gpp" / "differences.csv").assign(**tag))
        path = res / "eval" / "reconstruction_crop.csv"
        if path.is_file():
            recon.append(pd.read_csv(path).assign(**tag))
        path = res / "eval" / "image_quality_crop.csv"
        if path.is_file():
            images.append(pd.read_csv(path).assign(**tag))
    first = ["world_seed", "seed"]
    frames = [pd.concat(f, ignore_index=True) for f in (skill, diffs)]
    frames += [pd.concat(f, ignore_index=True) if f else pd.DataFrame() for f in (recon, images)]
    return [f[first + [c for c in f.columns if c not in first]] if len(f) else f for f in frames]


def seed_mean_table(out: Path, runs: list[tuple[int, int]], cfg: dict) -> pd.DataFrame:
    """Per world: the paired differences of the mean over its seeds, with one bootstrap of
    towers and day blocks for all of them (``ecoembed.gpp.confidence.seed_mean_differences``)."""
    from ecoembed.gpp.confidence import config_from, seed_mean_differences

    frames = []
    for world in dict.fromkeys(w for w, _ in runs):
        predictions = [
            pd.read_parquet(
                out / f"world-{w}-seed-{s}" / "results" / "gpp" / "predictions.parquet",
                columns=["site", "date", "input_set", "model", "split", "observed", "predicted"],
            )
            for w, s in runs
            if w == world
        ]
        table = seed_mean_differences(
            predictions, config_from(cfg["gpp_confidence"]), int(cfg["seed"])
        )
        frames.append(table.assign(world_seed=world))
    table = pd.concat(frames, ignore_index=True)
    return table[["world_seed"] + [c for c in table.columns if c != "world_seed"]]


def spread(values: pd.Series) -> dict:
    v = values.to_numpy(float)
    return {
        "mean": v.mean(),
        "sd": v.std(ddof=1) if v.size > 1 else np.nan,
        "min": v.min(),
        "max": v.max(),
        "seeds": v.size,
    }


def skill_spread(skill: pd.DataFrame) -> pd.DataFrame:
    keys = ["world_seed", "input_set", "model", "split"]
    rows = [
        {**dict(zip(keys, k, strict=True)), **spread(g["r2"])}
        for k, g in skill.groupby(keys, sort=False)
    ]
    return pd.DataFrame(rows)


def difference_spread(diffs: pd.DataFrame) -> pd.DataFrame:
    keys = ["world_seed", "input_set", "other", "model", "split"]
    rows = []
    for k, g in diffs.groupby(keys, sort=False):
        rows.append(
            {
                **dict(zip(keys, k, strict=True)),
                **spread(g["r2_diff"]),
                "seeds_better": int((g["r2_diff"] > 0).sum()),
                "seeds_resolved": int(g["resolved"].astype(str).str.lower().eq("true").sum()),
            }
        )
    return pd.DataFrame(rows)


def reconstruction_spread(recon: pd.DataFrame) -> pd.DataFrame:
    if recon.empty:
        return recon
    pooled = recon[(recon["tile"] == "all") & (recon["band"] == "all")]
    keys = ["world_seed", "period", "subset", "method"]
    rows = [
        {**dict(zip(keys, k, strict=True)), **spread(g["rmse"]), "n": int(g["n"].iloc[0])}
        for k, g in pooled.groupby(keys, sort=False)
    ]
    return pd.DataFrame(rows)


def image_spread(images: pd.DataFrame) -> pd.DataFrame:
    if images.empty:
        return images
    pooled = images[images["tile"] == "all"]
    rows = []
    for (world, method), g in pooled.groupby(["world_seed", "method"], sort=False):
        row = {"world_seed": world, "method": method, "n_images": int(g["n_images"].iloc[0])}
        for col in ("psnr_db", "ssim", "sam_deg"):
            v = g[col].to_numpy(float)
            row[col] = v.mean()
            row[f"{col}_sd"] = v.std(ddof=1) if v.size > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


# Issue 24's targets: (what, subset or pair, comparison, bound), checked on the means over
# seeds. Reconstruction: fused RMSE against linear interpolation's (a ratio) or alone;
# GPP: the paired R² difference of two sets (headline model and split).
RECONSTRUCTION_TARGETS = (
    ("under true cloud: fused / linear", "s2_dates", "cloud", "ratio", 0.8),
    ("clear dates: fused RMSE", "s2_dates", "clear", "value", 0.008),
    ("event during a cloud gap: fused / linear", "s2_dates", "after_unseen_event", "ratio", 0.6),
    ("days without any S2 acquisition: fused / linear", "no_s2_days", "all", "ratio", 0.8),
)
GPP_TARGETS = (
    ("fused − s2 (ΔR² >= 0.03, resolved in every seed)", "fused", "s2", 0.03, True),
    ("fused+met − s2_bands+met (ΔR² >= 0)", "fused+met", "s2_bands+met", 0.0, False),
    ("fused − fused_interp (ΔR² >= 0)", "fused", "fused_interp", 0.0, False),
)


def targets_table(recon: pd.DataFrame, diffs: pd.DataFrame) -> pd.DataFrame:
    """Each target of issue 24 per world: the measured value (mean over seeds) and met."""
    rows = []
    if not recon.empty:
        pooled = recon[(recon["tile"] == "all") & (recon["band"] == "all")]
        for world, g in pooled.groupby("world_seed", sort=False):
            mean = g.groupby(["period", "subset", "method"])["rmse"].mean()
            for label, period, subset, kind, bound in RECONSTRUCTION_TARGETS:
                fused = mean.get((period, subset, "fused"), np.nan)
                value = (
                    fused / mean.get((period, subset, "linear"), np.nan)
                    if kind == "ratio"
                    else fused
                )
                rows.append(
                    {
                        "world_seed": world,
                        "target": label,
                        "value": value,
                        "met": bool(value <= bound),
                    }
                )
    d = diffs[(diffs["model"] == HEADLINE_MODEL) & (diffs["split"] == HEADLINE_SPLIT)]
    for world, g in d.groupby("world_seed", sort=False):
        for label, first, second, bound, resolved in GPP_TARGETS:
            pair = g[(g["input_set"] == first) & (g["other"] == second)]
            if pair.empty:
                continue
            value = float(pair["r2_diff"].mean())
            ok = value >= bound
            if resolved:
                ok = ok and bool(pair["resolved"].astype(str).str.lower().eq("true").all())
            rows.append({"world_seed": world, "target": label, "value": value, "met": ok})
    table = pd.DataFrame(rows)
    if len(table):
        table["met"] = table["met"].map({True: "yes", False: "no"})
    return table


def markdown(df: pd.DataFrame, columns: dict[str, str], digits: int = 3) -> str:
    head = "| " + " | ".join(columns.values()) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = []
    for r in df.itertuples(index=False):
        cells = []
        for c in columns:
            v = getattr(r, c)
            cells.append(f"{v:.{digits}f}" if isinstance(v, float) else str(v))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *body])


def summary_markdown(
    skill: pd.DataFrame,
    diffs: pd.DataFrame,
    recon: pd.DataFrame,
    images: pd.DataFrame,
    stamp: dict,
    seed_mean: pd.DataFrame | None = None,
) -> str:
    head = (
        f"Seed benchmark (`benchmarks/seeds.py`), {stamp['date']}: {stamp['commit']}, "
        f"config {stamp['config']} (hash {stamp['config_hash']}), worlds {stamp['worlds']}, "
        f"seeds {stamp['seeds']}, {stamp['cores']} cores; {stamp['timing']}.\n"
    )
    if stamp.get("stage1_from"):
        head += f"Stage-1 encoders of each seed taken from {stamp['stage1_from']}.\n"
    parts = [head]
    t = targets_table(recon, diffs)
    if len(t):
        parts.append(
            "Issue 24's targets, on the means over seeds\n\n"
            + markdown(
                t,
                {"world_seed": "world", "target": "target", "value": "measured", "met": "met"},
                digits=4,
            )
        )
    s = skill_spread(skill)
    s = s[(s["model"] == HEADLINE_MODEL) & (s["split"] == HEADLINE_SPLIT)]
    parts.append(
        f"GPP, {HEADLINE_MODEL}, {HEADLINE_SPLIT.upper()}: pooled R² over seeds "
        "(sd and range: seed to seed)\n\n"
        + markdown(
            s,
            {
                "world_seed": "world",
                "input_set": "input set",
                "mean": "R² mean",
                "sd": "sd",
                "min": "min",
                "max": "max",
            },
        )
    )
    d = difference_spread(diffs)
    d = d[(d["model"] == HEADLINE_MODEL) & (d["split"] == HEADLINE_SPLIT)]
    parts.append(
        "Paired R² differences (first set minus second) over seeds; `better`: seeds in which "
        "the first set is ahead; `resolved`: seeds whose bootstrap interval excludes 0\n\n"
        + markdown(
            d.assign(pair=d["input_set"] + " − " + d["other"]),
            {
                "world_seed": "world",
                "pair": "pair",
                "mean": "ΔR² mean",
                "sd": "sd",
                "min": "min",
                "max": "max",
                "seeds_better": "better",
                "seeds_resolved": "resolved",
            },
        )
    )
    if seed_mean is not None and len(seed_mean):
        m = seed_mean[
            (seed_mean["model"] == HEADLINE_MODEL) & (seed_mean["split"] == HEADLINE_SPLIT)
        ]
        parts.append(
            "Paired R² differences of the mean over seeds, with one interval for that mean "
            "(every seed scored on the same bootstrap resamples of towers and blocks of days, "
            "R² averaged over seeds in each; `share better`: of the resamples)\n\n"
            + markdown(
                m.assign(
                    pair=m["input_set"] + " − " + m["other"],
                    interval=[
                        f"[{lo:.3f}, {hi:.3f}]"
                        for lo, hi in zip(m["r2_diff_lo"], m["r2_diff_hi"], strict=True)
                    ],
                    resolved=m["resolved"]
                    .astype(str)
                    .str.lower()
                    .map({"true": "yes", "false": "no"}),
                ),
                {
                    "world_seed": "world",
                    "pair": "pair",
                    "runs": "seeds",
                    "r2_diff": "ΔR² of the mean",
                    "interval": "interval",
                    "share_better": "share better",
                    "resolved": "excludes 0",
                },
            )
        )
    r = reconstruction_spread(recon)
    if len(r):
        parts.append(
            "Reconstruction RMSE (reflectance, all bands) over seeds, on the first tile's "
            f"top-left {stamp['crop_px']} x {stamp['crop_px']} pixels\n\n"
            + markdown(
                r,
                {
                    "world_seed": "world",
                    "period": "period",
                    "subset": "subset",
                    "method": "method",
                    "mean": "RMSE mean",
                    "sd": "sd",
                    "min": "min",
                    "max": "max",
                },
                digits=4,
            )
        )
    q = image_spread(images)
    if len(q):
        parts.append(
            "Image quality of the reconstruction under cloud (SEN12MS-CR-TS-style measures, "
            "`results/eval/image_quality.csv`), mean and sd over seeds\n\n"
            + markdown(
                q,
                {
                    "world_seed": "world",
                    "method": "method",
                    "n_images": "images",
                    "psnr_db": "PSNR (dB)",
                    "psnr_db_sd": "sd",
                    "ssim": "SSIM",
                    "ssim_sd": "sd",
                    "sam_deg": "SAM (°)",
                    "sam_deg_sd": "sd",
                },
            )
        )
    return "\n\n".join(parts) + "\n"


def publish(out: Path, stamp: dict, docs_data: Path = PUBLISHED) -> None:
    """Make this benchmark the one the docs show: its tables and stamp into docs/data/seeds/
    (the sources of the generated pages), then the pages rewritten from them."""
    import generate

    docs_data.mkdir(parents=True, exist_ok=True)
    for name in generate.SEED_TABLES:
        shutil.copyfile(out / f"{name}.csv", docs_data / f"{name}.csv")
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in stamp.items()}
    (docs_data / "stamp.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    generate.main([])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", type=Path, default=None, help="on top of config.yaml")
    ap.add_argument("--seeds", type=int, default=3, help="seeds: the config's seed and on")
    ap.add_argument("--world-seeds", default=None, help="comma-separated (default: the seed)")
    ap.add_argument(
        "--crop-px",
        type=int,
        default=128,
        help="reconstruction scored on the first tile's top-left square of this side (0: none)",
    )
    ap.add_argument(
        "--stage1-from",
        type=Path,
        default=None,
        help="another benchmark's --out: each seed's stage-1 encoders are taken from it "
        "(hard links), so only stage 2 and what follows re-run, and its GPP predictions of "
        "the sets that do not read the fusion network where their inputs are the same",
    )
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "runs" / "seeds")
    ap.add_argument(
        "--publish",
        action="store_true",
        help="copy the tables and their stamp into docs/data/seeds/ and regenerate the "
        "pages built from them (docs/results.md, README.md's headline: docs/generate.py)",
    )
    args = ap.parse_args()
    cfg = args.cfg = merged_config(args.configfile)
    base = int(cfg["seed"])
    seeds = [base + k for k in range(args.seeds)]
    worlds = [int(w) for w in args.world_seeds.split(",")] if args.world_seeds else [base]
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for w in worlds:
        world = make_world(out, args.configfile, w, args.cores)
        for seed in seeds:
            wall = run_seed(world, out, seed, w, args)
            if wall:
                print(f"  {wall / 60:.1f} min", flush=True)
    skill, diffs, recon, images = collect(out, [(w, s) for w in worlds for s in seeds])
    seed_mean = seed_mean_table(out, [(w, s) for w in worlds for s in seeds], cfg)
    tables = {
        "skill": skill,
        "differences": diffs,
        "seed_mean_differences": seed_mean,
        "reconstruction": recon,
        "image_quality": images,
    }
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False, float_format="%.5g")
    stamp = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "commit": commits(out, [(w, s) for w in worlds for s in seeds]),
        "config": str(args.configfile or "config.yaml"),
        "config_hash": config_hash(cfg),
        "worlds": ", ".join(map(str, worlds)),
        "seeds": ", ".join(map(str, seeds)),
        "cores": args.cores,
        "timing": timing(
            out,
            [(w, s) for w in worlds for s in seeds],
            "stage 1" if args.stage1_from is None else "stage 2",
        ),
        "crop_px": args.crop_px,
        "stage1_from": args.stage1_from,
    }
    text = summary_markdown(skill, diffs, recon, images, stamp, seed_mean)
    (out / "summary.md").write_text(text, encoding="utf-8")
    print(text)
    if args.publish:
        publish(out, stamp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
