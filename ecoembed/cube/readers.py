"""The cube's reader of each sensor of the registry (:mod:`ecoembed.io.sensors`).

:mod:`ecoembed.cube.build` iterates over :data:`READERS` in registry order wherever it
handles every sensor alike: splitting a tile's items, laying out the cube, reading a
window. What is particular to a sensor (how one acquisition becomes values on the grid,
its per-pixel mask, what the whole series of a window undergoes, the attributes of its
variable, per-acquisition metadata) is here, so that a sensor added to the registry needs
its entry here and nothing in build.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pystac
from rasterio.enums import Resampling
from rasterio.windows import Window

from ecoembed.cube.masking import s2_valid_mask
from ecoembed.cube.sentinel1 import read_s1_window, temporal_multilook
from ecoembed.cube.sentinel2 import read_s2_window, read_scl
from ecoembed.io.grid import GridSpec


@dataclass(frozen=True)
class WindowRead:
    """Where one window of the cube is read from, and how."""

    grid: GridSpec
    window: Window
    halo_window: Window  # the window grown by the mask's dilation
    inner: tuple[slice, slice]  # where ``window`` sits inside ``halo_window``
    resampling: Resampling
    cfg: Mapping[str, Any]  # the config's cube section
    catalog: str


# One acquisition in one window: its values (channel, h, w) and, for a sensor with a
# valid mask, that mask (h, w); None otherwise.
ReadDate = Callable[[pystac.Item, WindowRead], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class SensorReader:
    """How the cube reads one sensor."""

    read: ReadDate
    attrs: Callable[[Mapping[str, Any]], dict[str, Any]]  # of its variable, from the cfg
    # the window's whole series (time, channel, h, w) after every date is read
    series: Callable[[np.ndarray, Mapping[str, Any]], np.ndarray] = lambda values, cfg: values
    # cube variables along its time axis besides the values and their item ids
    per_date: Callable[[list[pystac.Item]], dict[str, np.ndarray]] = lambda items: {}
    valid_attrs: dict[str, Any] | None = None  # of its valid-mask variable, if it has one


def read_s2_date(item: pystac.Item, at: WindowRead) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance of one Sentinel-2 acquisition and its clear-view mask (valid SCL class,
    away from dilated clouds and shadows, every band with data)."""
    refl, has_data = read_s2_window(item, at.grid, at.window, at.resampling, at.catalog)
    clear = s2_valid_mask(
        read_scl(item, at.grid, at.halo_window),
        valid_classes=at.cfg["s2_valid_scl"],
        dilate_classes=at.cfg["s2_dilate_scl"],
        dilation_px=int(at.cfg["dilation_px"]),
    )
    return refl, clear[at.inner] & has_data


def read_s1_date(item: pystac.Item, at: WindowRead) -> tuple[np.ndarray, None]:
    """Backscatter (dB) of one Sentinel-1 acquisition; no mask (NaN is no data)."""
    return read_s1_window(item, at.grid, at.window, at.resampling, at.catalog), None


def s1_orbits(items: list[pystac.Item]) -> dict[str, np.ndarray]:
    """Orbit direction and relative orbit of each Sentinel-1 acquisition."""
    return {
        "orbit": np.array(
            [i.properties.get("sat:orbit_state", "unknown") for i in items], dtype=object
        ),
        "relative_orbit": np.array(
            [int(i.properties.get("sat:relative_orbit", -1)) for i in items], np.int32
        ),
    }


READERS: dict[str, SensorReader] = {
    "s2": SensorReader(
        read=read_s2_date,
        attrs=lambda cfg: {"units": "1", "long_name": "surface reflectance (Sentinel-2 L2A)"},
        valid_attrs={
            "description": "clear view: valid SCL class, away from dilated "
            "clouds/shadows, all bands with data"
        },
    ),
    "s1": SensorReader(
        read=read_s1_date,
        attrs=lambda cfg: {
            "units": "dB",
            "long_name": "backscatter gamma0 (Sentinel-1 RTC)",
            "temporal_looks": int(cfg["s1_temporal_looks"]),
        },
        series=lambda values, cfg: temporal_multilook(values, int(cfg["s1_temporal_looks"])),
        per_date=s1_orbits,
    ),
}
