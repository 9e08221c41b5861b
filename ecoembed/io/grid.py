"""The analysis grid of a tile: CRS, affine transform and shape, and windows over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS
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
