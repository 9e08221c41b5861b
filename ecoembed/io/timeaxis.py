"""The time axis every layer shares: days counted from one origin.

The encoders take acquisition times as float day numbers since ``DAY0``; training,
export, the tower series and the figures all convert through these two functions, so
that a change of origin (or of unit) is one edit here.
"""

from __future__ import annotations

import numpy as np

DAY0 = np.datetime64("2000-01-01", "ns")  # origin of the day numbers


def day_numbers(times: np.ndarray) -> np.ndarray:
    """datetime64 -> float64 days since ``DAY0`` (the encoders' time unit)."""
    return ((np.asarray(times, "datetime64[ns]") - DAY0) / np.timedelta64(1, "D")).astype(
        np.float64
    )


def day_dates(days: np.ndarray) -> np.ndarray:
    """Day numbers -> calendar dates (datetime64[D]) of the days they fall in."""
    return DAY0.astype("datetime64[D]") + np.floor(days).astype("timedelta64[D]")
