"""The analysis grid of a tile: CRS, affine transform and shape, and windows over it; the
tile around a tower in its UTM zone, a grid's coarser twin and its WGS 84 footprint."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_geom
from rasterio.windows import Window


@dataclass(frozen=True)
class GridSpec:
    epsg: int
    transform: Affine
    height: int
    width: int

    @property
    def crs(self) -> CRS:
        return CRS.from_epsg(self.epsg)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def resolution(self) -> float:
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of a north-up grid."""
        left, top = self.transform.c, self.transform.f
        return (
            left,
            top + self.height * self.transform.e,
            left + self.width * self.transform.a,
            top,
        )

    def x_coords(self, window: Window | None = None) -> np.ndarray:
        """Pixel-centre eastings (of a window, or of the whole grid)."""
        col0, n = (0, self.width) if window is None else (int(window.col_off), int(window.width))
        return self.transform.c + self.transform.a * (np.arange(col0, col0 + n) + 0.5)

    def y_coords(self, window: Window | None = None) -> np.ndarray:
        row0, n = (0, self.height) if window is None else (int(window.row_off), int(window.height))
        return self.transform.f + self.transform.e * (np.arange(row0, row0 + n) + 0.5)

    def windows(self, size: int) -> Iterator[Window]:
        """Row-major square windows of ``size`` pixels (smaller at the right/bottom edge)."""
        for row in range(0, self.height, size):
            for col in range(0, self.width, size):
                yield Window(col, row, min(size, self.width - col), min(size, self.height - row))

    def is_north_up(self) -> bool:
        t = self.transform
        return t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0


def utm_epsg(lat: float, lon: float) -> int:
    """EPSG code of the WGS 84 UTM zone holding a point (326xx north, 327xx south)."""
    if not (-80.0 <= lat <= 84.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"({lat}, {lon}) is outside the UTM latitudes or not lat/lon")
    zone = min(int((lon + 180.0) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def site_grid(lat: float, lon: float, buffer_m: float, resolution: float = 10.0) -> GridSpec:
    """The 10 m tile around a tower: a square of side 2 x buffer in its UTM zone.

    Edges snap to multiples of 20 m, so the 10 m and 20 m grids nest and fall on the
    pixel edges of Sentinel-2 products of the same zone (their origins are multiples of
    60 m): assets of that zone are copied, not resampled.
    """
    epsg = utm_epsg(lat, lon)
    xs, ys = warp_transform("EPSG:4326", f"EPSG:{epsg}", [lon], [lat])
    size = int(round(2 * buffer_m / resolution))
    if size % 2 or size < 2:
        raise ValueError(f"buffer {buffer_m} m gives {size} pixels of {resolution} m (need even)")
    snap = 2 * resolution
    left = math.floor((xs[0] - buffer_m) / snap + 0.5) * snap
    top = math.floor((ys[0] + buffer_m) / snap + 0.5) * snap
    return GridSpec(epsg, Affine(resolution, 0, left, 0, -resolution, top), size, size)


def grid_at(grid: GridSpec, resolution: float) -> GridSpec:
    """The same extent at another pixel size (the 20 m grid of a 10 m tile)."""
    factor = resolution / grid.resolution
    h, w = int(round(grid.height / factor)), int(round(grid.width / factor))
    return GridSpec(grid.epsg, grid.transform @ Affine.scale(factor), h, w)


def grid_footprint(grid: GridSpec) -> dict[str, Any]:
    """The tile as a WGS 84 GeoJSON polygon (densified edges), for STAC searches."""
    left, bottom, right, top = grid.bounds
    n = 8
    ring = (
        [(left + (right - left) * i / n, bottom) for i in range(n)]
        + [(right, bottom + (top - bottom) * i / n) for i in range(n)]
        + [(right - (right - left) * i / n, top) for i in range(n)]
        + [(left, top - (top - bottom) * i / n) for i in range(n)]
    )
    ring.append(ring[0])
    return wgs84_geometry(
        transform_geom(f"EPSG:{grid.epsg}", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
    )


def wgs84_geometry(geometry: Mapping[str, Any]) -> dict[str, Any]:
    """A WGS 84 GeoJSON geometry split at the antimeridian, as GeoJSON asks: a tile or
    scene there has longitudes near +180 and -180, and taken as it is its polygon would
    wrap the other way round the globe (real items there carry such rings)."""
    import antimeridian

    return antimeridian.fix_geojson(dict(geometry), fix_winding=True)
