"""How well the fused model reconstructs reflectance, against the synthetic truth.

Two parts, each scored for the fused reconstruction and for two baselines computed from
the cube's clear observations only (``ecoembed.embed.baselines``), on the same
pixel-dates:

* S2 dates: the ``reconstruction`` product against the truth's clear-sky reflectance
  ``s2_clear``, on pixel-dates that are truly cloud-covered, in true cloud shadow, and
  clear (truth ``cloud`` 1, 2, 0), whatever the SCL said;
* days without any S2 acquisition: the daily product decoded to reflectance against the
  daily truth (reflectance recomputed from the truth's land-surface state), on a regular
  sample of 2 x 2 pixel blocks (every ``daily_stride_px``-th block; decoding every pixel
  on every day would cost as much as the whole daily export).

The 20 m bands (B05-B07, B8A, B11, B12) are compared at 20 m: prediction and truth are
averaged over aligned 2 x 2 blocks first, since the cube holds them at 20 m while the
truth has 10 m detail. A block belongs to a subset when all its four pixels do. RMSE per
band and "all" (root of the mean of the band MSEs) in reflectance units.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from ecoembed.embed.baselines import choose_lambda, linear_fill, whittaker_fill
from ecoembed.embed.dense import Targets, daily_targets, embed_window
from ecoembed.embed.export import cube_grid, daily_range, read_window
from ecoembed.embed.model import EmbeddingModel, load_embedding_model
from ecoembed.io.atomic import atomic_path
from ecoembed.io.sentinel import S2_BANDS
from ecoembed.io.timeaxis import day_dates, day_numbers
from ecoembed.io.zarrio import open_zarr
from ecoembed.synth.sentinel2 import surface_reflectance

log = logging.getLogger(__name__)
METHODS = ("fused", "linear", "whittaker")
SUBSETS = {"cloud": 1, "shadow": 2, "clear": 0}
BAND_RES = {b.name: b.resolution_m for b in S2_BANDS}


class ErrorSums:
    """Running squared-error sums per (period, subset, method, band)."""

    def __init__(self) -> None:
        self.sse: dict[tuple, float] = defaultdict(float)
        self.n: dict[tuple, int] = defaultdict(int)

    def add(self, key: tuple, err: np.ndarray) -> None:
        self.sse[key] += float(np.sum(err.astype(np.float64) ** 2))
        self.n[key] += int(err.size)

    def table(self, bands: list[str]) -> pd.DataFrame:
        rows = []
        groups = sorted({k[:3] for k in self.sse})
        for period, subset, method in groups:
            mses = []
            for band in bands:
                key = (period, subset, method, band)
                n = self.n.get(key, 0)
                mse = self.sse[key] / n if n else np.nan
                mses.append(mse)
                rows.append(
                    {
                        "period": period,
                        "subset": subset,
                        "method": method,
                        "band": band,
                        "resolution_m": BAND_RES[band],
                        "rmse": np.sqrt(mse),
                        "n": n,
                    }
                )
            rows.append(
                {
                    "period": period,
                    "subset": subset,
                    "method": method,
                    "band": "all",
                    "resolution_m": np.nan,
                    "rmse": float(np.sqrt(np.nanmean(mses))),
                    "n": int(sum(self.n.get((period, subset, method, b), 0) for b in bands)),
                }
            )
        return pd.DataFrame(rows)


def block_mean(a: np.ndarray) -> np.ndarray:
    """(..., H, W) -> (..., H // 2, W // 2), means of aligned 2 x 2 blocks."""
    h, w = a.shape[-2] // 2 * 2, a.shape[-1] // 2 * 2
    a = a[..., :h, :w]
    return a.reshape(*a.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


def block_all(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[-2] // 2 * 2, a.shape[-1] // 2 * 2
    a = a[..., :h, :w]
    return a.reshape(*a.shape[:-2], h // 2, 2, w // 2, 2).all(axis=(-3, -1))


def score(
    sums: ErrorSums,
    period: str,
    preds: dict[str, np.ndarray],
    truth: np.ndarray,
    subsets: dict[str, np.ndarray],
    bands: list[str],
) -> None:
    """Add errors of (D, C, H, W) predictions; pixel-dates where every method has a value."""
    common = np.isfinite(truth).all(axis=1)
    for p in preds.values():
        common &= np.isfinite(p).all(axis=1)
    for c, band in enumerate(bands):
        coarse = BAND_RES[band] == 20
        t = block_mean(truth[:, c]) if coarse else truth[:, c]
        for subset, mask in subsets.items():
            m = block_all(mask & common) if coarse else mask & common
            for method, p in preds.items():
                pc = block_mean(p[:, c]) if coarse else p[:, c]
                sums.add((period, subset, method, band), (pc - t)[m])


def _window_slices(window) -> tuple[slice, slice]:
    rows = slice(int(window.row_off), int(window.row_off + window.height))
    cols = slice(int(window.col_off), int(window.col_off + window.width))
    return rows, cols


def _clear_values(cube: xr.Dataset, rows: slice, cols: slice) -> np.ndarray:
    s2 = cube["s2"].isel(y=rows, x=cols).values
    valid = cube["s2_valid"].isel(y=rows, x=cols).values
    return np.where(valid[:, None], s2, np.nan).astype(np.float32)


def _flat(a: np.ndarray) -> np.ndarray:
    """(T, C, H, W) -> (T, C, H * W)."""
    return a.reshape(*a.shape[:2], -1)


def daily_truth(
    truth: xr.Dataset, days: np.ndarray, rows: slice, cols: slice, r: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """Clear-sky reflectance (D, C, *r.shape) of calendar days at window pixels (r, c), from
    the truth's daily land-surface state (the same model that made ``s2_clear``)."""
    sel = {"y": rows, "x": cols}
    idx = pd.DatetimeIndex(truth["day"].values).get_indexer(pd.DatetimeIndex(day_dates(days)))
    if (idx < 0).any():
        raise ValueError("the truth store does not cover every day of the cube")
    # (day, pixel) and (pixel,) arrays: surface_reflectance broadcasts bands in front
    state = {
        v: truth[v].isel(day=idx, **sel).values[:, r, c].reshape(idx.size, -1)
        for v in ("lai", "brown", "cab", "cw", "sm_surface")
    }
    land = SimpleNamespace(
        **{
            v: truth[v].isel(**sel).values[r, c].ravel()
            for v in ("soil_brightness", "landcover", "texture")
        }
    )
    refl = surface_reflectance(
        state["lai"], state["brown"], state["cab"], state["cw"], state["sm_surface"], land
    )
    return np.moveaxis(refl, 0, 1).reshape(idx.size, refl.shape[0], *np.shape(r))


def evaluate_tile(
    reconstruction_path: str | Path,
    cube_path: str | Path,
    truth_path: str | Path,
    model: EmbeddingModel,
    *,
    lambdas: list[float],
    daily_stride_px: int = 16,
    window_px: int = 128,
    seed: int = 0,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Error table of one tile (see module doc) and the chosen Whittaker lambda."""
    rec, cube, truth = (open_zarr(p) for p in (reconstruction_path, cube_path, truth_path))
    bands = [str(b) for b in cube["band"].values]
    days = day_numbers(cube["time"].values)
    grid = cube_grid(cube)
    rng = np.random.default_rng(seed)
    windows = list(grid.windows(window_px))
    # lambda from the clear observations of the first window (never from the truth)
    r0, c0 = _window_slices(windows[0])
    lam, lam_scores = choose_lambda(_flat(_clear_values(cube, r0, c0)), days, lambdas, rng)
    log.info("Whittaker lambda %g (hold-out RMSE per lambda: %s)", lam, lam_scores)
    first, last = daily_range(cube)
    every_day = daily_targets(days, first, last)
    no_s2 = every_day.s2_index < 0
    gap_days = Targets(every_day.days[no_s2], every_day.s2_index[no_s2])
    sums = ErrorSums()
    for window in tqdm(windows, desc="reconstruction eval", disable=not progress):
        rows, cols = _window_slices(window)
        h, w = rows.stop - rows.start, cols.stop - cols.start
        obs = _clear_values(cube, rows, cols)
        truth_s2 = truth["s2_clear"].isel(y=rows, x=cols).values.astype(np.float32)
        cloud = truth["cloud"].isel(y=rows, x=cols).values
        fused = rec["s2"].isel(y=rows, x=cols).values
        shape = (len(days), len(bands), h, w)
        preds = {
            "fused": fused,
            "linear": linear_fill(_flat(obs), days, days).reshape(shape),
            "whittaker": whittaker_fill(_flat(obs), days, days, lam).reshape(shape),
        }
        subsets = {name: cloud == code for name, code in SUBSETS.items()}
        score(sums, "s2_dates", preds, truth_s2, subsets, bands)
        if len(gap_days) == 0:
            continue
        # days without S2: 2 x 2 blocks every daily_stride_px pixels
        br = np.arange(0, h - 1, daily_stride_px)
        bc = np.arange(0, w - 1, daily_stride_px)
        rr = (br[:, None, None, None] + np.array([0, 1])[None, :, None, None]).repeat(bc.size, 2)
        cc = (bc[None, None, :, None] + np.array([0, 1])[None, None, None, :]).repeat(br.size, 0)
        rr = np.broadcast_to(rr, (br.size, 2, bc.size, 2))
        cc = np.broadcast_to(cc, (br.size, 2, bc.size, 2))
        pixels = (rr * w + cc).ravel()
        bh, bw = br.size * 2, bc.size * 2
        series = read_window(cube, model, rows, cols)
        prod = embed_window(model, series, gap_days, pixels=pixels)
        dshape = (len(gap_days), len(bands), bh, bw)
        sample = _flat(obs)[:, :, pixels]
        dpreds = {
            "fused": prod.s2.reshape(dshape),
            "linear": linear_fill(sample, days, gap_days.days).reshape(dshape),
            "whittaker": whittaker_fill(sample, days, gap_days.days, lam).reshape(dshape),
        }
        dtruth = daily_truth(
            truth, gap_days.days, rows, cols, rr.reshape(bh, bw), cc.reshape(bh, bw)
        )
        score(
            sums,
            "no_s2_days",
            dpreds,
            dtruth,
            {"all": np.ones(dshape[:1] + dshape[2:], bool)},
            bands,
        )
    table = sums.table(bands)
    table.insert(0, "tile", str(cube.attrs.get("tile", Path(cube_path).stem)))
    return table, {"whittaker_lambda": lam, "lambda_holdout_rmse": lam_scores}


def evaluate_tiles(
    tiles: dict[str, dict[str, str | Path]], checkpoint: str | Path, **kwargs
) -> pd.DataFrame:
    """All tiles, plus a pooled ``tile == "all"`` block (errors pooled over tiles)."""
    tables, lams = [], {}
    model = load_embedding_model(checkpoint)
    for tile, paths in tiles.items():
        t, info = evaluate_tile(
            paths["reconstruction"], paths["cube"], paths["truth"], model, **kwargs
        )
        tables.append(t)
        lams[tile] = info["whittaker_lambda"]
    table = pd.concat(tables, ignore_index=True)
    keys = ["period", "subset", "method", "band"]
    mse = table.assign(sse=table["rmse"] ** 2 * table["n"])
    per_band = mse[mse["band"] != "all"].groupby(keys, sort=False)[["sse", "n"]].sum()
    pooled = per_band.reset_index()
    pooled["rmse"] = np.sqrt(pooled["sse"] / pooled["n"])
    pooled["resolution_m"] = pooled["band"].map(BAND_RES)
    overall = (
        pooled.assign(mse=pooled["rmse"] ** 2)
        .groupby(keys[:3], sort=False)
        .agg(mse=("mse", "mean"), n=("n", "sum"))
        .reset_index()
    )
    overall["rmse"] = np.sqrt(overall["mse"])
    overall["band"] = "all"
    pooled = pd.concat([pooled, overall], ignore_index=True)
    pooled.insert(0, "tile", "all")
    out = pd.concat([table, pooled[table.columns]], ignore_index=True)
    out["whittaker_lambda"] = out["tile"].map(lams)
    return out


def write_reconstruction_table(
    tiles: dict[str, dict[str, str | Path]], checkpoint: str | Path, out: str | Path, **kwargs
) -> pd.DataFrame:
    table = evaluate_tiles(tiles, checkpoint, **kwargs)
    with atomic_path(out, replace="any") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return table
