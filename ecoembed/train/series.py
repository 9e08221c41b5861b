"""What both training stages train on: one sensor's series of one tile, read from a cube.

Its own module so that stage 2 (``fusion``) and stage 1 (``pretrain``) share the data
types, the held-out blocks and the data's hash without one stage importing the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecoembed.io.sensors import SENSOR_NAMES, SENSORS
from ecoembed.io.timeaxis import day_numbers
from ecoembed.train.sampling import Centres

HOLDOUT_EVERY = 5  # spatial block b (of 4 x 4 per tile) is held out when b % 5 == 0


@dataclass
class SensorSeries:
    """One tile of one sensor: values (T, C, H, W) with NaN where not usable, and days."""

    values: np.ndarray
    day_of: np.ndarray
    dates: pd.DatetimeIndex
    channels: tuple[str, ...] = ()

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.values).all(axis=1)


def sensor_series(cube, modality: str) -> SensorSeries:
    """The series of one sensor from an opened cube, masked to its valid views where the
    cube has a mask (S2: clear views; S1 is stored in dB)."""
    if modality not in SENSORS:
        raise ValueError(f"unknown modality {modality!r} (expected {' or '.join(SENSOR_NAMES)})")
    s = SENSORS[modality]
    values = cube[s.name].values
    if s.valid_var is not None:
        values = np.where(cube[s.valid_var].values[:, None], values, np.nan)
    times = pd.DatetimeIndex(cube[s.time_dim].values)
    names = cube[s.channel_dim].values.tolist()
    day_of = day_numbers(times.values).astype(np.float32)
    return SensorSeries(values.astype(np.float32), day_of, times.normalize(), tuple(names))


def held_out(centres: Centres, shape: tuple[int, int]) -> np.ndarray:
    """Whether each centre lies in a held-out spatial block of a tile of ``shape``."""
    h, w = shape
    block = (centres.row * 4 // h) * 4 + centres.col * 4 // w
    return block % HOLDOUT_EVERY == 0


def series_sha256(series: list[SensorSeries]) -> str:
    """SHA-256 of the data a run trains on (each tile's values and days, in tile order):
    what tells a resume checkpoint made from other cubes from one made from these."""
    digest = hashlib.sha256()
    for s in series:
        for a in (s.values, s.day_of):
            a = np.ascontiguousarray(a)
            digest.update(f"{a.dtype.str}{a.shape}".encode())
            digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()


def normalised(s: SensorSeries, mean: np.ndarray, std: np.ndarray) -> SensorSeries:
    """``s`` in the units its encoder works in: per band, minus ``mean``, over ``std``."""
    values = (s.values - mean[:, None, None]) / std[:, None, None]
    return SensorSeries(values, s.day_of, s.dates, s.channels)
