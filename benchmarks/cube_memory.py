"""Peak memory and time of building a datacube, for tiles of growing size.

The issue's requirement: a 2048 x 2048 tile with a year of data builds with peak memory
under 2 GB. The physics cannot be simulated at that size here (its daily state alone would
need about 40 GB), so the script synthesizes a 256 x 256 year and repeats every asset
n x n times into larger COGs, with STAC items that describe them exactly as real ones
would (same acquisitions, larger grids). Each cube is built in a fresh process and its
peak resident memory is read from the operating system.

    .venv/bin/python benchmarks/cube_memory.py                # tiles of 512 and 2048 pixels
    .venv/bin/python benchmarks/cube_memory.py --factors 8    # only 2048
    .venv/bin/python benchmarks/cube_memory.py --publish      # the table in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from tqdm import tqdm

from ecoembed.config import validate_config
from ecoembed.io import stac
from ecoembed.io.raster import write_cog
from ecoembed.synth import synthesize_tile

BASE = {
    "n_tiles": 1,
    "tile_size": 256,
    "start": "2022-01-01",
    "end": "2022-12-31",
    "s2_revisit_days": 5,
    "s1_revisit_days": 12,
    "cloud_cover_mean": 0.5,
    "drought": False,
    "n_sites": 1,
    "epsg": 32632,
}

# The child reports its own high-water mark (VmHWM): ru_maxrss would include the parent's
# peak, which Linux carries across fork and exec.
BUILD = """
import json, sys, time
from ecoembed.cube import build_cube
cfg = json.loads(sys.argv[3])
t = time.perf_counter()
build_cube(sys.argv[1], "tile00", sys.argv[2], cube_cfg=cfg, progress=False,
           threads=int(sys.argv[4]))
seconds = time.perf_counter() - t
status = open("/proc/self/status").read().split("\\n")
hwm_kb = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
print(json.dumps({"seconds": seconds, "peak_rss_mb": hwm_kb / 1024}))
"""


def enlarge(items: list, factor: int, out_dir: Path) -> list:
    """Every asset repeated factor x factor times, items updated to the larger grids."""
    big = []
    for item in tqdm(items, desc=f"enlarging x{factor}"):
        clone = item.clone()
        if item.collection_id == stac.TILES_COLLECTION_ID:
            clone.properties["proj:shape"] = [s * factor for s in item.properties["proj:shape"]]
            big.append(clone)
            continue
        for key, asset in item.assets.items():
            with rasterio.open(asset.href) as src:
                data = np.tile(src.read(1), (factor, factor))
                t, nodata = src.transform, src.nodata
                scale, offset = src.scales[0], src.offsets[0]
            path = out_dir / item.id / f"{key}.tif"
            write_cog(
                path,
                data,
                crs=src.crs,
                transform=t,
                nodata=nodata,
                scale=None if scale == 1 else scale,
                offset=None if offset == 0 else offset,
                overview_resampling="nearest" if key == "SCL" else "average",
            )
            clone.assets[key].href = str(path)
            clone.assets[key].extra_fields["proj:shape"] = list(data.shape)
        big.append(clone)
    return big


def read_times(cube_path: Path) -> dict[str, float]:
    """The two access patterns the chunking serves: a pixel's series and a date's map."""
    from ecoembed.io.zarrio import open_zarr

    ds = open_zarr(cube_path)
    mid = ds.sizes["y"] // 2
    t = time.perf_counter()
    series = ds["s2"][:, :, mid, mid].values
    pixel = time.perf_counter() - t
    t = time.perf_counter()
    date_map = ds["s2"][ds.sizes["time"] // 2].values
    one_date = time.perf_counter() - t
    assert series.shape[0] == ds.sizes["time"] and date_map.shape[-1] == ds.sizes["x"]
    return {"pixel_series_s": pixel, "one_date_s": one_date}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factors", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--threads", type=int, default=2, help="reading threads (rule cube: 2)")
    ap.add_argument(
        "--publish", action="store_true", help="the table into docs/benchmarks.md (record.py)"
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecoembed-cube-bench-"))
    cube_cfg = validate_config({})["cube"]
    try:
        tile_dir = work / "base" / "tiles" / "tile00"
        synthesize_tile(
            BASE,
            1,
            "tile00",
            tile_dir=tile_dir,
            truth_path=work / "truth.zarr",
            flux_dir=work / "flux",
            progress=False,
        )
        items = stac.read_item_collection(tile_dir / "items.json")
        n_s2 = sum(i.collection_id == stac.S2_COLLECTION_ID for i in items)
        n_s1 = sum(i.collection_id == stac.S1_COLLECTION_ID for i in items)
        print(
            f"one year: {n_s2} Sentinel-2 and {n_s1} Sentinel-1 acquisitions; "
            f"{args.threads} reading threads; cube config {cube_cfg}"
        )
        rows = []
        for factor in args.factors:
            size = BASE["tile_size"] * factor
            raw = work / f"raw{size}"
            big = enlarge(items, factor, raw / "tiles" / "tile00")
            stac.write_item_collection(big, raw / "tiles" / "tile00" / "items.json")
            stac.build_catalog([raw / "tiles" / "tile00" / "items.json"], raw / "catalog.json")
            t = time.perf_counter()
            run = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    BUILD,
                    str(raw / "catalog.json"),
                    str(work / f"cube{size}.zarr"),
                    json.dumps(cube_cfg),
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
            )
            if run.returncode:
                how = (
                    f"killed by signal {-run.returncode}"
                    if run.returncode < 0
                    else f"exit code {run.returncode}"
                )
                print(
                    f"cube build of the {size} px tile failed ({how})\n{run.stderr[-3000:]}",
                    file=sys.stderr,
                )
                return 1
            res = json.loads(run.stdout.strip().splitlines()[-1])
            res.update(read_times(work / f"cube{size}.zarr"))
            print(
                f"{size} px: pixel time series (all dates, bands) read in "
                f"{res['pixel_series_s'] * 1e3:.0f} ms; one date of the whole tile in "
                f"{res['one_date_s'] * 1e3:.0f} ms"
            )
            pixel_dates = size * size * (n_s2 + n_s1)
            rows.append(
                (
                    size,
                    res["peak_rss_mb"],
                    res["seconds"],
                    pixel_dates / res["seconds"] / 1e6,
                    time.perf_counter() - t,
                    res["pixel_series_s"],
                    res["one_date_s"],
                )
            )
            shutil.rmtree(raw)
        print(f"{'tile':>11} {'peak memory':>12} {'build':>8} {'throughput':>22}")
        for size, mb, sec, mpx, *_ in rows:
            print(f"{size:>5} x {size:<4} {mb:>9.0f} MB {sec:>7.1f}s {mpx:>10.2f} Mpixel-dates/s")
        worst = max(r[1] for r in rows if r[0] >= 2048) if any(r[0] >= 2048 for r in rows) else None
        if worst is not None:
            print(
                f"2048 x 2048, one year: peak memory {worst:.0f} MB "
                f"({'under' if worst < 2000 else 'OVER'} the 2000 MB requirement)"
            )
        if args.publish:
            publish_table(rows, n_s2, n_s1, args.threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def publish_table(rows: list[tuple], n_s2: int, n_s1: int, threads: int) -> None:
    import pandas as pd
    from record import publish

    table = pd.DataFrame(
        [
            {
                "tile (px)": f"{size} x {size}",
                "build (s)": f"{sec:.0f}",
                "Mpixel-dates/s": f"{mpx:.2f}",
                "peak memory (MB)": f"{mb:.0f}",
                "one pixel's series (ms)": f"{series * 1e3:.0f}",
                "one date, whole tile (s)": f"{one_date:.1f}",
            }
            for size, mb, sec, mpx, _, series, one_date in rows
        ]
    )
    notes = [
        f"One year: {n_s2} Sentinel-2 and {n_s1} Sentinel-1 acquisitions; {threads} reading "
        "threads; the default `cube` config (every band, the default window)."
    ]
    publish("cube_memory", table, notes)


if __name__ == "__main__":
    sys.exit(main())
