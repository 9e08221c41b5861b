"""Tile-wise export: the fused embedding of every pixel on every S2 date (and every day).

The tile is streamed window by window: each window is read from the cube with a halo of
half the context size (beyond the tile edge: from the neighbouring tiles' cubes where
given, else missing values), embedded densely
(``ecoembed.embed.dense``), and written into its region of the output stores at once.
Peak memory is that of one window, whatever the tile size. Outputs are assembled under
temporary names and appear only when complete.

Products:

* ``embeddings``: ``embedding`` (time, dim, y, x) on the tile's S2 dates and ``observed``
  (time, y, x), True where the pixel had a clear S2 view that day (else the embedding is
  reconstructed from the S2 context and S1);
* ``reconstruction``: ``s2`` (time, band, y, x), the anchored reconstruction
  (``FusionNetwork.reconstruct``: the pixel's clear views interpolated and corrected from
  the embedding): a gap-free, cloud-free reflectance cube (and ``observed``);
* ``daily`` (optional): ``embedding`` (day, dim, y, x) and ``observed`` on every calendar
  day of the tile's series (or of a chosen period within it).

An existing output path is replaced only when it is a previous product of the same kind
(an embeddings store for ``embeddings``...); anything else there, and an output that is,
holds or lies inside the input cube or another output, is refused before any work
(:func:`check_export_paths`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from ecoembed.embed.dense import (
    PRECISIONS,
    Targets,
    WindowProduct,
    WindowSeries,
    concat_targets,
    daily_targets,
    embed_window,
    s2_date_targets,
)
from ecoembed.embed.model import EmbeddingModel, load_embedding_model
from ecoembed.embed.neighbours import Neighbour, place_neighbour, read_with_halo
from ecoembed.io.atomic import OutputExistsError
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec
from ecoembed.io.sensors import SENSORS
from ecoembed.io.timeaxis import day_dates, day_numbers
from ecoembed.io.zarrio import RegionWriter, is_ecoembed_product, lazy_full, open_zarr, product_kind

log = logging.getLogger(__name__)
CHUNK_PX = 64  # chunks inside the shards (store_layout)
CHUNK_TIME = 8
# Every sensor's series and, where it has one, its valid mask (s2, s2_valid, s1).
CUBE_VARIABLES = tuple(v for s in SENSORS.values() for v in (s.name, s.valid_var) if v)


def check_cube(cube: xr.Dataset, model: EmbeddingModel, path: str | Path) -> None:
    """The cube must hold the bands the encoders were trained on, in the same order."""
    for var in CUBE_VARIABLES:
        if var not in cube:
            raise InputDataError(path, f"not an ecoembed cube: no variable {var!r}")
    for s in SENSORS.values():
        have = [str(v) for v in cube[s.channel_dim].values]
        if have != model.channels[s.name]:
            raise InputDataError(
                path,
                f"{s.name} bands {have} differ from the model's {model.channels[s.name]}",
            )
    if cube.rio.crs is None:
        raise InputDataError(path, "cube has no CRS (spatial_ref)")
    if cube.sizes["time"] < 2 or cube.sizes["time_s1"] < 1:
        raise InputDataError(path, "cube needs at least two S2 and one S1 acquisition")


def cube_grid(cube: xr.Dataset) -> GridSpec:
    return GridSpec(
        int(cube.rio.crs.to_epsg()), cube.rio.transform(), cube.sizes["y"], cube.sizes["x"]
    )


def read_window(
    cube: xr.Dataset,
    model: EmbeddingModel,
    rows: slice,
    cols: slice,
    neighbours: Sequence[Neighbour] = (),
) -> WindowSeries:
    """Both sensors on ``rows`` x ``cols`` plus the model's halo, normalised, NaN = unusable.

    The halo beyond the tile's edge comes from ``neighbours`` (``ecoembed.embed.neighbours``)
    where they cover it, and is missing elsewhere."""
    halo = model.halo
    r = slice(rows.start - halo, rows.stop + halo)
    c = slice(cols.start - halo, cols.stop + halo)
    nbs = list(neighbours)
    s2 = read_with_halo(cube, "s2", r, c, nbs)
    clear = read_with_halo(cube, "s2_valid", r, c, nbs)
    s2 = np.where(clear[:, None], s2, np.nan)
    s1 = read_with_halo(cube, "s1", r, c, nbs)
    return WindowSeries(
        model.normalise("s2", s2),
        day_numbers(cube["time"].values),
        model.normalise("s1", s1),
        day_numbers(cube["time_s1"].values),
    )


def open_neighbours(
    cube: xr.Dataset, model: EmbeddingModel, paths: Sequence[str | Path]
) -> list[Neighbour]:
    """The cubes of neighbouring tiles, checked like the tile's own and placed on its grid."""
    out = []
    for path in paths:
        if not Path(path).exists():
            raise InputDataError(path, "neighbour cube does not exist")
        other = open_zarr(path)
        check_cube(other, model, path)
        out.append(place_neighbour(cube, other, path))
    return out


def daily_range(
    cube: xr.Dataset,
    start: str | None = None,
    end: str | None = None,
    path: str | Path = "cube",
) -> tuple[int, int]:
    """First and last calendar day (day numbers) of the daily product: every day covered
    by any sensor, or those from ``start`` to ``end`` (ISO dates, inclusive; None: the
    cube's first or last day) among them.

    Raises InputDataError (naming ``path``) when the period and the cube share no day."""
    days = np.concatenate([day_numbers(cube[s.time_dim].values) for s in SENSORS.values()])
    first, last = int(np.floor(days.min())), int(np.floor(days.max()))
    lo = first if start is None else int(day_numbers(np.array([np.datetime64(start)]))[0])
    hi = last if end is None else int(day_numbers(np.array([np.datetime64(end)]))[0])
    if max(lo, first) > min(hi, last):
        covered = day_dates(np.array([first, last]))
        raise InputDataError(
            path,
            f"the daily period {start or covered[0]} to {end or covered[1]} shares no day "
            f"with the cube's acquisitions ({covered[0]} to {covered[1]}); choose "
            "embed.daily_start/daily_end within them",
        )
    return max(first, lo), min(last, hi)


def _spatial(cube: xr.Dataset, ds: xr.Dataset) -> xr.Dataset:
    ds = ds.assign_coords(y=cube["y"].values, x=cube["x"].values)
    return ds.rio.write_crs(cube.rio.crs).rio.write_transform(cube.rio.transform())


def store_layout(
    var_dims: tuple[str, ...], sizes: Mapping[str, int], window_px: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(chunks, shards) of a product variable: small chunks (``CHUNK_TIME`` dates x
    ``CHUNK_PX`` px) inside one shard per streaming window and the whole time axis.

    The export writes each window once, all dates at a time, so a shard is written whole
    and never rewritten; a date's map and a pixel's series both read fast, in a
    window's-worth of files fewer (benchmarks/zarr_layout.py)."""
    chunk = {"y": CHUNK_PX, "x": CHUNK_PX, "time": CHUNK_TIME, "day": CHUNK_TIME}
    chunks = tuple(min(chunk.get(d, sizes[d]), sizes[d]) for d in var_dims)

    def shard(d: str, c: int) -> int:
        if d in ("y", "x") and c == CHUNK_PX:  # (a tile smaller than a chunk: one shard)
            return window_px
        return -(-sizes[d] // c) * c  # the whole axis, in whole chunks

    return chunks, tuple(shard(d, c) for d, c in zip(var_dims, chunks, strict=True))


def _template(
    cube: xr.Dataset,
    coords: dict[str, np.ndarray],
    variables: dict,
    attrs: dict,
    window_px: int,
) -> tuple[xr.Dataset, dict]:
    """A lazily filled dataset on the cube's grid: variables name -> (dims, fill, attrs)."""
    ds = _spatial(cube, xr.Dataset(coords=coords))
    sizes = dict(ds.sizes)
    encoding = {}
    for name, (dims, fill, vattrs) in variables.items():
        shape = tuple(sizes[d] for d in dims)
        chunks, shards = store_layout(dims, sizes, window_px)
        lazy = lazy_full(fill, shape, tuple(min(a, b) for a, b in zip(shards, shape, strict=True)))
        ds[name] = (dims, lazy, vattrs)
        encoding[name] = {"chunks": chunks, "shards": shards}
    ds.attrs.update(attrs)
    return ds, encoding


OBSERVED_ATTRS = {
    "description": "True where the pixel had a clear Sentinel-2 view that day (an input); "
    "False where the value is reconstructed from S2 context and S1"
}


def embedding_template(
    cube: xr.Dataset,
    model: EmbeddingModel,
    time_dim: str,
    times: np.ndarray,
    attrs: dict,
    window_px: int = 128,
) -> tuple[xr.Dataset, dict]:
    emb_attrs = {"long_name": "fused embedding (ecoembed)", "units": "1"}
    return _template(
        cube,
        {time_dim: times, "dim": np.arange(model.embedding_dim)},
        {
            "embedding": ((time_dim, "dim", "y", "x"), np.float32(np.nan), emb_attrs),
            "observed": ((time_dim, "y", "x"), False, OBSERVED_ATTRS),
        },
        attrs,
        window_px,
    )


def reconstruction_template(
    cube: xr.Dataset, attrs: dict, window_px: int = 128
) -> tuple[xr.Dataset, dict]:
    s2_attrs = {
        "long_name": "cloud-free surface reflectance: the pixel's clear views "
        "interpolated and corrected from the fused embedding",
        "units": "1",
    }
    return _template(
        cube,
        {"time": cube["time"].values, "band": cube["band"].values},
        {
            "s2": (("time", "band", "y", "x"), np.float32(np.nan), s2_attrs),
            "observed": (("time", "y", "x"), False, OBSERVED_ATTRS),
        },
        attrs,
        window_px,
    )


def _embedding_part(time_dim: str, prod: WindowProduct, days: slice, h: int, w: int) -> xr.Dataset:
    """The rows ``days`` of a window's product, as the region of an embedding store."""
    emb = prod.embedding[days]
    return xr.Dataset(
        {
            "embedding": ((time_dim, "dim", "y", "x"), emb.reshape(*emb.shape[:2], h, w)),
            "observed": ((time_dim, "y", "x"), prod.observed[days].reshape(-1, h, w)),
        }
    )


def product_attrs(model: EmbeddingModel, tile: str, provenance: dict | None) -> dict:
    """Model identity and run configuration, JSON-encoded (Zarr attributes are JSON)."""
    return {
        "tile": tile,
        "model": json.dumps(model.provenance, sort_keys=True, default=str),
        **{
            k: v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
            for k, v in (provenance or {}).items()
        },
    }


PRODUCTS = ("embeddings", "reconstruction", "daily")
ARGUMENTS = {p: f"{p}_path" for p in PRODUCTS}  # how export_tile's errors name an output


def _nested(a: Path, b: Path) -> str | None:
    if a == b:
        return "is"
    if a.is_relative_to(b):
        return "lies inside"
    if b.is_relative_to(a):
        return "contains"
    return None


def check_export_paths(
    cube_path: str | os.PathLike[str],
    outputs: Mapping[str, str | os.PathLike[str] | None],
    names: Mapping[str, str] = ARGUMENTS,
) -> None:
    """Refuse output paths that would destroy something (OutputExistsError), before any work.

    ``outputs`` maps a product (``embeddings``, ``reconstruction``, ``daily``) to its path
    (None: not written); ``names`` says how the message names each (``--out`` for the
    command line). An output may not be, hold or lie inside the input cube or another
    output, and an existing path must be a previous product of the same kind: a folder of
    the user's files, a file, a cube or another kind of product is never replaced.
    """
    cube = Path(cube_path).resolve()
    given = {p: Path(v) for p, v in outputs.items() if v is not None}
    for product, path in given.items():
        name = names.get(product, product)
        where = path.resolve()
        relation = _nested(where, cube)
        if relation is not None:
            raise OutputExistsError(
                path, f"{relation} the input cube {cube_path}; choose another {name}"
            )
        for other, other_path in given.items():
            relation = _nested(where, other_path.resolve())
            if other != product and relation is not None:
                raise OutputExistsError(
                    path,
                    f"{relation} {names.get(other, other)} {other_path}; choose another {name}",
                )
        if not (path.exists() or path.is_symlink()):
            continue
        kind = product_kind(path)
        if kind is None:
            raise OutputExistsError(
                path, f"exists and is not an ecoembed product; remove it or choose another {name}"
            )
        if kind != product:
            raise OutputExistsError(
                path,
                f"exists and is an ecoembed {kind} store, not {product}; remove it or "
                f"choose another {name}",
            )


def default_batch(device: str) -> int:
    """Pixel-dates per forward pass: 512 on a CPU (measured fastest there, 2026-12-04 entry
    of docs/experiments.md), 16,384 on a GPU (unmeasured: benchmarks/gpu.sh times 4,096
    and 65,536)."""
    return 512 if str(device).startswith("cpu") else 16_384


def export_tile(
    cube_path: str | Path,
    checkpoint: str | Path,
    *,
    embeddings_path: str | Path | None = None,
    reconstruction_path: str | Path | None = None,
    daily_path: str | Path | None = None,
    window_px: int = 128,
    daily_start: str | None = None,
    daily_end: str | None = None,
    neighbours: Sequence[str | Path] = (),
    provenance: dict | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    batch: int = 0,
    progress: bool = True,
) -> None:
    """Write the tile's products (see the module docstring); None skips a product.

    ``daily_start``/``daily_end``: first and last ISO date of the daily product (default:
    the first and last day the cube covers). ``neighbours``: cubes of the tiles around
    this one, on its pixel grid, from which the halo beyond its edge is read (no seams
    when the tiles' products are mosaicked; ``ecoembed.embed.neighbours``). ``precision``:
    ``fp32`` or ``bf16`` (mixed precision for GPUs, ``ecoembed.embed.dense.inference_mode``).
    ``batch``: pixel-dates per forward pass; 0 picks ``default_batch(device)``.

    Products asked for together share the encoders' work (one pass over the tile). Paths
    that would destroy something are refused first (:func:`check_export_paths`)."""
    if embeddings_path is None and reconstruction_path is None and daily_path is None:
        raise ValueError("export_tile: no product requested")
    if window_px <= 0 or window_px % CHUNK_PX:
        raise ValueError(
            f"export_tile: window_px must be a multiple of {CHUNK_PX}, got {window_px}"
        )
    if batch < 0:
        raise ValueError(f"export_tile: batch must be positive (0: automatic), got {batch}")
    batch = batch or default_batch(device)
    if precision not in PRECISIONS:
        raise ValueError(f"export_tile: precision must be one of {PRECISIONS}, got {precision!r}")
    outputs = {
        "embeddings": embeddings_path,
        "reconstruction": reconstruction_path,
        "daily": daily_path,
    }
    check_export_paths(cube_path, outputs)
    model = load_embedding_model(checkpoint, device)
    cube = open_zarr(cube_path)
    check_cube(cube, model, cube_path)
    around = open_neighbours(cube, model, neighbours)
    tile = str(cube.attrs.get("tile", Path(cube_path).stem))
    attrs = product_attrs(model, tile, provenance)
    attrs["precision"] = precision
    if around:  # what the edge pixels rest on
        attrs["halo_from"] = json.dumps(
            [str(nb.cube.attrs.get("tile", p)) for nb, p in zip(around, neighbours, strict=True)]
        )
    grid = cube_grid(cube)
    s2_days = day_numbers(cube["time"].values)
    targets = s2_date_targets(s2_days)
    daily: Targets | None = None
    if daily_path is not None:
        daily = daily_targets(s2_days, *daily_range(cube, daily_start, daily_end, cube_path))
    log.info(
        "tile %s: %d x %d pixels, %d S2 dates%s, windows of %d px",
        tile,
        grid.height,
        grid.width,
        len(targets),
        f", {len(daily)} days" if daily is not None else "",
        window_px,
    )
    with ExitStack() as stack:
        emb_store = (
            stack.enter_context(
                RegionWriter(
                    embeddings_path,
                    *embedding_template(cube, model, "time", cube["time"].values, attrs, window_px),
                    replace=partial(is_ecoembed_product, kind="embeddings"),
                )
            )
            if embeddings_path is not None
            else None
        )
        rec_store = (
            stack.enter_context(
                RegionWriter(
                    reconstruction_path,
                    *reconstruction_template(cube, attrs, window_px),
                    replace=partial(is_ecoembed_product, kind="reconstruction"),
                )
            )
            if reconstruction_path is not None
            else None
        )
        day_store = (
            stack.enter_context(
                RegionWriter(
                    daily_path,
                    *embedding_template(
                        cube,
                        model,
                        "day",
                        pd.DatetimeIndex(day_dates(daily.days)).values,
                        attrs,
                        window_px,
                    ),
                    replace=partial(is_ecoembed_product, kind="daily"),
                )
            )
            if daily is not None
            else None
        )
        for window in tqdm(
            list(grid.windows(window_px)), desc=f"{tile} embed windows", disable=not progress
        ):
            rows = slice(int(window.row_off), int(window.row_off + window.height))
            cols = slice(int(window.col_off), int(window.col_off + window.width))
            h, w = rows.stop - rows.start, cols.stop - cols.start
            series = read_window(cube, model, rows, cols, around)
            region = {"y": rows, "x": cols}
            n = len(targets) if emb_store is not None or rec_store is not None else 0
            parts = ([targets] if n else []) + ([daily] if daily is not None else [])
            prod = embed_window(
                model,
                series,
                concat_targets(*parts),
                decode=rec_store is not None,
                precision=precision,
                batch=batch,
            )
            part = slice(0, n)
            if emb_store is not None:
                emb_store.write(_embedding_part("time", prod, part, h, w), region)
            if rec_store is not None:
                rec_store.write(
                    xr.Dataset(
                        {
                            "s2": (("time", "band", "y", "x"), prod.s2[part].reshape(n, -1, h, w)),
                            "observed": (("time", "y", "x"), prod.observed[part].reshape(n, h, w)),
                        }
                    ),
                    region,
                )
            if day_store is not None:
                day_store.write(_embedding_part("day", prod, slice(n, None), h, w), region)
