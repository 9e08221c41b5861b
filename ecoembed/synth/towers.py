"""Eddy-covariance towers: footprint-weighted GPP with measurement noise and data gaps.

The footprint is an isotropic Gaussian (sigma FOOTPRINT_SIGMA_PX pixels = 100 m, cut at
3 sigma): a simplification of the upwind-elongated footprints of real towers that keeps
the towers' source area inside their homogeneous stand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecoembed.synth.state import DailyState, water_stress
from ecoembed.synth.weather import Weather

FOOTPRINT_SIGMA_PX = 10.0
RECO_REF = {"DBF": 2.8, "ENF": 2.2, "GRA": 2.5, "CRO": 2.4}  # gC m-2 d-1 at 10 deg C


def footprint_weights(
    row: int, col: int, shape: tuple[int, int]
) -> tuple[slice, slice, np.ndarray]:
    r = int(3 * FOOTPRINT_SIGMA_PX)
    rows = slice(max(row - r, 0), min(row + r + 1, shape[0]))
    cols = slice(max(col - r, 0), min(col + r + 1, shape[1]))
    yy, xx = np.mgrid[rows, cols]
    d2 = (yy - row) ** 2 + (xx - col) ** 2
    w = np.exp(-0.5 * d2 / FOOTPRINT_SIGMA_PX**2) * (d2 <= r * r)
    return rows, cols, w / w.sum()


def footprint_series(daily: np.ndarray, row: int, col: int) -> np.ndarray:
    rows, cols, w = footprint_weights(row, col, daily.shape[1:])
    return np.einsum("dyx,yx->d", daily[:, rows, cols], w)


def _gap_mask(rng: np.random.Generator, n: int) -> np.ndarray:
    """Instrument failures: a few blocks of 5-25 days per year plus scattered lost days."""
    gaps = rng.random(n) < 0.04
    for _ in range(max(1, round(2.5 * n / 365))):
        start = int(rng.integers(0, n))
        gaps[start : start + int(rng.integers(5, 26))] = True
    return gaps


def flux_table(
    state: DailyState, weather: Weather, row: int, col: int, igbp: str, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """FLUXNET-style daily table (NaN for missing) and the true footprint GPP."""
    n = len(weather.days)
    gpp_true = footprint_series(state.gpp, row, col)
    sm_root = footprint_series(state.sm_root, row, col)
    qc = np.clip(0.95 - 0.35 * rng.random(n) ** 2, 0.0, 1.0)
    noise_scale = 1.0 + 1.5 * (1.0 - qc)  # poorly covered days are noisier
    gpp_nt = (
        gpp_true * (1 + 0.08 * rng.standard_normal(n) * noise_scale)
        + 0.35 * rng.standard_normal(n) * noise_scale
    )
    gpp_dt = gpp_true * (1 + 0.10 * rng.standard_normal(n)) + 0.35 * rng.standard_normal(n)
    gpp_nt, gpp_dt = np.maximum(gpp_nt, 0.0), np.maximum(gpp_dt, 0.0)
    reco = (
        RECO_REF[igbp] * 1.8 ** ((weather.ta - 10.0) / 10.0) * (0.4 + 0.6 * water_stress(sm_root))
    )
    nee = reco * (1 + 0.1 * rng.standard_normal(n)) - gpp_nt
    gaps = _gap_mask(rng, n)
    flux = {
        "GPP_NT_VUT_REF": gpp_nt,
        "GPP_DT_VUT_REF": gpp_dt,
        "RECO_NT_VUT_REF": reco,
        "NEE_VUT_REF": nee,
        "NEE_VUT_REF_QC": qc,
    }
    df = pd.DataFrame({k: np.where(gaps, np.nan, v) for k, v in flux.items()}, index=weather.days)
    df["SW_IN_F"] = weather.sw_in * (1 + 0.02 * rng.standard_normal(n))
    df["TA_F"] = weather.ta + 0.3 * rng.standard_normal(n)
    df["VPD_F"] = np.maximum(weather.vpd * (1 + 0.05 * rng.standard_normal(n)), 0.0)
    df["P_F"] = weather.precip
    df["SWC_F_MDS_1"] = 100.0 * (0.08 + 0.30 * sm_root)
    df.index.name = "TIMESTAMP"
    return df, gpp_true
