"""The prepared GPU check (issue 26): export speed and one training epoch of each stage on
a CUDA device, in one short run, from nothing but PyTorch, NumPy and pandas.

Made for a lent machine with an NVIDIA GPU and no network, whose own CUDA build of
PyTorch may be another version than our pin, and which lacks our I/O stack (zarr,
rioxarray, rasterio): so the check works on in-memory windows of random values (speed
does not depend on them) and measures the model, not the reading of a cube. It prints:

* the device's own dense matrix-product rate (bf16 8192^3 on CUDA, float32 2048^3 on a
  CPU), the yardstick of the rows below;
* per precision (fp32, bf16) and pixel-date batch: pixel-dates/s of the dense export of
  one window (default architecture, random weights), achieved TFLOP/s from PyTorch's FLOP
  count against that rate, peak GPU memory, the largest difference of the bf16 embedding
  from the fp32 one, and the projected time of a full Sentinel-2 tile-year (1.2e8 pixels x
  73 dates), compute only, against the 15-minute target;
* one epoch of stage 1 (S2) and of stage 2 on one random tile, twice with the same seed
  under the deterministic mode (``ecoembed.train.device.reproducible_kernels``): seconds
  per epoch and whether the two runs' weights are identical; and the stage-1 epoch once
  more with ``ECOEMBED_DETERMINISTIC=0``, to show what determinism costs.

    python3 benchmarks/gpu_check.py --out gpu.json              # on the GPU machine
    python3 benchmarks/gpu_check.py --device cpu --quick        # a minute here (tested)

``benchmarks/gpu.sh`` is the one command to run on a lent machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TILE_PIXELS = 10_980**2  # a Sentinel-2 MGRS tile at 10 m
TILE_DATES = 73  # a year at a 5-day revisit
TARGET_S = 15 * 60


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_tflops(device: str, reps: int = 10) -> tuple[float, str]:
    """The device's dense matrix-product rate (TFLOP/s) and what was multiplied."""
    import torch

    n, dtype = (8192, torch.bfloat16) if device.startswith("cuda") else (2048, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    rate = reps * 2 * n**3 / (time.perf_counter() - t0) / 1e12
    return rate, f"{str(dtype).removeprefix('torch.')} {n}^3"


def random_window(px: int, n_s2: int, n_s1: int, halo: int, seed: int = 0):
    """A normalised window of random values with its halo; half the S2 pixel-dates cloudy."""
    from ecoembed.embed.dense import WindowSeries
    from ecoembed.io.sentinel import S1_POLARISATIONS, S2_BAND_NAMES

    rng = np.random.default_rng(seed)
    side = px + 2 * halo
    s2 = rng.normal(size=(n_s2, len(S2_BAND_NAMES), side, side)).astype(np.float32)
    s2[np.broadcast_to((rng.random((n_s2, 1, side, side)) < 0.5), s2.shape)] = np.nan
    s1 = rng.normal(size=(n_s1, len(S1_POLARISATIONS), side, side)).astype(np.float32)
    s2_days = 8000.4 + 5.0 * np.arange(n_s2)
    s1_days = 7998.7 + (5.0 * n_s2 / n_s1) * np.arange(n_s1)
    return WindowSeries(s2, s2_days, s1, s1_days)


def export_rows(device: str, px: int, n_s2: int, n_s1: int, batches: list[int], peak: float):
    """Pixel-dates/s of one window's dense export per precision and batch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ecoembed.embed import dense
    from ecoembed.embed.model import load_embedding_model
    from ecoembed.models.checkpoint import untrained_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fusion.pt"
        torch.save(untrained_checkpoint(), path)  # the default architecture
        model = load_embedding_model(path, device)
    small = random_window(16, n_s2, n_s1, model.halo, seed=1)
    targets = dense.s2_date_targets(small.s2_days)
    with FlopCounterMode(display=False) as counter:
        dense.embed_window(model, small, targets)
    flops = counter.get_total_flops() / (16 * 16 * len(targets))
    series = random_window(px, n_s2, n_s1, model.halo)
    targets = dense.s2_date_targets(series.s2_days)
    n = px * px * len(targets)
    rows, reference = [], None
    for precision in dense.PRECISIONS:
        for batch in batches:
            dense.embed_window(model, small, dense.s2_date_targets(small.s2_days), batch=batch)
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            sync(device)
            t0 = time.perf_counter()
            prod = dense.embed_window(model, series, targets, batch=batch, precision=precision)
            sync(device)
            seconds = time.perf_counter() - t0
            if reference is None:
                reference = prod.embedding
            rate = n / seconds
            rows.append(
                {
                    "precision": precision,
                    "batch": batch,
                    "window_px": px,
                    "pixel_dates_per_s": rate,
                    "tflops": rate * flops / 1e12,
                    "of_peak": rate * flops / 1e12 / peak,
                    "gpu_mem_gib": torch.cuda.max_memory_allocated() / 2**30
                    if device.startswith("cuda")
                    else float("nan"),
                    "max_abs_diff_from_fp32": float(np.abs(prod.embedding - reference).max()),
                    "tile_year_min": TILE_PIXELS * TILE_DATES / rate / 60,
                }
            )
            print(_row_line(rows[-1]), flush=True)
    return rows, flops


def _row_line(r: dict) -> str:
    return (
        f"| {r['precision']} | {r['batch']:,} | {r['pixel_dates_per_s']:,.0f} | "
        f"{r['tflops']:.3f} | {100 * r['of_peak']:.2f} % | {r['gpu_mem_gib']:.2f} | "
        f"{r['max_abs_diff_from_fp32']:.2e} | {r['tile_year_min']:,.1f} |"
    )


def random_series(px: int, n_s2: int, n_s1: int, seed: int):
    """One random tile of each sensor, as training reads them (physical-looking units)."""
    import pandas as pd

    from ecoembed.io.sentinel import S1_POLARISATIONS, S2_BAND_NAMES
    from ecoembed.io.timeaxis import day_numbers
    from ecoembed.train.series import SensorSeries

    rng = np.random.default_rng(seed)
    out = {}
    for name, bands, n, step, scale, offset in (
        ("s2", S2_BAND_NAMES, n_s2, 5, 0.05, 0.2),
        ("s1", S1_POLARISATIONS, n_s1, 365 / max(n_s1, 1), 3.0, -12.0),
    ):
        dates = pd.Timestamp("2022-01-01 10:21") + pd.to_timedelta(step * np.arange(n), "D")
        values = (offset + scale * rng.normal(size=(n, len(bands), px, px))).astype(np.float32)
        if name == "s2":
            values[np.broadcast_to(rng.random((n, 1, px, px)) < 0.4, values.shape)] = np.nan
        days = day_numbers(dates.values).astype(np.float32)
        out[name] = SensorSeries(values, days, dates.normalize(), tuple(bands))
    return out


def weights_of(path: Path, key: str) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)[key]


def same_weights(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def training_rows(device: str, px: int, n_s2: int, n_s1: int, examples: int) -> list[dict]:
    """Seconds of one epoch of each stage, twice (identical weights?), and stage 1 once
    without the deterministic mode."""
    from ecoembed.models.settings import FusionConfig, PretrainConfig
    from ecoembed.train.fusion import FusionOutputs, train_fusion
    from ecoembed.train.pretrain import PretrainOutputs, pretrain

    os.environ["ECOEMBED_DEVICE"] = device
    series = random_series(px, n_s2, n_s1, seed=0)
    pre_cfg = PretrainConfig(epochs=1, examples_per_tile=examples)
    fus_cfg = FusionConfig(epochs=1, examples_per_tile=examples)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for run in range(2):
            folder = Path(tmp) / f"run{run}"
            times, paths = {}, {}
            for m in ("s2", "s1"):
                out = PretrainOutputs.in_dir(folder, m)
                t0 = time.perf_counter()
                pretrain([series[m]], m, out, pre_cfg, progress=False)
                sync(device)
                times[f"pretrain_{m}"] = time.perf_counter() - t0
                paths[m] = out.encoder
            out = FusionOutputs.in_dir(folder)
            t0 = time.perf_counter()
            train_fusion([series["s2"]], [series["s1"]], paths, out, fus_cfg, progress=False)
            sync(device)
            times["fusion"] = time.perf_counter() - t0
            runs.append((times, paths, out.model))
        (t_a, p_a, f_a), (t_b, p_b, f_b) = runs
        for stage, key in (("pretrain_s2", "encoder"), ("pretrain_s1", "encoder")):
            m = stage[-2:]
            rows.append(
                {
                    "stage": stage,
                    "seconds": t_b[stage],
                    "identical_weights": same_weights(
                        weights_of(p_a[m], key), weights_of(p_b[m], key)
                    ),
                }
            )
        rows.append(
            {
                "stage": "fusion",
                "seconds": t_b["fusion"],
                "identical_weights": same_weights(
                    weights_of(f_a, "fusion"), weights_of(f_b, "fusion")
                ),
            }
        )
        if device.startswith("cuda"):  # the mode stays on in this process once set
            import torch

            os.environ["ECOEMBED_DETERMINISTIC"] = "0"
            torch.use_deterministic_algorithms(False)
            out = PretrainOutputs.in_dir(Path(tmp) / "free", "s2")
            t0 = time.perf_counter()
            pretrain([series["s2"]], "s2", out, pre_cfg, progress=False)
            sync(device)
            rows.append(
                {
                    "stage": "pretrain_s2, deterministic off",
                    "seconds": time.perf_counter() - t0,
                    "identical_weights": same_weights(
                        weights_of(p_a["s2"], "encoder"), weights_of(out.encoder, "encoder")
                    ),
                }
            )
    return rows


def describe(device: str) -> dict:
    import torch

    info = {"torch": torch.__version__, "python": platform.python_version(), "device": device}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        info |= {
            "gpu": props.name,
            "gpu_memory_gib": props.total_memory / 2**30,
            "cuda": torch.version.cuda,
        }
    else:
        info["cpu"] = platform.processor() or platform.machine()
        info["threads"] = torch.get_num_threads()
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a check of the check)")
    parser.add_argument("--out", help="also write the figures here (JSON)")
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA device visible to PyTorch; use --device cpu", file=sys.stderr)
        return 1
    if args.quick:
        px, n_s2, n_s1, batches, train_px, examples = 16, 14, 12, [512], 32, 200
    else:
        px, n_s2, n_s1, batches, train_px, examples = 256, 73, 61, [4096, 65536], 256, 2000
    info = describe(args.device)
    print(json.dumps(info), flush=True)
    peak, what = matmul_tflops(args.device)
    print(f"matrix product ({what}): {peak:.2f} TFLOP/s", flush=True)
    print(
        "| precision | batch | pixel-dates/s | TFLOP/s | of peak | GPU memory (GiB) | "
        "max diff from fp32 | tile-year, compute only (min) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    t0 = time.perf_counter()
    export, flops = export_rows(args.device, px, n_s2, n_s1, batches, peak)
    print(
        f"{flops / 1e6:.2f} MFLOP per pixel-date (PyTorch's count); export part "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    best = min(r["tile_year_min"] for r in export)
    print(
        f"best projected tile-year (compute only, no cube reading): {best:,.1f} min, "
        f"target {TARGET_S / 60:.0f} min: {'met' if best * 60 <= TARGET_S else 'missed'}",
        flush=True,
    )
    training = training_rows(args.device, train_px, n_s2, n_s1, examples)
    print("| one epoch of | seconds | two runs give identical weights |")
    print("|---|---|---|")
    for r in training:
        print(f"| {r['stage']} | {r['seconds']:.2f} | {r['identical_weights']} |", flush=True)
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "info": info,
                    "matmul_tflops": peak,
                    "matmul": what,
                    "flops_per_pixel_date": flops,
                    "export": export,
                    "training": training,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
