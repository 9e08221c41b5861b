"""The COGs of one Sentinel acquisition in the raw layout (the folder of one STAC item).

The synthetic world (``ecoembed.synth.write``) and the STAC acquisition
(``ecoembed.acquire``) both write through here, so the two raw layouts cannot drift
apart: the cube reads either without knowing which wrote it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from affine import Affine

from ecoembed.io import raster, sentinel
from ecoembed.io.stac import SCL_ASSET_KEY

# Sen2Cor SCL classes counted as cloud in eo:cloud_cover (medium, high, thin cirrus)
SCL_CLOUD_CLASSES = (8, 9, 10)

Asset = tuple[str, Affine, tuple[int, ...]]  # path, transform, shape: what make_*_item takes


def write_s2_cogs(
    folder: str | os.PathLike[str],
    bands: Mapping[str, np.ndarray],
    scl: np.ndarray,
    *,
    epsg: int,
    transform10: Affine,
    transform20: Affine,
    offset: float,
) -> tuple[dict[str, Asset], float]:
    """Every S2 band as uint16 DN (scale 1e-4 and the scene's ``offset`` in the metadata,
    10 m or 20 m as the band has it) and the 20 m SCL; returns the assets and the
    ``eo:cloud_cover`` (share of SCL cloud among the pixels with data, in %)."""
    folder = Path(folder)
    assets: dict[str, Asset] = {}
    for band in sentinel.S2_BANDS:
        data = bands[band.name]
        transform = transform10 if band.resolution_m == 10 else transform20
        path = folder / f"{band.name}.tif"
        raster.write_cog(
            path,
            data,
            crs=epsg,
            transform=transform,
            nodata=sentinel.S2_NODATA,
            scale=sentinel.S2_SCALE,
            offset=offset,
            band_names=[band.name],
        )
        assets[band.name] = (str(path), transform, data.shape)
    path = folder / f"{SCL_ASSET_KEY}.tif"
    raster.write_cog(
        path,
        scl,
        crs=epsg,
        transform=transform20,
        nodata=sentinel.S2_NODATA,
        band_names=[SCL_ASSET_KEY],
        overview_resampling="nearest",
    )
    assets[SCL_ASSET_KEY] = (str(path), transform20, scl.shape)
    seen = scl > 0
    cover = float(np.isin(scl[seen], SCL_CLOUD_CLASSES).mean() * 100.0) if seen.any() else 100.0
    return assets, round(cover, 2)


def write_s1_cogs(
    folder: str | os.PathLike[str],
    bands: Mapping[str, np.ndarray],
    *,
    epsg: int,
    transform: Affine,
) -> dict[str, Asset]:
    """Each polarisation (``vv``, ``vh``) as float32 linear gamma0, NaN = no data."""
    folder = Path(folder)
    assets: dict[str, Asset] = {}
    for key, data in bands.items():
        path = folder / f"{key}.tif"
        raster.write_cog(
            path,
            data,
            crs=epsg,
            transform=transform,
            nodata=float("nan"),
            band_names=[key.upper()],
        )
        assets[key] = (str(path), transform, data.shape)
    return assets
