"""Sentinel-1 RTC gamma0 assets to backscatter in dB on the tile grid."""

from __future__ import annotations

import numpy as np
import pystac
from pystac.extensions.raster import RasterExtension
from rasterio.enums import Resampling
from rasterio.windows import Window
from scipy.ndimage import uniform_filter1d

from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec
from ecoembed.io.raster import asset_declaration, read_on_grid
from ecoembed.io.sentinel import S1_ASSET_KEYS


def linear_to_db(linear: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """10 log10 of positive, finite power; NaN elsewhere (never -inf)."""
    ok = valid & np.isfinite(linear) & (linear > 0)
    out = np.full(linear.shape, np.nan, np.float32)
    out[ok] = 10.0 * np.log10(linear[ok])
    return out


def temporal_multilook(db: np.ndarray, looks: int) -> np.ndarray:
    """Each acquisition averaged with its neighbours in time, in linear power; in dB again.

    ``db``: (time, pol, y, x) backscatter in dB, NaN where not observed. A centred mean of
    ``looks`` consecutive acquisitions (fewer at the ends; NaN neighbours skipped) cuts the
    speckle variance of a stable target by up to ``looks``, the temporal multilooking that
    the paper's preprocessing applies (a centred rolling mean of three acquisitions in
    linear power before dB). A pixel-date that was not observed stays NaN: neighbours never
    invent an acquisition. ``looks`` 1 returns the input unchanged.
    """
    if looks < 1 or looks % 2 == 0:
        raise ValueError(f"looks must be an odd number >= 1, got {looks}")
    if looks == 1:
        return db
    observed = np.isfinite(db)
    power = np.where(observed, np.power(np.float32(10.0), db / np.float32(10.0)), 0)
    # normalised convolution: the window's sum of observed power over its count of them
    window = {"size": looks, "axis": 0, "mode": "constant", "cval": 0.0}
    total = uniform_filter1d(power, **window)
    count = uniform_filter1d(observed.astype(np.float32), **window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return linear_to_db(total / count, observed)


def asset_in_db(item: pystac.Item, key: str) -> bool:
    """True when the asset's raster:bands unit says dB (some archives deliver dB, not the
    linear power of RTC products); linear otherwise."""
    if not RasterExtension.has_extension(item):
        return False
    bands = RasterExtension.ext(item.assets[key]).bands
    return bool(bands) and str(bands[0].unit or "").lower() == "db"


def read_s1_window(
    item: pystac.Item,
    grid: GridSpec,
    window: Window,
    resampling: Resampling,
    catalog: str,
) -> np.ndarray:
    """Backscatter (pol, h, w) in dB, float32, NaN outside the swath and on no data.

    A polarisation the item does not deliver (single-pol acquisitions, VV-only archives)
    is NaN throughout; an item with neither is an error, and so is an asset that is not
    what the item declares (CRS, grid, data type, nodata).
    """
    present = [k for k in S1_ASSET_KEYS if k in item.assets]
    if not present:
        raise InputDataError(
            catalog, f"item has none of the Sentinel-1 assets {list(S1_ASSET_KEYS)}", item=item.id
        )
    out = np.full((len(S1_ASSET_KEYS), int(window.height), int(window.width)), np.nan, np.float32)
    for k, key in enumerate(S1_ASSET_KEYS):
        if key not in present:
            continue
        values, ok = read_on_grid(
            item.assets[key].href,
            grid,
            window,
            resampling=resampling,
            item=item.id,
            declared=asset_declaration(item, key),
        )
        values = values.astype(np.float32)
        if asset_in_db(item, key):
            out[k] = np.where(ok & np.isfinite(values), values, np.nan)
        else:
            out[k] = linear_to_db(values, ok)
    return out
