"""Sentinel-1 RTC gamma0 assets to backscatter in dB on the tile grid."""

from __future__ import annotations

import numpy as np
import pystac
from rasterio.enums import Resampling
from rasterio.windows import Window

from ecoembed.cube.sentinel2 import require_assets
from ecoembed.io.grid import GridSpec
from ecoembed.io.raster import read_on_grid
from ecoembed.io.sentinel import S1_ASSET_KEYS


def linear_to_db(linear: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """10 log10 of positive, finite power; NaN elsewhere (never -inf)."""
    ok = valid & np.isfinite(linear) & (linear > 0)
    out = np.full(linear.shape, np.nan, np.float32)
    out[ok] = 10.0 * np.log10(linear[ok])
    return out


def read_s1_window(
    item: pystac.Item,
    grid: GridSpec,
    window: Window,
    resampling: Resampling,
    catalog: str,
) -> np.ndarray:
    """Backscatter (pol, h, w) in dB, float32, NaN outside the swath and on no data."""
    require_assets(item, S1_ASSET_KEYS, catalog)
    out = np.empty((len(S1_ASSET_KEYS), int(window.height), int(window.width)), np.float32)
    for k, key in enumerate(S1_ASSET_KEYS):
        linear, ok = read_on_grid(
            item.assets[key].href, grid, window, resampling=resampling, item=item.id
        )
        out[k] = linear_to_db(linear.astype(np.float32), ok)
    return out
