"""Gap-filling baselines for the reconstruction: linear interpolation and a Whittaker smoother.

Both see only what the fused model sees of the optical record: the cube's clear
observations (``s2_valid``), never the truth. The Whittaker smoother (Eilers 2003, from
the ``whittaker-eilers`` package) works on unequally spaced dates, with weight 1 on clear
observations and 0 on the dates to fill; its lambda is chosen on clear data alone, by
hiding a share of the clear observations and keeping the lambda that predicts them best.
"""

from __future__ import annotations

import numpy as np
from whittaker_eilers import WhittakerSmoother

MIN_CLEAR = 3  # fewer clear observations at a pixel: the baselines give no value there


def linear_fill(values: np.ndarray, days: np.ndarray, to_days: np.ndarray) -> np.ndarray:
    """(T, C, P) with NaN where not clear -> (D, C, P) linear in time between clear dates,
    held constant beyond the first and last one; NaN at pixels with < MIN_CLEAR clear."""
    t_len, c_len, n_pix = values.shape
    out = np.full((to_days.size, c_len, n_pix), np.nan, np.float32)
    clear = np.isfinite(values).all(axis=1)
    for p in range(n_pix):
        t = np.flatnonzero(clear[:, p])
        if t.size < MIN_CLEAR:
            continue
        for c in range(c_len):
            out[:, c, p] = np.interp(to_days, days[t], values[t, c, p])
    return out


def _grid(days: np.ndarray, to_days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The smoother's x: all observation and target days, increasing and distinct."""
    x, inverse = np.unique(np.concatenate([days, to_days]), return_inverse=True)
    return x, inverse[: days.size], inverse[days.size :]


def whittaker_fill(
    values: np.ndarray, days: np.ndarray, to_days: np.ndarray, lam: float, order: int = 2
) -> np.ndarray:
    """(T, C, P) with NaN where not clear -> (D, C, P), the smoother's values on ``to_days``."""
    t_len, c_len, n_pix = values.shape
    x, obs_at, out_at = _grid(np.asarray(days, float), np.asarray(to_days, float))
    out = np.full((to_days.size, c_len, n_pix), np.nan, np.float32)
    clear = np.isfinite(values).all(axis=1)
    smoother = WhittakerSmoother(
        lmbda=float(lam), order=order, data_length=x.size, x_input=x.tolist()
    )
    for p in range(n_pix):
        if clear[:, p].sum() < MIN_CLEAR:
            continue
        w = np.zeros(x.size)
        w[obs_at[clear[:, p]]] = 1.0
        y = np.zeros((c_len, x.size))
        y[:, obs_at[clear[:, p]]] = values[clear[:, p], :, p].T
        smoother.update_weights(w.tolist())
        out[:, :, p] = np.asarray(smoother.smooth_parallel(y.tolist()))[:, out_at].T
    return out


def choose_lambda(
    values: np.ndarray,
    days: np.ndarray,
    lambdas: list[float],
    rng: np.random.Generator,
    holdout: float = 0.2,
    max_pixels: int = 500,
) -> tuple[float, dict[float, float]]:
    """The lambda whose smoother best predicts hidden clear observations (clear data only).

    values: (T, C, P) with NaN where not clear. A random ``holdout`` share of each sampled
    pixel's clear observations is hidden; returns the best lambda and the RMSE per lambda.
    """
    n_pix = values.shape[2]
    pix = rng.choice(n_pix, size=min(max_pixels, n_pix), replace=False)
    sub = values[:, :, pix]
    clear = np.isfinite(sub).all(axis=1)
    hide = clear & (rng.random(clear.shape) < holdout)
    train = np.where(hide[:, None], np.nan, sub)
    scores = {}
    for lam in lambdas:
        pred = whittaker_fill(train, days, days, lam)
        err = (pred - sub)[np.broadcast_to(hide[:, None], sub.shape)]
        err = err[np.isfinite(err)]
        scores[float(lam)] = float(np.sqrt(np.mean(err**2))) if err.size else np.inf
    return min(scores, key=scores.get), scores
