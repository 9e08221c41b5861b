"""Build one tile's datacube from the STAC catalog, window by window.

A template store is written first (metadata only: its arrays are lazy dask arrays that
are never computed, so nothing of tile size is ever allocated), then every window of the
tile is read from all acquisitions and written into its region. Peak memory depends on
the window and the number of acquisitions, not on the tile size. The store is assembled
under a temporary name and renamed when complete, so a failed job leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pystac
import rasterio
import xarray as xr
from rasterio.enums import Resampling
from rasterio.windows import Window
from tqdm import tqdm

from ecoembed.cube.readers import READERS, WindowRead
from ecoembed.io import stac
from ecoembed.io.atomic import check_replace
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec
from ecoembed.io.sensors import SENSORS
from ecoembed.io.zarrio import (
    RegionWriter,
    is_ecoembed_product,
    lazy_full,
    variable_length_strings,
)

log = logging.getLogger(__name__)
CHUNK_PX = 64
CHUNK_TIME = 32
# GDAL's block cache defaults to 5 % of the machine's memory; each block is read about once
# per window here, so a large cache only inflates the footprint.
GDAL_CACHE_MB = 128


def _utc_naive(items: list[pystac.Item]) -> np.ndarray:
    return np.array([i.datetime.replace(tzinfo=None) for i in items], dtype="datetime64[ns]")


def tile_inputs(
    catalog_path: str | Path, tile: str
) -> tuple[GridSpec, dict[str, list[pystac.Item]]]:
    """The tile's grid and each sensor's items (registry order), checked before anything
    is read."""
    items = stac.read_catalog_items(catalog_path, tile=tile)
    grids = [i for i in items if i.collection_id == stac.TILES_COLLECTION_ID]
    if len(grids) != 1:
        raise InputDataError(
            catalog_path,
            f"expected one grid item for tile {tile!r} in "
            f"collection {stac.TILES_COLLECTION_ID!r}, found {len(grids)}",
        )
    grid = stac.item_grid(grids[0], catalog_path)
    if not grid.is_north_up():
        raise InputDataError(catalog_path, "tile grid is not north-up", item=tile)
    series = {
        s.name: [i for i in items if i.collection_id == s.collection] for s in SENSORS.values()
    }
    for name, group in series.items():
        if not group:
            raise InputDataError(catalog_path, f"no {SENSORS[name].title} item for tile {tile!r}")
    for group in series.values():
        for item in group:
            stac.item_epsg(item, catalog_path)  # every item must carry projection information
            if item.datetime is None:
                raise InputDataError(catalog_path, "item has no datetime", item=item.id)
    return grid, series


def cube_template(
    grid: GridSpec,
    series: dict[str, list[pystac.Item]],
    attrs: dict,
    cube_cfg: dict,
) -> xr.Dataset:
    """The cube's structure; the data variables are lazy (dask) and never computed.

    Per sensor (registry order): its time and channel coordinates, its values (time,
    channel, y, x) and valid mask; then its per-date variables and its item ids."""
    h, w = grid.shape
    coords: dict[str, tuple[str, np.ndarray]] = {}
    for s in SENSORS.values():
        coords[s.time_dim] = (s.time_dim, _utc_naive(series[s.name]))
        coords[s.channel_dim] = (s.channel_dim, np.array(s.channels, dtype=object))
    coords["y"] = ("y", grid.y_coords())
    coords["x"] = ("x", grid.x_coords())
    ds = xr.Dataset(coords=coords)
    for s in SENSORS.values():
        reader, n = READERS[s.name], len(series[s.name])
        ds[s.name] = (
            (s.time_dim, s.channel_dim, "y", "x"),
            lazy_full(
                np.float32(np.nan), (n, s.n_channels, h, w), (CHUNK_TIME, -1, CHUNK_PX, CHUNK_PX)
            ),
            reader.attrs(cube_cfg),
        )
        if s.valid_var:
            ds[s.valid_var] = (
                (s.time_dim, "y", "x"),
                lazy_full(False, (n, h, w), (CHUNK_TIME, CHUNK_PX, CHUNK_PX)),
                reader.valid_attrs or {},
            )
    for s in SENSORS.values():
        for name, values in READERS[s.name].per_date(series[s.name]).items():
            ds[name] = ((s.time_dim,), values)
    for s in SENSORS.values():
        ds[f"{s.name}_item"] = ((s.time_dim,), np.array([i.id for i in series[s.name]], object))
    ds.attrs.update(attrs)
    return ds.rio.write_crs(grid.epsg).rio.write_transform(grid.transform)


def cube_encoding(ds: xr.Dataset) -> dict:
    """Chunks of 64 x 64 pixels and 32 dates: a window and a pixel's series both read few."""
    enc = {}
    names = [n for s in SENSORS.values() for n in (s.name, s.valid_var) if n]
    for name in names:
        var = ds[name]
        whole = {s.channel_dim: var.sizes.get(s.channel_dim, 1) for s in SENSORS.values()}
        chunks = tuple({**whole, "y": CHUNK_PX, "x": CHUNK_PX}.get(d, CHUNK_TIME) for d in var.dims)
        enc[name] = {"chunks": tuple(min(c, n) for c, n in zip(chunks, var.shape, strict=True))}
    return enc


def _halo_window(window: Window, grid: GridSpec, halo: int) -> tuple[Window, tuple[slice, slice]]:
    """``window`` grown by ``halo`` pixels (clipped to the grid) and where it sits inside."""
    r0 = max(int(window.row_off) - halo, 0)
    c0 = max(int(window.col_off) - halo, 0)
    r1 = min(int(window.row_off + window.height) + halo, grid.height)
    c1 = min(int(window.col_off + window.width) + halo, grid.width)
    inner = (
        slice(int(window.row_off) - r0, int(window.row_off) - r0 + int(window.height)),
        slice(int(window.col_off) - c0, int(window.col_off) - c0 + int(window.width)),
    )
    return Window(c0, r0, c1 - c0, r1 - r0), inner


def window_dataset(
    grid: GridSpec,
    window: Window,
    series: dict[str, list[pystac.Item]],
    cfg: dict,
    catalog: str,
    pool: ThreadPoolExecutor | None = None,
) -> xr.Dataset:
    """All acquisitions of one window: the values of one region of the cube.

    Acquisitions are read concurrently when a thread pool is given: GDAL decompresses and
    warps with the GIL released, and every read opens its own dataset.
    """
    h, w = int(window.height), int(window.width)
    halo_win, inner = _halo_window(window, grid, int(cfg["dilation_px"]))
    at = WindowRead(grid, window, halo_win, inner, Resampling[cfg["resampling"]], cfg, catalog)
    values = {
        s.name: np.empty((len(series[s.name]), s.n_channels, h, w), np.float32)
        for s in SENSORS.values()
    }
    valid = {
        s.name: np.empty((len(series[s.name]), h, w), bool) for s in SENSORS.values() if s.valid_var
    }

    def read(name: str, t: int) -> None:
        values[name][t], mask = READERS[name].read(series[name][t], at)
        if name in valid:
            valid[name][t] = mask

    jobs = [(name, t) for name, items in series.items() for t in range(len(items))]
    if pool is None:
        for name, t in jobs:
            read(name, t)
    else:  # list() re-raises the first error (an InputDataError naming the asset)
        list(pool.map(lambda job: read(*job), jobs))
    out = {}
    for s in SENSORS.values():
        dims = (s.time_dim, s.channel_dim, "y", "x")
        out[s.name] = (dims, READERS[s.name].series(values[s.name], cfg))
        if s.valid_var:
            out[s.valid_var] = ((s.time_dim, "y", "x"), valid[s.name])
    return xr.Dataset(out)


def build_cube(
    catalog_path: str | Path,
    tile: str,
    out_path: str | Path,
    *,
    cube_cfg: dict,
    provenance: dict | None = None,
    progress: bool = True,
    threads: int = 1,
) -> None:
    """Write ``out_path`` (Zarr): the tile's S2 reflectance, clear-view mask and S1 dB.

    An existing ``out_path`` is replaced only when it is an ecoembed cube; anything else
    there is refused (OutputExistsError) before any input is read."""
    catalog = str(catalog_path)
    replace = partial(is_ecoembed_product, kind="cube")
    check_replace(out_path, replace)
    grid, series = tile_inputs(catalog, tile)
    log.info(
        "tile %s: %d x %d pixels, %s acquisitions",
        tile,
        grid.height,
        grid.width,
        " and ".join(f"{len(series[s.name])} {s.title}" for s in SENSORS.values()),
    )
    attrs = {
        "title": f"ecoembed analysis-ready cube of {tile}",
        "tile": tile,
        **{
            k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
            for k, v in (provenance or {}).items()
        },
    }
    template = variable_length_strings(cube_template(grid, series, attrs, cube_cfg))
    encoding = cube_encoding(template)
    windows = list(grid.windows(int(cube_cfg["window_px"])))
    with (
        RegionWriter(out_path, template, encoding, replace=replace) as store,
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB),
        ThreadPoolExecutor(max(1, threads)) as pool,
    ):
        for window in tqdm(windows, desc=f"{tile} cube windows", disable=not progress):
            part = window_dataset(
                grid, window, series, cube_cfg, catalog, pool if threads > 1 else None
            )
            rows = slice(int(window.row_off), int(window.row_off + window.height))
            cols = slice(int(window.col_off), int(window.col_off + window.width))
            store.write(part, {"y": rows, "x": cols})
