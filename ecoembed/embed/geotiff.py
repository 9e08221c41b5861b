"""Chosen dates of an exported embedding store as files a GIS opens: one Cloud-Optimized
GeoTIFF per date (one band per embedding dimension) and a STAC catalog over them.

By default the values are quantised to int8, as AlphaEarth and TESSERA distribute theirs:
per dimension one scale and one offset for the whole store (so every date decodes the same
way), value = DN * scale + offset, DN -128 = no data. The scale and offset sit in each
GeoTIFF band (GDAL scale/offset, which rasterio and QGIS apply) and in the items'
``raster:bands``; the de-quantisation error of each written date is reported. A float32
copy (``quantise=False``) keeps the store's values exactly.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import xarray as xr
from tqdm import tqdm

from ecoembed.embed.export import cube_grid
from ecoembed.io import stac
from ecoembed.io.errors import InputDataError
from ecoembed.io.raster import write_cog
from ecoembed.io.zarrio import open_zarr, product_kind

log = logging.getLogger(__name__)

INT8_NODATA = -128
INT8_MAX = 127  # DNs -127 .. 127 carry values: symmetric around the offset


@dataclass(frozen=True)
class Quantisation:
    """Per-dimension int8 coding: value = DN * scale + offset, DN in -127 .. 127."""

    scale: np.ndarray  # (dim,)
    offset: np.ndarray  # (dim,)

    @classmethod
    def spanning(cls, lo: np.ndarray, hi: np.ndarray) -> Quantisation:
        """The coding whose DNs -127 and 127 fall on ``lo`` and ``hi`` of each dimension."""
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError("cannot quantise: a dimension has no finite value")
        half = (hi - lo) / 2.0
        scale = np.where(half > 0, half / INT8_MAX, 1.0)  # a constant dimension: any scale
        return cls(scale=scale, offset=(hi + lo) / 2.0)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """(dim, ...) floats -> int8 DNs; NaN -> :data:`INT8_NODATA`."""
        shape = (-1,) + (1,) * (values.ndim - 1)
        dn = np.rint((values - self.offset.reshape(shape)) / self.scale.reshape(shape))
        dn = np.clip(dn, -INT8_MAX, INT8_MAX)  # NaN stays NaN until the next line
        return np.where(np.isnan(values), INT8_NODATA, dn).astype(np.int8)

    def decode(self, dn: np.ndarray) -> np.ndarray:
        """int8 DNs (dim, ...) -> float32 values, NaN where :data:`INT8_NODATA`."""
        shape = (-1,) + (1,) * (dn.ndim - 1)
        values = dn * self.scale.reshape(shape) + self.offset.reshape(shape)
        return np.where(dn == INT8_NODATA, np.nan, values).astype(np.float32)


def store_quantisation(store: xr.Dataset) -> Quantisation:
    """The coding spanning each dimension's range over the whole store, read one date at a
    time (memory of one date, whatever the series' length)."""
    emb = store["embedding"]
    time_dim = emb.dims[0]
    lo = np.full(emb.sizes["dim"], np.inf)
    hi = np.full(emb.sizes["dim"], -np.inf)
    for t in range(emb.sizes[time_dim]):
        values = emb.isel({time_dim: t}).values
        if np.isfinite(values).any():
            lo = np.fmin(lo, np.nanmin(values, axis=(1, 2)))
            hi = np.fmax(hi, np.nanmax(values, axis=(1, 2)))
    return Quantisation.spanning(lo, hi)


def chosen_dates(
    times: pd.DatetimeIndex, start: str | None = None, end: str | None = None
) -> np.ndarray:
    """Indices of the store's dates from ``start`` to ``end`` (ISO dates, both included;
    either may be None)."""
    days = times.normalize()
    keep = np.ones(times.size, bool)
    if start is not None:
        keep &= days >= pd.Timestamp(start)
    if end is not None:
        keep &= days <= pd.Timestamp(end)
    return np.flatnonzero(keep)


def write_embedding_geotiffs(
    store_path: str | Path,
    out_dir: str | Path,
    *,
    start: str | None = None,
    end: str | None = None,
    quantise: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Write ``out_dir``: ``<tile>_<YYYYMMDDTHHMMSS>.tif`` per chosen date and ``catalog.json``
    (a STAC catalog with one collection and one item per date).

    Returns one row per date: the file, and with ``quantise`` the de-quantisation error over
    the date's pixels with a value (largest absolute and root mean square; at most half a
    scale step by construction). ``out_dir`` must not exist: it is assembled under a
    temporary name and appears only when complete.
    """
    store_path, out_dir = Path(store_path), Path(out_dir)
    store = open_zarr(store_path)
    if product_kind(store_path) not in ("embeddings", "daily") or "embedding" not in store:
        raise InputDataError(store_path, "not an ecoembed embeddings or daily store")
    if out_dir.exists():
        raise FileExistsError(f"{out_dir}: exists; remove it or choose another folder")
    emb = store["embedding"]
    time_dim = emb.dims[0]
    times = pd.DatetimeIndex(store[time_dim].values)
    index = chosen_dates(times, start, end)
    if index.size == 0:
        raise ValueError(
            f"{store_path}: no date from {start} to {end} (the store has "
            f"{times[0]:%Y-%m-%d} .. {times[-1]:%Y-%m-%d})"
        )
    grid, tile = cube_grid(store), str(store.attrs.get("tile", store_path.stem))
    coding = store_quantisation(store) if quantise else None
    dims = emb.sizes["dim"]
    # what made the values (the checkpoint's hashes, the run's config hash), in every file
    provenance = {"ecoembed:source": store_path.name}
    provenance |= {
        f"ecoembed:{k}": store.attrs[k] for k in ("model", "config_hash") if k in store.attrs
    }
    tags = {k.replace(":", "_"): v for k, v in provenance.items()}  # GDAL keys take no ":"
    tmp = out_dir.with_name(f".{out_dir.name}-partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows, items = [], []
    try:
        for t in tqdm(index, desc=f"{tile} GeoTIFFs", disable=not progress):
            when = times[t]
            item_id = f"{tile}_{when:%Y%m%dT%H%M%S}"
            name = f"{item_id}.tif"
            values = emb.isel({time_dim: int(t)}).values.astype(np.float32)
            row = {"date": when, "file": name}
            if coding is not None:
                dn = coding.encode(values)
                err = coding.decode(dn) - values
                err = err[np.isfinite(values)]
                row["max_abs_error"] = float(np.abs(err).max()) if err.size else np.nan
                row["rmse"] = float(np.sqrt(np.mean(err**2))) if err.size else np.nan
                write_cog(
                    tmp / name,
                    dn,
                    crs=grid.crs,
                    transform=grid.transform,
                    nodata=INT8_NODATA,
                    scale=coding.scale.tolist(),
                    offset=coding.offset.tolist(),
                    band_names=[f"dim{d}" for d in range(dims)],
                    tags=tags,
                    overview_resampling="nearest",
                )
            else:
                write_cog(
                    tmp / name,
                    values,
                    crs=grid.crs,
                    transform=grid.transform,
                    nodata=float("nan"),
                    band_names=[f"dim{d}" for d in range(dims)],
                    tags=tags,
                )
            items.append(
                stac.make_embedding_item(
                    item_id,
                    tile=tile,
                    datetime=when.to_pydatetime(),
                    grid=grid,
                    href=str(tmp / name),  # made relative when the catalog is saved
                    dims=dims,
                    data_type="int8" if coding is not None else "float32",
                    nodata=INT8_NODATA if coding is not None else "nan",
                    scales=None if coding is None else coding.scale,
                    offsets=None if coding is None else coding.offset,
                    properties=provenance,
                )
            )
            rows.append(row)
        _write_catalog(items, tmp, tile)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %d dates of %s to %s", len(rows), store_path, out_dir)
    return pd.DataFrame(rows)


def _write_catalog(items: list[pystac.Item], folder: Path, tile: str) -> None:
    """A self-contained STAC catalog (relative links) beside the GeoTIFFs."""
    collection = pystac.Collection(
        id=stac.EMBEDDINGS_COLLECTION_ID,
        description=f"ecoembed fused embeddings of tile {tile}, one item per date",
        extent=pystac.Extent(
            pystac.SpatialExtent([items[0].bbox]),
            pystac.TemporalExtent([[items[0].datetime, items[-1].datetime]]),
        ),
        license="proprietary",
    )
    for item in items:
        collection.add_item(item)
    catalog = pystac.Catalog(id=f"ecoembed-{tile}", description=f"ecoembed products of {tile}")
    catalog.add_child(collection)
    catalog.normalize_hrefs(folder.as_posix() + "/")  # a folder, whatever its name looks like
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
