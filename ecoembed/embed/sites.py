"""Daily embedding series at flux towers: what the GPP evaluation reads.

For every tower inside a tile, three daily series of its footprint:

* ``fused``: the fusion model's embedding of every calendar day (the daily product: the
  day's own clear S2 view where there is one, otherwise the S2 context and S1);
* ``fused_interp``: the same embedding taken only on the days the pixel had its own clear
  S2 view, interpolated linearly in time between them (held before the first and after
  the last), as the authors' code fills the days between clear views. Beside ``fused`` it
  shows what the model's own cloud-free filling adds over interpolating its clear days;
* ``s2``: the S2-only encoder's codes on the pixel's clear dates, interpolated linearly
  to every day (held constant before the first and after the last clear date);
* ``s1``: the S1-only encoder's codes on every S1 acquisition, interpolated the same way.

Footprint weights: an isotropic Gaussian around the tower pixel with sigma = radius / 3,
cut at ``radius_m``, evaluated on every ``stride_px``-th pixel (rows and columns) and
normalised to sum to one over the pixels that have a value that day. Footprints reaching
beyond the tile edge keep the pixels inside it. A tower outside every tile is reported by
name (log and site table) and left out.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from rasterio.warp import transform as warp_transform
from tqdm import tqdm

from ecoembed.embed.dense import daily_targets, embed_window
from ecoembed.embed.export import check_cube, daily_range, read_window
from ecoembed.embed.model import EmbeddingModel, load_embedding_model
from ecoembed.io.atomic import atomic_path
from ecoembed.io.fluxnet import read_site_table
from ecoembed.io.sensors import SENSOR_NAMES
from ecoembed.io.timeaxis import day_dates
from ecoembed.io.zarrio import open_zarr

log = logging.getLogger(__name__)
# the tower series: the fused product, its clear days interpolated, then each encoder
SOURCES = ("fused", "fused_interp", *SENSOR_NAMES)


@dataclass(frozen=True)
class SitePixel:
    site: str
    tile: str
    row: int
    col: int


def locate_sites(
    sites: pd.DataFrame, cubes: dict[str, xr.Dataset]
) -> tuple[list[SitePixel], pd.DataFrame]:
    """The tile pixel of each tower, and a table with every site's status."""
    found, rows = [], []
    for rec in sites.itertuples(index=False):
        site = str(rec.SITE_ID)
        hit = None
        for tile, cube in cubes.items():
            xs, ys = warp_transform(
                "EPSG:4326", cube.rio.crs, [float(rec.LOCATION_LONG)], [float(rec.LOCATION_LAT)]
            )
            col, row = ~cube.rio.transform() @ (xs[0], ys[0])
            r, c = int(np.floor(row)), int(np.floor(col))
            if 0 <= r < cube.sizes["y"] and 0 <= c < cube.sizes["x"]:
                hit = SitePixel(site, tile, r, c)
                break
        if hit is None:
            log.warning(
                "site %s (%s, %s) lies outside every tile: left out",
                site,
                rec.LOCATION_LAT,
                rec.LOCATION_LONG,
            )
            rows.append({"site": site, "tile": "", "row": -1, "col": -1, "status": "outside"})
        else:
            found.append(hit)
            rows.append(
                {"site": site, "tile": hit.tile, "row": hit.row, "col": hit.col, "status": "inside"}
            )
    return found, pd.DataFrame(rows)


def site_latitude(cube: xr.Dataset, site: SitePixel) -> float:
    """Latitude (degrees north) of the centre of the tower's pixel."""
    x, y = cube.rio.transform() @ (site.col + 0.5, site.row + 0.5)
    _, lat = warp_transform(cube.rio.crs, "EPSG:4326", [x], [y])
    return float(lat[0])


def footprint(
    radius_m: float, resolution_m: float, stride_px: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel offsets (rows, cols) and Gaussian weights of the footprint (see module doc)."""
    r = int(np.floor(radius_m / resolution_m))
    off = np.arange(-r, r + 1, stride_px)
    off = off - off[np.argmin(np.abs(off))]  # the tower pixel is always sampled
    off = off[np.abs(off) <= r]
    dr, dc = np.meshgrid(off, off, indexing="ij")
    d2 = (dr.ravel() ** 2 + dc.ravel() ** 2) * resolution_m**2
    keep = d2 <= radius_m**2
    sigma = radius_m / 3.0
    w = np.exp(-0.5 * d2[keep] / sigma**2)
    return dr.ravel()[keep], dc.ravel()[keep], w / w.sum()


def weighted_series(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(D, K, P) with NaN where a pixel has no value -> (D, K), weights renormalised."""
    ok = np.isfinite(values)
    w = np.where(ok, weights, 0.0)
    total = w.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (np.nan_to_num(values) * w).sum(axis=2) / total, np.nan)


def interpolate_daily(codes: np.ndarray, have: np.ndarray, days: np.ndarray, to: np.ndarray):
    """Codes (T, P, K) known where ``have`` (T, P) -> (D, K, P) linear in time, NaN if none."""
    out = np.full((to.size, codes.shape[2], codes.shape[1]), np.nan, np.float32)
    for p in range(codes.shape[1]):
        t = np.flatnonzero(have[:, p])
        if t.size == 0:
            continue
        for k in range(codes.shape[2]):
            out[:, k, p] = np.interp(to, days[t], codes[t, p, k])
    return out


@dataclass(frozen=True)
class SiteFootprint:
    """A tower's footprint pixels inside its tile: offsets from the tower pixel, weights."""

    dr: np.ndarray
    dc: np.ndarray
    weights: np.ndarray
    reach: int  # the footprint fits in the square of side 2 * reach + 1 around the tower


def site_footprint(
    cube: xr.Dataset, site: SitePixel, *, radius_m: float, stride_px: int
) -> SiteFootprint:
    """The footprint of :func:`footprint` on the cube's grid, cut to the tile."""
    res = float(abs(cube.rio.transform().a))
    dr, dc, w = footprint(radius_m, res, stride_px)
    reach = int(max(np.abs(dr).max(), np.abs(dc).max()))
    inside = (
        (site.row + dr >= 0)
        & (site.row + dr < cube.sizes["y"])
        & (site.col + dc >= 0)
        & (site.col + dc < cube.sizes["x"])
    )
    return SiteFootprint(dr[inside], dc[inside], w[inside], reach)


def site_frames(
    model: EmbeddingModel,
    cube: xr.Dataset,
    site: SitePixel,
    *,
    radius_m: float,
    stride_px: int,
) -> pd.DataFrame:
    """The daily footprint series of one tower (long table, one row per day and source)."""
    fp = site_footprint(cube, site, radius_m=radius_m, stride_px=stride_px)
    reach, w = fp.reach, fp.weights
    rows = slice(site.row - reach, site.row + reach + 1)
    cols = slice(site.col - reach, site.col + reach + 1)
    size = 2 * reach + 1
    pixels = (fp.dr + reach) * size + (fp.dc + reach)
    series = read_window(cube, model, rows, cols)
    targets = daily_targets(series.s2_days, *daily_range(cube))
    prod = embed_window(model, series, targets, pixels=pixels, decode=False, keep_codes=True)
    out = {"fused": (weighted_series(prod.embedding, w), prod.observed.astype(float) @ w)}
    clear_days = interpolate_daily(
        prod.embedding.transpose(0, 2, 1), prod.observed, targets.days, targets.days
    )
    out["fused_interp"] = (weighted_series(clear_days, w), out["fused"][1])
    daily2 = interpolate_daily(*prod.codes["s2"], series.s2_days, targets.days)
    daily1 = interpolate_daily(*prod.codes["s1"], series.s1_days, targets.days)
    out["s2"] = (weighted_series(daily2, w), out["fused"][1])
    out["s1"] = (weighted_series(daily1, w), np.full(len(targets), np.nan))
    dates = pd.DatetimeIndex(day_dates(targets.days))
    frames = []
    for source in SOURCES:
        values, observed = out[source]
        df = pd.DataFrame(values, columns=[f"e{k}" for k in range(values.shape[1])])
        df.insert(0, "observed_fraction", observed)
        df.insert(0, "source", source)
        df.insert(0, "date", dates)
        df.insert(0, "tile", site.tile)
        df.insert(0, "site", site.site)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def extract_site_embeddings(
    cube_paths: dict[str, str | Path],
    checkpoint: str | Path,
    sites_path: str | Path,
    *,
    out_path: str | Path,
    table_path: str | Path,
    radius_m: float = 300.0,
    stride_px: int = 3,
    provenance: dict | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Write the towers' daily series (parquet) and the site table (CSV); see module doc."""
    model = load_embedding_model(checkpoint, device)
    cubes = {tile: open_zarr(p) for tile, p in cube_paths.items()}
    for tile, cube in cubes.items():
        check_cube(cube, model, cube_paths[tile])
    located, table = locate_sites(read_site_table(sites_path), cubes)
    frames = [
        site_frames(model, cubes[s.tile], s, radius_m=radius_m, stride_px=stride_px)
        for s in tqdm(located, desc="site embeddings", unit="site", disable=not progress)
    ]
    df = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["site", "tile", "date", "source", "observed_fraction"])
    )
    df["source"] = df["source"].astype(pd.CategoricalDtype(SOURCES))
    df.attrs = {
        "footprint": f"Gaussian, sigma {radius_m / 3:.0f} m, cut at {radius_m:.0f} m, "
        f"sampled every {stride_px} px, weights renormalised over pixels with a value",
        "model": json.dumps(model.provenance, sort_keys=True, default=str),
        "provenance": json.dumps(provenance or {}, sort_keys=True, default=str),
        "sites_outside": ",".join(table.loc[table["status"] == "outside", "site"]),
    }
    with atomic_path(out_path, replace="any") as tmp:
        df.to_parquet(tmp, index=False)
    with atomic_path(table_path, replace="any") as tmp:
        table.to_csv(tmp, index=False)
    return df
