"""How the embedding store's chunk layout serves its two reads: a whole-tile map of one date
and one pixel's whole series.

Writes one embedding array (time, dim, y, x) of float32 values with the smoothness of real
embeddings (a random field smoothed in space, a slow seasonal drift in time, so that the
compressor sees what it would see in an export) with each candidate layout through xarray
and zarr 3 (the export's own writer settings), then times, from a cold process cache of
zarr objects, reading every date's map in turn and a sample of pixels' whole series. The
export's layout (``ecoembed.embed.export.store_layout``: chunks of 8 dates x 64 x 64 px in
one shard per 128 px streaming window) comes first, then the chunks it used before
2026-12-04, ``(32, dim, 64, 64)``, and other candidates: sharded layouts keep small inner
chunks for the series reads while putting a whole tile's date in few files.

    .venv/bin/python benchmarks/zarr_layout.py                 # 512 px, 73 dates
    .venv/bin/python benchmarks/zarr_layout.py --size 1024 --publish
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import gaussian_filter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ecoembed.embed.export import store_layout  # noqa: E402

DIM = 7


def embedding_like(times: int, size: int, seed: int = 0) -> np.ndarray:
    """(time, dim, y, x) float32: smooth in space (sigma 3 px), drifting with the season."""
    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.standard_normal((DIM, size, size)), sigma=(0, 3, 3))
    amp = gaussian_filter(rng.standard_normal((DIM, size, size)), sigma=(0, 6, 6))
    phase = 2 * np.pi * np.arange(times) / times
    season = np.sin(phase)[:, None, None, None]
    noise = 0.02 * rng.standard_normal((times, DIM, size, size))
    return (base[None] + amp[None] * season + noise).astype(np.float32)


def layouts(times: int, size: int) -> dict[str, dict]:
    """Candidate encodings of the ``embedding`` variable (chunks, shards)."""
    t8 = -(-times // 8) * 8  # a shard holds whole chunks: the time extent rounded up
    dims = ("time", "dim", "y", "x")
    chunks, shards = store_layout(dims, {"time": times, "dim": DIM, "y": size, "x": size}, 128)
    return {
        f"export: chunks {chunks} in shards of {shards}": {"chunks": chunks, "shards": shards},
        f"before 2026-12-04 (32, {DIM}, 64, 64)": {"chunks": (32, DIM, 64, 64)},
        f"per date (1, {DIM}, 256, 256)": {"chunks": (1, DIM, 256, 256)},
        f"sharded: chunks (8, {DIM}, 32, 32) in shards of ({t8}, {DIM}, 256, 256)": {
            "chunks": (8, DIM, 32, 32),
            "shards": (t8, DIM, min(256, size), min(256, size)),
        },
        f"sharded: chunks ({times}, {DIM}, 16, 16) in shards of ({times}, {DIM}, 256, 256)": {
            "chunks": (times, DIM, 16, 16),
            "shards": (times, DIM, min(256, size), min(256, size)),
        },
        f"sharded: chunks (1, {DIM}, 64, 64) in shards of ({times}, {DIM}, 256, 256)": {
            "chunks": (1, DIM, 64, 64),
            "shards": (times, DIM, min(256, size), min(256, size)),
        },
    }


def folder_stats(path: Path) -> tuple[float, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6, len(files)


def time_reads(
    path: Path, times: int, size: int, pixels: int, seed: int = 1
) -> tuple[float, float]:
    """Seconds per whole-tile date map and per pixel series (mean over all dates / pixels)."""
    arr = xr.open_zarr(path, chunks=None, consolidated=False)["embedding"]
    t0 = time.perf_counter()
    for t in range(times):
        _ = arr.isel(time=t).values
    per_map = (time.perf_counter() - t0) / times
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, size, pixels), rng.integers(0, size, pixels)
    t0 = time.perf_counter()
    for r, c in zip(rows, cols, strict=True):
        _ = arr.isel(y=int(r), x=int(c)).values
    per_series = (time.perf_counter() - t0) / pixels
    return per_map, per_series


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="tile side (pixels)")
    ap.add_argument("--times", type=int, default=73, help="dates (73: a year of S2 at 5 days)")
    ap.add_argument("--pixels", type=int, default=200, help="pixel series to read")
    ap.add_argument("--publish", action="store_true", help="the table into docs/benchmarks.md")
    args = ap.parse_args()

    data = embedding_like(args.times, args.size)
    ds = xr.Dataset(
        {"embedding": (("time", "dim", "y", "x"), data)},
        coords={"time": pd.date_range("2022-01-01", periods=args.times, freq="5D")},
    )
    work = Path(tempfile.mkdtemp(prefix="ecoembed-zarr-layout-"))
    rows = []
    try:
        for name, enc in layouts(args.times, args.size).items():
            path = work / f"{len(rows)}.zarr"
            t0 = time.perf_counter()
            ds.to_zarr(path, encoding={"embedding": enc}, zarr_format=3, consolidated=False)
            write_s = time.perf_counter() - t0
            mb, files = folder_stats(path)
            per_map, per_series = time_reads(path, args.times, args.size, args.pixels)
            rows.append(
                {
                    "layout": name,
                    "files": files,
                    "size (MB)": f"{mb:.0f}",
                    "write (s)": f"{write_s:.1f}",
                    "one date's map (ms)": f"{per_map * 1e3:.1f}",
                    "one pixel's series (ms)": f"{per_series * 1e3:.2f}",
                }
            )
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.publish:
        from record import publish

        raw_mb = data.nbytes / 1e6
        notes = [
            f"One store of {args.times} dates x {DIM} dimensions x {args.size}^2 pixels, "
            f"float32 ({raw_mb:.0f} MB raw), zarr 3 with its default compressor, local disk "
            "(page cache warm: what is timed is decompression and zarr's per-chunk work).",
            f"Map: every date's whole-tile map read in turn, mean per date; series: "
            f"{args.pixels} random pixels' whole series, mean per pixel.",
        ]
        publish("zarr_layout", table, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
