"""Neighbouring cubes as the source of a tile's halo, so that mosaicked tiles have no seams.

A pixel near a tile's edge is embedded from a neighbourhood that reaches beyond the
tile. Without neighbours that part is missing (NaN, seen as cloud), so two adjacent
tiles embed their shared border differently from one tile covering both, and a mosaic
shows seams (as users of peer products report). Given the cubes of the tiles around it,
the export reads the part of each window's halo that lies outside the tile from them
instead; inside the tile its own cube always rules.

A neighbour must lie on the tile's pixel grid (same CRS and resolution, origin a whole
number of pixels away). Its acquisitions are matched to the tile's by time: the same
overpass (within ``SAME_OVERPASS``) counts as the same acquisition, which holds for
adjacent Sentinel-2 tiles of one datatake and Sentinel-1 frames of one slice; a date
the neighbour lacks is missing there, as a cloud would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ecoembed.io.errors import InputDataError
from ecoembed.io.sensors import SENSORS

SAME_OVERPASS = np.timedelta64(1, "h")


@dataclass(frozen=True)
class Neighbour:
    """A neighbouring cube placed on the tile's grid.

    row_off/col_off: the neighbour's first pixel in the tile's pixel coordinates;
    time_index: per time dimension, for each of the tile's acquisitions the neighbour's
    acquisition of the same overpass, or -1.
    """

    cube: xr.Dataset
    row_off: int
    col_off: int
    time_index: dict[str, np.ndarray]


def grid_offset(tile: xr.Dataset, other: xr.Dataset, path: str | Path) -> tuple[int, int]:
    """(rows, cols) from the tile's first pixel to ``other``'s; InputDataError unless
    ``other`` lies on the tile's pixel grid."""
    if other.rio.crs != tile.rio.crs:
        raise InputDataError(
            path, f"neighbour cube is in {other.rio.crs}, the tile in {tile.rio.crs}"
        )
    a, b = tile.rio.transform(), other.rio.transform()
    if not np.allclose([a.a, a.b, a.d, a.e], [b.a, b.b, b.d, b.e]):
        raise InputDataError(
            path,
            f"neighbour cube's pixels ({b.a:g} x {-b.e:g}) differ from the tile's "
            f"({a.a:g} x {-a.e:g})",
        )
    cols = (b.c - a.c) / a.a
    rows = (b.f - a.f) / a.e
    if not (np.isclose(cols, round(cols), atol=1e-6) and np.isclose(rows, round(rows), atol=1e-6)):
        raise InputDataError(
            path,
            f"neighbour cube is not on the tile's pixel grid (offset {rows:g} rows, {cols:g} "
            "columns; it must be a whole number of pixels)",
        )
    return int(round(rows)), int(round(cols))


def same_overpass(times: np.ndarray, other: np.ndarray) -> np.ndarray:
    """For each of ``times``, the index of ``other``'s time of the same overpass, or -1."""
    times = np.asarray(times, "datetime64[ns]")
    other = np.asarray(other, "datetime64[ns]")
    if other.size == 0:
        return np.full(times.size, -1)
    order = np.argsort(other, kind="stable")
    sorted_other = other[order]
    right = np.clip(np.searchsorted(sorted_other, times), 0, other.size - 1)
    left = np.clip(right - 1, 0, other.size - 1)
    gap_r = np.abs(sorted_other[right] - times)
    gap_l = np.abs(sorted_other[left] - times)
    nearest = np.where(gap_l <= gap_r, left, right)
    gap = np.minimum(gap_l, gap_r)
    return np.where(gap <= SAME_OVERPASS, order[nearest], -1)


def place_neighbour(tile: xr.Dataset, other: xr.Dataset, path: str | Path) -> Neighbour:
    """``other`` on the tile's grid and time axes (``grid_offset``, ``same_overpass``)."""
    rows, cols = grid_offset(tile, other, path)
    index = {
        s.time_dim: same_overpass(tile[s.time_dim].values, other[s.time_dim].values)
        for s in SENSORS.values()
    }
    if all((i < 0).all() for i in index.values()):
        raise InputDataError(path, "neighbour cube shares no acquisition with the tile")
    return Neighbour(other, rows, cols, index)


def read_clipped(var: xr.DataArray, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """var[..., rows, cols] where rows/cols may reach beyond the array, and where it is
    inside (2-D): missing values (NaN, False) outside."""
    h, w = var.sizes["y"], var.sizes["x"]
    r0, r1 = max(rows.start, 0), min(rows.stop, h)
    c0, c1 = max(cols.start, 0), min(cols.stop, w)
    shape = (*var.shape[:-2], rows.stop - rows.start, cols.stop - cols.start)
    out = np.zeros(shape, bool) if var.dtype == bool else np.full(shape, np.nan, np.float32)
    inside = np.zeros(shape[-2:], bool)
    if r0 < r1 and c0 < c1:
        at = (..., slice(r0 - rows.start, r1 - rows.start), slice(c0 - cols.start, c1 - cols.start))
        out[at] = var.isel(y=slice(r0, r1), x=slice(c0, c1)).values
        inside[at[1:]] = True
    return out, inside


def read_with_halo(
    tile: xr.Dataset, name: str, rows: slice, cols: slice, neighbours: list[Neighbour] = ()
) -> np.ndarray:
    """Variable ``name`` of the tile on ``rows`` x ``cols`` (which may reach beyond it),
    the part outside the tile filled from the neighbours (the first covering a pixel wins)
    on the tile's acquisitions; missing values where nothing covers it."""
    out, covered = read_clipped(tile[name], rows, cols)
    time_dim = tile[name].dims[0]
    for nb in neighbours:
        if covered.all():
            break
        nb_rows = slice(rows.start - nb.row_off, rows.stop - nb.row_off)
        nb_cols = slice(cols.start - nb.col_off, cols.stop - nb.col_off)
        values, inside = read_clipped(nb.cube[name], nb_rows, nb_cols)
        fill = inside & ~covered
        if not fill.any():
            continue
        index = nb.time_index[time_dim]
        matched = values[np.maximum(index, 0)]
        matched[index < 0] = False if matched.dtype == bool else np.nan
        out[..., fill] = matched[..., fill]
        covered |= fill
    return out
