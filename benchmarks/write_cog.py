"""Time of one write_cog call, the writer the synthetic world calls ~10,000 times.

Moved here from tests/test_io_raster.py, which asserts what keeps it fast (one pass of the
COG driver, 256 px DEFLATE tiles) without a clock. Measured: a few ms per 256 x 256 file;
the script exits 1 above 50 ms, a sign of an accidental slow path.

    .venv/bin/python benchmarks/write_cog.py          # 20 files
    .venv/bin/python benchmarks/write_cog.py -n 200
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from affine import Affine

from ecoembed.io.raster import write_cog

BOUND_S = 0.05
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5600000.0)


def seconds_per_write(n: int, folder: Path) -> float:
    """Mean wall-clock seconds of ``n`` writes of a 256 x 256 uint16 tile (after one warm-up)."""
    data = np.random.default_rng(0).integers(1, 10000, (256, 256), dtype=np.uint16)
    kwargs = dict(crs=32632, transform=TRANSFORM, nodata=0, scale=1e-4, offset=-0.1)
    write_cog(folder / "warm.tif", data, **kwargs)
    start = time.perf_counter()
    for i in range(n):
        write_cog(folder / f"{i}.tif", data, **kwargs)
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="files to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        per_write = seconds_per_write(args.n, Path(tmp))
    print(f"write_cog: {per_write * 1000:.1f} ms per 256 x 256 file (bound {BOUND_S * 1000:.0f})")
    return 0 if per_write < BOUND_S else 1


if __name__ == "__main__":
    sys.exit(main())
