"""Sentinel-2 L2A assets to surface reflectance on the tile grid."""

from __future__ import annotations

import logging

import numpy as np
import pystac
from rasterio.enums import Resampling
from rasterio.windows import Window

from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec
from ecoembed.io.raster import asset_declaration, read_on_grid
from ecoembed.io.sentinel import BOA_OFFSET_APPLIED, S2_BAND_NAMES, l2a_dn_convention

log = logging.getLogger(__name__)


def scale_offset(item: pystac.Item, key: str) -> tuple[float, float]:
    """DN -> reflectance of one asset, decided as the acquisition decides it
    (:func:`ecoembed.io.sentinel.l2a_dn_convention`): a provider's "offset already applied"
    flag, then the asset's raster:bands, then the processing-baseline rule."""
    bands = item.assets[key].extra_fields.get("raster:bands") or []
    conv = l2a_dn_convention(item.properties, bands[0] if bands else None, item.datetime)
    if conv.rule != "raster:bands" and not conv.rule.startswith(BOA_OFFSET_APPLIED):
        log.warning(
            "item %s asset %s: no raster:bands scale/offset, using the processing-"
            "baseline rule, by %s (scale %g, offset %g)",
            item.id,
            key,
            conv.rule,
            conv.scale,
            conv.offset,
        )
    return conv.scale, conv.offset


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
