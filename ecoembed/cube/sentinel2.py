"""Sentinel-2 L2A assets to surface reflectance on the tile grid."""

from __future__ import annotations

import logging

import numpy as np
import pystac
from pystac.extensions.raster import RasterExtension
from rasterio.enums import Resampling
from rasterio.windows import Window

from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec
from ecoembed.io.raster import asset_declaration, read_on_grid
from ecoembed.io.sentinel import S2_BAND_NAMES, S2_SCALE, l2a_offset

log = logging.getLogger(__name__)


def baseline_scale_offset(item: pystac.Item) -> tuple[float, float]:
    """The L2A DN convention of the item's processing baseline (or, lacking it, its date)."""
    return S2_SCALE, l2a_offset(item.properties.get("s2:processing_baseline"), item.datetime)


def scale_offset(item: pystac.Item, key: str) -> tuple[float, float]:
    """DN -> reflectance from the asset's raster:bands; the baseline rule when it is absent."""
    bands = (
        RasterExtension.ext(item.assets[key]).bands if RasterExtension.has_extension(item) else None
    )
    if bands and bands[0].scale is not None:
        return float(bands[0].scale), float(bands[0].offset or 0.0)
    scale, offset = baseline_scale_offset(item)
    log.warning(
        "item %s asset %s: no raster:bands scale/offset, using the processing-"
        "baseline rule (scale %g, offset %g)",
        item.id,
        key,
        scale,
        offset,
    )
    return scale, offset


def require_assets(item: pystac.Item, keys: tuple[str, ...], catalog: str) -> None:
    missing = [k for k in keys if k not in item.assets]
    if missing:
        raise InputDataError(catalog, f"item lacks the asset(s) {missing}", item=item.id)


def read_s2_window(
    item: pystac.Item,
    grid: GridSpec,
    window: Window,
    resampling: Resampling,
    catalog: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (band, h, w) float32, NaN where any band has no data, and that mask.

    Every asset must be what the item declares (CRS, grid, data type, nodata), or
    InputDataError: a float reflectance file read with the DN scaling would be wrong."""
    require_assets(item, (*S2_BAND_NAMES, "SCL"), catalog)
    out = np.empty((len(S2_BAND_NAMES), int(window.height), int(window.width)), np.float32)
    has_data = np.ones(out.shape[1:], bool)
    for k, band in enumerate(S2_BAND_NAMES):
        scale, offset = scale_offset(item, band)
        dn, ok = read_on_grid(
            item.assets[band].href,
            grid,
            window,
            resampling=resampling,
            item=item.id,
            declared=asset_declaration(item, band),
        )
        out[k] = dn.astype(np.float32) * np.float32(scale) + np.float32(offset)
        has_data &= ok & (dn > 0)
    out[:, ~has_data] = np.nan
    return out, has_data


def read_scl(item: pystac.Item, grid: GridSpec, window: Window) -> np.ndarray:
    """SCL on the grid by nearest neighbour (class codes must not be interpolated); 0 = no data."""
    scl, ok = read_on_grid(
        item.assets["SCL"].href,
        grid,
        window,
        resampling=Resampling.nearest,
        item=item.id,
        declared=asset_declaration(item, "SCL"),
    )
    return np.where(ok, scl, 0).astype(np.uint8)
