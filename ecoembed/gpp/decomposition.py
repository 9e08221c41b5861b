"""Where GPP skill comes from: across sites, the seasonal cycle, and anomalies from it.

A pooled R² mixes three things a model can get right separately, as flux-tower upscaling
studies (FLUXCOM and its successors) report them. For each tower, every evaluated day's
value (observed or predicted alike) is split exactly into

    value = tower mean + seasonal + anomaly

* **tower mean**: the mean over the tower's evaluated days; ``across_site`` is the R² of
  the predicted against the observed tower means (one point per tower);
* **seasonal**: the tower's mean seasonal cycle (the mean of every day of year over the
  years, smoothed with a circular ``window_days`` moving mean over the day of year, days
  without data left out) minus the tower mean; ``seasonal`` is its R², pooled over the
  tower-days;
* **anomaly**: the day's departure from the tower's mean seasonal cycle; ``anomaly`` is
  its R², pooled over the tower-days. Daily models usually score low here.

Per IGBP class (the site table's ``IGBP``): pooled R² and RMSE of the towers of the
class (part ``igbp``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

PARTS = ("across_site", "seasonal", "anomaly")
COLUMNS = ["input_set", "model", "split", "part", "igbp", "r2", "rmse", "n"]


def seasonal_cycle(dates: pd.DatetimeIndex, values: np.ndarray, window_days: int) -> np.ndarray:
    """Each day's value of the mean seasonal cycle (see module doc)."""
    doy = np.asarray(dates.day_of_year) - 1
    sums = np.bincount(doy, weights=values, minlength=366)
    counts = np.bincount(doy, minlength=366).astype(float)
    if window_days > 1:
        kernel = np.ones(window_days)
        half = window_days // 2
        wrap = lambda a: np.convolve(np.concatenate([a[-half:], a, a[:half]]), kernel, "valid")  # noqa: E731
        sums, counts = wrap(sums)[:366], wrap(counts)[:366]
    with np.errstate(invalid="ignore", divide="ignore"):
        cycle = sums / counts
    return cycle[doy]


def split_parts(
    sites: np.ndarray, dates: pd.DatetimeIndex, values: np.ndarray, window_days: int
) -> dict[str, np.ndarray]:
    """Per row: the tower mean, seasonal and anomaly parts (they sum to the value)."""
    mean = np.empty_like(values, dtype=float)
    cycle = np.empty_like(values, dtype=float)
    for site in dict.fromkeys(sites):
        rows = sites == site
        mean[rows] = values[rows].mean()
        cycle[rows] = seasonal_cycle(dates[rows], values[rows], window_days)
    return {"mean": mean, "seasonal": cycle - mean, "anomaly": values - cycle}


def r2_rmse(observed: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    ss = float(np.sum((observed - observed.mean()) ** 2))
    sse = float(np.sum((predicted - observed) ** 2))
    r2 = 1.0 - sse / ss if observed.size > 1 and ss > 0 else np.nan
    return r2, float(np.sqrt(sse / observed.size)) if observed.size else np.nan


def decompose(
    predictions: pd.DataFrame, igbp: Mapping[str, str], window_days: int = 15
) -> pd.DataFrame:
    """The decomposition table of every input set, model and split (see module doc)."""
    rows = []
    keys = ["input_set", "model", "split"]
    for (input_set, model, split), g in predictions.groupby(keys, sort=False, observed=True):
        g = g.sort_values(["site", "date"])
        sites = g["site"].astype(str).to_numpy()
        dates = pd.DatetimeIndex(g["date"])
        obs = split_parts(sites, dates, g["observed"].to_numpy(float), window_days)
        pred = split_parts(sites, dates, g["predicted"].to_numpy(float), window_days)
        key = {"input_set": input_set, "model": model, "split": split, "igbp": ""}
        first = np.unique(sites, return_index=True)[1]  # one row per tower for its mean
        parts = {
            "across_site": (obs["mean"][first], pred["mean"][first]),
            "seasonal": (obs["seasonal"], pred["seasonal"]),
            "anomaly": (obs["anomaly"], pred["anomaly"]),
        }
        for part, (o, p) in parts.items():
            ok = np.isfinite(o) & np.isfinite(p)
            r2, rmse = r2_rmse(o[ok], p[ok])
            rows.append({**key, "part": part, "r2": r2, "rmse": rmse, "n": int(ok.sum())})
        classes = np.array([igbp.get(s, "unknown") for s in sites])
        for cls in sorted(set(classes)):
            mine = classes == cls
            r2, rmse = r2_rmse(
                g["observed"].to_numpy(float)[mine], g["predicted"].to_numpy(float)[mine]
            )
            rows.append(
                {**key, "part": "igbp", "igbp": cls, "r2": r2, "rmse": rmse, "n": int(mine.sum())}
            )
    return pd.DataFrame(rows, columns=COLUMNS)
