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

from ecoembed.cube.masking import s2_valid_mask
from ecoembed.cube.sentinel1 import read_s1_window, temporal_multilook
from ecoembed.cube.sentinel2 import read_s2_window, read_scl
from ecoembed.io import stac
from ecoembed.io.atomic import check_replace
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec
from ecoembed.io.sentinel import S1_POLARISATIONS, S2_BAND_NAMES
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
) -> tuple[GridSpec, list[pystac.Item], list[pystac.Item]]:
    """The tile's grid and its S2 and S1 items, checked before anything is read."""
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
    s2 = [i for i in items if i.collection_id == stac.S2_COLLECTION_ID]
    s1 = [i for i in items if i.collection_id == stac.S1_COLLECTION_ID]
    for kind, group in (("Sentinel-2", s2), ("Sentinel-1", s1)):
        if not group:
            raise InputDataError(catalog_path, f"no {kind} item for tile {tile!r}")
    for item in s2 + s1:
        stac.item_epsg(item, catalog_path)  # every item must carry projection information
        if item.datetime is None:
            raise InputDataError(catalog_path, "item has no datetime", item=item.id)
    return grid, s2, s1


def cube_template(
    grid: GridSpec,
    s2: list[pystac.Item],
    s1: list[pystac.Item],
    attrs: dict,
    s1_temporal_looks: int = 1,
) -> xr.Dataset:
    """The cube's structure; the data variables are lazy (dask) and never computed."""
    nt, n1, (h, w) = len(s2), len(s1), grid.shape
    ds = xr.Dataset(
        coords={
            "time": ("time", _utc_naive(s2)),
            "band": ("band", np.array(S2_BAND_NAMES, dtype=object)),
            "y": ("y", grid.y_coords()),
            "x": ("x", grid.x_coords()),
            "time_s1": ("time_s1", _utc_naive(s1)),
            "pol": ("pol", np.array(S1_POLARISATIONS, dtype=object)),
        }
    )
    ds["s2"] = (
        ("time", "band", "y", "x"),
        lazy_full(
            np.float32(np.nan), (nt, len(S2_BAND_NAMES), h, w), (CHUNK_TIME, -1, CHUNK_PX, CHUNK_PX)
        ),
        {"units": "1", "long_name": "surface reflectance (Sentinel-2 L2A)"},
    )
    ds["s2_valid"] = (
        ("time", "y", "x"),
        lazy_full(False, (nt, h, w), (CHUNK_TIME, CHUNK_PX, CHUNK_PX)),
        {
            "description": "clear view: valid SCL class, away from dilated "
            "clouds/shadows, all bands with data"
        },
    )
    ds["s1"] = (
        ("time_s1", "pol", "y", "x"),
        lazy_full(
            np.float32(np.nan),
            (n1, len(S1_POLARISATIONS), h, w),
            (CHUNK_TIME, -1, CHUNK_PX, CHUNK_PX),
        ),
        {
            "units": "dB",
            "long_name": "backscatter gamma0 (Sentinel-1 RTC)",
            "temporal_looks": int(s1_temporal_looks),
        },
    )
    ds["orbit"] = (
        ("time_s1",),
        np.array([i.properties.get("sat:orbit_state", "unknown") for i in s1], dtype=object),
    )
    ds["relative_orbit"] = (
        ("time_s1",),
        np.array([int(i.properties.get("sat:relative_orbit", -1)) for i in s1], np.int32),
    )
    ds["s2_item"] = (("time",), np.array([i.id for i in s2], dtype=object))
    ds["s1_item"] = (("time_s1",), np.array([i.id for i in s1], dtype=object))
    ds.attrs.update(attrs)
    return ds.rio.write_crs(grid.epsg).rio.write_transform(grid.transform)


def cube_encoding(ds: xr.Dataset) -> dict:
    """Chunks of 64 x 64 pixels and 32 dates: a window and a pixel's series both read few."""
    enc = {}
    for name in ("s2", "s2_valid", "s1"):
        var = ds[name]
        chunks = tuple(
            {
                "band": var.sizes.get("band", 1),
                "pol": var.sizes.get("pol", 1),
                "y": CHUNK_PX,
                "x": CHUNK_PX,
            }.get(d, CHUNK_TIME)
            for d in var.dims
        )
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
    s2: list[pystac.Item],
    s1: list[pystac.Item],
    cfg: dict,
    catalog: str,
    pool: ThreadPoolExecutor | None = None,
) -> xr.Dataset:
    """All acquisitions of one window: the values of one region of the cube.

    Acquisitions are read concurrently when a thread pool is given: GDAL decompresses and
    warps with the GIL released, and every read opens its own dataset.
    """
    resampling = Resampling[cfg["resampling"]]
    h, w = int(window.height), int(window.width)
    refl = np.empty((len(s2), len(S2_BAND_NAMES), h, w), np.float32)
    valid = np.empty((len(s2), h, w), bool)
    back = np.empty((len(s1), len(S1_POLARISATIONS), h, w), np.float32)
    halo_win, inner = _halo_window(window, grid, int(cfg["dilation_px"]))

    def s2_date(t: int) -> None:
        refl[t], has_data = read_s2_window(s2[t], grid, window, resampling, catalog)
        clear = s2_valid_mask(
            read_scl(s2[t], grid, halo_win),
            valid_classes=cfg["s2_valid_scl"],
            dilate_classes=cfg["s2_dilate_scl"],
            dilation_px=int(cfg["dilation_px"]),
        )
        valid[t] = clear[inner] & has_data

    def s1_date(t: int) -> None:
        back[t] = read_s1_window(s1[t], grid, window, resampling, catalog)

    jobs = [(s2_date, t) for t in range(len(s2))] + [(s1_date, t) for t in range(len(s1))]
    if pool is None:
        for fn, t in jobs:
            fn(t)
    else:  # list() re-raises the first error (an InputDataError naming the asset)
        list(pool.map(lambda job: job[0](job[1]), jobs))
    back = temporal_multilook(back, int(cfg["s1_temporal_looks"]))
    return xr.Dataset(
        {
            "s2": (("time", "band", "y", "x"), refl),
            "s2_valid": (("time", "y", "x"), valid),
            "s1": (("time_s1", "pol", "y", "x"), back),
        }
    )


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
    grid, s2, s1 = tile_inputs(catalog, tile)
    log.info(
        "tile %s: %d x %d pixels, %d Sentinel-2 and %d Sentinel-1 acquisitions",
        tile,
        grid.height,
        grid.width,
        len(s2),
        len(s1),
    )
    attrs = {
        "title": f"ecoembed analysis-ready cube of {tile}",
        "tile": tile,
        **{
            k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
            for k, v in (provenance or {}).items()
        },
    }
    template = variable_length_strings(
        cube_template(grid, s2, s1, attrs, int(cube_cfg["s1_temporal_looks"]))
    )
    encoding = cube_encoding(template)
    windows = list(grid.windows(int(cube_cfg["window_px"])))
    with (
        RegionWriter(out_path, template, encoding, replace=replace) as store,
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB),
        ThreadPoolExecutor(max(1, threads)) as pool,
    ):
        for window in tqdm(windows, desc=f"{tile} cube windows", disable=not progress):
            part = window_dataset(
                grid, window, s2, s1, cube_cfg, catalog, pool if threads > 1 else None
            )
            rows = slice(int(window.row_off), int(window.row_off + window.height))
            cols = slice(int(window.col_off), int(window.col_off + window.width))
            store.write(part, {"y": rows, "x": cols})
