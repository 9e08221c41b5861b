"""Where tiles sit on Earth and when the satellites pass.

Tiles lie side by side in one UTM zone at about 51 deg N (central Germany for the default
EPSG:32632), so they share one regional weather and the same satellite orbits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from affine import Affine

PIXEL_M = 10.0
ORIGIN_NORTHING = 5_650_000.0  # about 51.0 deg N in any northern UTM zone
ORIGIN_EASTING = 640_000.0
TILE_GAP_M = 1_000.0
SWATH_WIDTH_M = 250_000.0  # Sentinel-1 IW swath
S1_INCIDENCE_NEAR_DEG = 29.1
S1_INCIDENCE_FAR_DEG = 46.0
S2_OVERPASS_UTC_HOURS = 10.35  # 10:21 UTC, the descending node at 10:30 local solar time


@dataclass(frozen=True)
class TileGrid:
    tile: str
    index: int
    epsg: int
    size: int
    transform: Affine

    @property
    def shape(self) -> tuple[int, int]:
        return self.size, self.size

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform.c, self.transform.f
        return left, top - self.size * PIXEL_M, left + self.size * PIXEL_M, top

    def transform_at(self, resolution_m: float) -> Affine:
        return Affine(resolution_m, 0.0, self.transform.c, 0.0, -resolution_m, self.transform.f)

    def x_coords(self) -> np.ndarray:
        return self.transform.c + PIXEL_M * (np.arange(self.size) + 0.5)

    def y_coords(self) -> np.ndarray:
        return self.transform.f - PIXEL_M * (np.arange(self.size) + 0.5)


def tile_pitch_m(size: int) -> float:
    return size * PIXEL_M + TILE_GAP_M


def tile_grid(tile: str, index: int, size: int, epsg: int) -> TileGrid:
    left = ORIGIN_EASTING + index * tile_pitch_m(size)
    return TileGrid(
        tile, index, epsg, size, Affine(PIXEL_M, 0.0, left, 0.0, -PIXEL_M, ORIGIN_NORTHING)
    )


def simulation_days(start: str, end: str) -> pd.DatetimeIndex:
    days = pd.date_range(str(start), str(end), freq="D")
    if len(days) < 2:
        raise ValueError(f"synth.start {start} must be before synth.end {end}")
    return days


def s2_acquisitions(days: pd.DatetimeIndex, revisit: int, tile_index: int) -> np.ndarray:
    """Day indices of Sentinel-2 overpasses (10:30 local solar time, fixed repeat cycle)."""
    phase = (2 * tile_index) % revisit
    return np.arange(phase, len(days), revisit)


@dataclass(frozen=True)
class S1Orbit:
    state: str  # "ascending" | "descending"
    relative_orbit: int
    phase_days: int
    hour_utc: float
    near_range_easting: float
    looks_east: bool  # right-looking: ascending looks east, descending looks west


def s1_orbits(revisit: int, n_tiles: int, size: int) -> tuple[S1Orbit, S1Orbit]:
    """Two relative orbits per region. The descending swath's near-range edge cuts through
    the third tile (when there is one), as real swath edges cut through real tiles."""
    edge = ORIGIN_EASTING + 2 * tile_pitch_m(size) + 0.6 * size * PIXEL_M
    asc = S1Orbit("ascending", 117, 1, 17.3, ORIGIN_EASTING - 80_000.0, True)
    desc = S1Orbit("descending", 168, 1 + revisit // 2, 5.5, edge, False)
    return asc, desc


def s1_acquisitions(days: pd.DatetimeIndex, revisit: int, orbit: S1Orbit) -> np.ndarray:
    return np.arange(orbit.phase_days, len(days), revisit)


def s1_incidence_deg(orbit: S1Orbit, easting: np.ndarray) -> np.ndarray:
    """Incidence angle across the swath; NaN outside it (no data for this orbit)."""
    ground_range = (
        easting - orbit.near_range_easting
        if orbit.looks_east
        else (orbit.near_range_easting - easting)
    )
    frac = ground_range / SWATH_WIDTH_M
    angle = S1_INCIDENCE_NEAR_DEG + frac * (S1_INCIDENCE_FAR_DEG - S1_INCIDENCE_NEAR_DEG)
    return np.where((frac >= 0) & (frac <= 1), angle, np.nan)


def latitude_deg(grid: TileGrid) -> float:
    """Approximate latitude of the tile centre (for radiation): enough for daily sums."""
    from pyproj import Transformer

    left, bottom, right, top = grid.bounds
    lon, lat = Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(
        (left + right) / 2, (bottom + top) / 2
    )
    return float(lat)
