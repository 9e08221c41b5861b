"""Speed and memory of the dense export (ecoembed.embed.export), measured in one run.

For square tiles of each size it builds a cube with the layout of results/cube/ (values
drawn at random: speed does not depend on them; half of the S2 pixel-dates clear), exports
it in a fresh process and prints:

* pixel-dates per second (output pixels x S2 dates / wall time);
* achieved GFLOP/s: PyTorch's FLOP count of the export per pixel-date (FlopCounterMode on
  a small window) x pixel-dates per second, against this machine's own matrix-multiply
  GFLOP/s (a 2048 x 2048 float32 matmul, same threads, same run);
* peak resident memory of the export process (VmHWM: ru_maxrss would carry the parent's
  peak across fork+exec);

and, on one small window, the speed-up of the dense path over encoding one cropped
neighbourhood per pixel-date (ContextEncoder.forward on patches cut by
ecoembed.train.sampling.extract_neighbourhoods), for the encoders alone and for the whole
export. The model has the default architecture with random weights (speed does not depend
on the weights).

    python benchmarks/export.py                       # 512 1024 2048, 8 S2 dates, CPU
    python benchmarks/export.py --sizes 512 --device cuda
    python benchmarks/export.py --sizes 512 1024 --publish   # the table in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def default_checkpoint(path: Path, other_tokens: int | None = None) -> Path:
    """The default architecture (config.schema.yaml defaults), random weights; optionally
    another number of S1 tokens (the export's cost of that lever)."""
    import torch

    from ecoembed.models.checkpoint import untrained_checkpoint

    extra = {} if other_tokens is None else {"other_tokens": other_tokens}
    torch.save(untrained_checkpoint(**extra), path)
    return path


def synthetic_cube(path: Path, size: int, n_s2: int, n_s1: int, seed: int = 0) -> Path:
    """A cube-layout store of random values, written chunk row by chunk row."""
    import pandas as pd
    import xarray as xr
    from affine import Affine

    from ecoembed.io.sentinel import S1_POLARISATIONS, S2_BAND_NAMES
    from ecoembed.io.zarrio import RegionWriter, lazy_full

    rng = np.random.default_rng(seed)
    t2 = pd.date_range("2022-04-01 10:30", periods=n_s2, freq="5D").values
    t1 = pd.date_range("2022-04-02 05:40", periods=n_s1, freq="6D").values
    ch = (n_s2, 10, 64, 64)
    ds = xr.Dataset(
        {
            "s2": (
                ("time", "band", "y", "x"),
                lazy_full(np.float32(0), (n_s2, 10, size, size), ch),
            ),
            "s2_valid": (("time", "y", "x"), lazy_full(False, (n_s2, size, size), (n_s2, 64, 64))),
            "s1": (
                ("time_s1", "pol", "y", "x"),
                lazy_full(np.float32(0), (n_s1, 2, size, size), (n_s1, 2, 64, 64)),
            ),
        },
        coords={
            "time": t2,
            "time_s1": t1,
            "band": np.array(S2_BAND_NAMES, dtype=object),
            "pol": np.array(S1_POLARISATIONS, dtype=object),
            "y": 5_000_000 - 10 * (np.arange(size) + 0.5),
            "x": 400_000 + 10 * (np.arange(size) + 0.5),
        },
        attrs={"tile": f"bench{size}"},
    )
    ds = ds.rio.write_crs(32632).rio.write_transform(Affine(10, 0, 400_000, 0, -10, 5_000_000))
    enc = {v: {"chunks": ds[v].data.chunksize} for v in ("s2", "s2_valid", "s1")}
    with RegionWriter(path, ds, enc) as store:
        for r in range(0, size, 64):
            rows = slice(r, min(r + 64, size))
            h = rows.stop - rows.start
            part = xr.Dataset(
                {
                    "s2": (
                        ("time", "band", "y", "x"),
                        rng.uniform(0.02, 0.4, (n_s2, 10, h, size)).astype(np.float32),
                    ),
                    "s2_valid": (("time", "y", "x"), rng.random((n_s2, h, size)) < 0.5),
                    "s1": (
                        ("time_s1", "pol", "y", "x"),
                        rng.normal(-12, 3, (n_s1, 2, h, size)).astype(np.float32),
                    ),
                }
            )
            store.write(part, {"y": rows})
    return path


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_export(cube: str, ckpt: str, out: str, device: str, threads: int) -> None:
    """Run in a fresh process: export one tile, print JSON with time and peak memory."""
    import torch

    torch.set_num_threads(threads)
    from ecoembed.embed.export import export_tile

    t0 = time.perf_counter()
    export_tile(cube, ckpt, embeddings_path=out, device=device, progress=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    print(json.dumps({"seconds": time.perf_counter() - t0, "vm_hwm_mb": vm_hwm_mb()}))


def matmul_gflops(device: str, n: int = 2048, reps: int = 10) -> float:
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return reps * 2 * n**3 / (time.perf_counter() - t0) / 1e9


def per_pixel_sensor_codes(enc, values, days, pixels, where, batch=512):
    """The naive alternative: cut each pixel-date's neighbourhood and run the full encoder."""
    import torch

    from ecoembed.models.dense import padded_days
    from ecoembed.train.sampling import Centres, extract_neighbourhoods

    half_t, halo = enc.frames // 2, enc.size // 2
    device = next(enc.parameters()).device
    nan = np.full((half_t, *values.shape[1:]), np.nan, np.float32)
    padded = np.concatenate([nan, values, nan])
    days_p = padded_days(np.asarray(days, float), half_t).astype(np.float32)
    w = values.shape[3] - 2 * halo
    t, p = np.nonzero(where)
    codes = torch.zeros((where.shape[0], pixels.size, enc.temporal.out.out_features), device=device)
    for i in range(0, t.size, batch):
        tt, pp = t[i : i + batch], p[i : i + batch]
        px = pixels[pp]
        x, dt = extract_neighbourhoods(
            padded,
            days_p,
            Centres(tt + half_t, px // w + halo, px % w + halo),
            size=enc.size,
            frames=enc.frames,
        )
        codes[torch.from_numpy(tt).to(device), torch.from_numpy(pp).to(device)] = enc(
            torch.from_numpy(x).to(device), torch.from_numpy(dt).to(device)
        )
    return codes


def small_window_figures(cube: Path, ckpt: Path, device: str, px: int = 48) -> dict:
    """FLOPs per pixel-date, and dense vs per-pixel timings, on one px x px window."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ecoembed.embed import dense
    from ecoembed.embed.export import read_window
    from ecoembed.embed.model import load_embedding_model
    from ecoembed.io.zarrio import open_zarr

    model = load_embedding_model(ckpt, device)
    ds = open_zarr(cube)
    series = read_window(ds, model, slice(0, px), slice(0, px))
    targets = dense.s2_date_targets(series.s2_days)
    n = px * px * len(targets)
    with FlopCounterMode(display=False) as counter:
        dense.embed_window(model, series, targets)
    flops = counter.get_total_flops() / n

    def timed(fn):
        fn()  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    def codes_only(codes_fn):
        enc = model.encoders["s2"]
        pix = np.arange(px * px)
        where = dense.valid_pixels(series.s2, model.halo) | True
        with dense.inference_mode():
            return timed(lambda: codes_fn(enc, series.s2, series.s2_days, pix, where))

    dense_codes = codes_only(dense.sensor_codes)
    naive_codes = codes_only(per_pixel_sensor_codes)
    dense_all = timed(lambda: dense.embed_window(model, series, targets))
    original = dense.sensor_codes
    dense.sensor_codes = per_pixel_sensor_codes
    try:
        naive_all = timed(lambda: dense.embed_window(model, series, targets))
    finally:
        dense.sensor_codes = original
    return {
        "flops_per_pixel_date": flops,
        "speedup_encoder": naive_codes / dense_codes,
        "speedup_export": naive_all / dense_all,
        "window_px": px,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[512, 1024, 2048], help="none: FLOPs only"
    )
    parser.add_argument("--s2-dates", type=int, default=8)
    parser.add_argument("--s1-dates", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--other-tokens", type=int, default=None, help="S1 tokens (default: the config's)"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--publish", action="store_true", help="the table into docs/benchmarks.md (record.py)"
    )
    args = parser.parse_args()
    if args.child:
        child_export(*args.child, args.device, args.threads)
        return

    import torch

    torch.set_num_threads(args.threads)
    from ecoembed.embed.model import load_embedding_model

    with tempfile.TemporaryDirectory(prefix="ecoembed-bench-") as tmp:
        tmp = Path(tmp)
        ckpt = default_checkpoint(tmp / "fusion.pt", args.other_tokens)
        gflops_peak = matmul_gflops(args.device)
        small = synthetic_cube(tmp / "small.zarr", 64, args.s2_dates, args.s1_dates)
        fig = small_window_figures(small, ckpt, args.device)
        tokens = load_embedding_model(ckpt).other_tokens  # fails early on a bad checkpoint
        print(
            f"{tokens} S1 token(s); device {args.device}, {args.threads} threads; "
            f"matmul {gflops_peak:.0f} GFLOP/s; "
            f"{fig['flops_per_pixel_date'] / 1e6:.2f} MFLOP per pixel-date; "
            f"{args.s2_dates} S2 and {args.s1_dates} S1 dates per tile"
        )
        print(
            f"dense vs one cropped neighbourhood per pixel-date ({fig['window_px']} px window): "
            f"encoders {fig['speedup_encoder']:.1f}x faster, whole export "
            f"{fig['speedup_export']:.1f}x faster"
        )
        header = (
            f"{'tile px':>8} {'pixel-dates':>12} {'seconds':>8} {'pixel-dates/s':>14} "
            f"{'GFLOP/s':>8} {'of matmul':>9} {'peak RSS MB':>12}"
        )
        print(header)
        rows = []
        for size in args.sizes:
            cube = synthetic_cube(tmp / f"cube{size}.zarr", size, args.s2_dates, args.s1_dates)
            out = tmp / f"emb{size}.zarr"
            run = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--device",
                    args.device,
                    "--threads",
                    str(args.threads),
                    "--child",
                    str(cube),
                    str(ckpt),
                    str(out),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            res = json.loads(run.stdout.strip().splitlines()[-1])
            n = size * size * args.s2_dates
            rate = n / res["seconds"]
            gf = rate * fig["flops_per_pixel_date"] / 1e9
            print(
                f"{size:>8} {n:>12} {res['seconds']:>8.1f} {rate:>14.0f} {gf:>8.1f} "
                f"{gf / gflops_peak:>9.1%} {res['vm_hwm_mb']:>12.0f}",
                flush=True,
            )
            rows.append(
                {
                    "tile (px)": f"{size} x {size}",
                    "pixel-dates": f"{n / 1e6:.1f} M",
                    "time (s)": f"{res['seconds']:.0f}",
                    "pixel-dates/s": f"{rate:,.0f}",
                    "GFLOP/s": f"{gf:.0f}",
                    "of matmul": f"{gf / gflops_peak:.0%}",
                    "peak RSS (MB)": f"{res['vm_hwm_mb']:.0f}",
                }
            )
            import shutil

            shutil.rmtree(cube)
            shutil.rmtree(out)
    if args.publish:
        import pandas as pd
        from record import publish

        notes = [
            f"Device {args.device}, {args.threads} threads; this machine's 2048 x 2048 float32 "
            f"matmul in the same run: {gflops_peak:.0f} GFLOP/s.",
            f"PyTorch counts {fig['flops_per_pixel_date'] / 1e6:.2f} MFLOP per exported "
            f"pixel-date (default architecture with {tokens} S1 token(s), random weights; "
            f"{args.s2_dates} S2 and {args.s1_dates} S1 dates per tile, half the S2 "
            "pixel-dates clear).",
            f"Against encoding one cropped neighbourhood per pixel-date "
            f"({fig['window_px']} px window, same run): the dense encoders are "
            f"{fig['speedup_encoder']:.0f}x faster, the whole export (fusion network "
            f"included, which both paths run alike) {fig['speedup_export']:.0f}x.",
        ]
        publish("export", pd.DataFrame(rows), notes)


if __name__ == "__main__":
    main()
