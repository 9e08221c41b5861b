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

Besides the truth cloud classes, two groups of ``subset`` values on S2 dates (period
``s2_dates``), for the same three methods on the same pixel-dates. Both are defined by
what the methods see, the cube's ``s2_valid`` (a clear view), never by the truth's cloud
mask; a pixel-date can be in several subsets (a subset is a selection, not a partition):

* ``after_unseen_event``: pixel-dates t up to ``event_window_days`` (default 28) calendar
  days after a canopy-cutting event of the pixel's parcel (truth ``event_kind`` in
  ``CANOPY_CUTS``: ``harvest`` and ``mowing``, the only kinds synth makes; truth
  ``event_date``, ``event_parcel`` and the pixel's ``parcel``), 0 <= day(t) - event day
  <= event_window_days, such that the pixel had no clear view on any S2 date in [event
  day, t] (t itself included, so t is a hidden pixel-date; a clear view on the event day
  counts as seeing it). Of several events the latest one on or before t is used.
  Interpolating between clear views cannot know of such an event; S1 can.
* cloud-gap length, for every pixel-date the cube does not see clear (``s2_valid``
  False: truly clouded, in shadow, or masked by the SCL while clear; all of them are what
  a method has to fill): the gap of the pixel's clear views containing the date, in days,
  next clear S2 date minus previous clear S2 date (rounded to whole days; with a 5-day
  revisit one hidden date between two clear ones is a 10-day gap). Bins ``gap_le10d``
  (<= 10 d), ``gap_11-20d``, ``gap_21-40d``, ``gap_41-80d``, ``gap_gt80d`` (> 80 d),
  and ``gap_edge`` for open-ended gaps (no clear view before, or none after, the date
  within the series; also pixels never seen clear, where the baselines have no value and
  so no pixel-date is scored).

Image quality, the measures of the cloud-removal literature (SEN12MS-CR-TS, Ebel et al.
2022, and the works that report on it), in a second table (``image_quality_table``):
the images are the (window, S2 date) pairs whose truth cloud + cloud-shadow fraction
(truth ``cloud`` != 0 over the window's pixels) is at least ``image_min_cloud_fraction``
(default 0.1), where every method and the truth have a value at every pixel of the window
(an image is dropped otherwise; windows under 11 px a side are skipped, too small for the
SSIM window). Per image and method, on the 10 m grid, in reflectance (0-1, not clipped;
the 20 m bands too, where the truth has 10 m detail that no method can have: it costs all
three alike):

* PSNR = 10 log10(1 / MSE) dB (data range 1), MSE over all bands and the image's
  cloud-covered pixels (truth cloud or shadow);
* SSIM (``skimage.metrics.structural_similarity``, Wang et al. 2004: Gaussian window
  sigma 1.5 (11 x 11), population covariance, data_range 1) on the whole window image,
  per 10 m band (B02, B03, B04, B08), then the mean over those bands;
* SAM, the spectral angle arccos(<p, t> / |p| |t|) in degrees between the predicted and
  the true spectrum (all bands), mean over the image's cloud-covered pixels.

Each measure is then the mean over images (per tile, and pooled over all tiles' images
as ``tile == "all"``), beside ``n_images`` and the mean cloud fraction of those images.
Results on SEN12MS-CR-TS are the same kind of means over its test images, with these
differences to keep in mind when placing the numbers side by side: its images are 256 x
256 px of 13 top-of-atmosphere (L1C) bands and its scores are usually over the whole
image; here the windows are ``embed.window_px`` (128 px by default) of ten
surface-reflectance bands, PSNR and SAM count only where the truth had cloud (where a
method had to reconstruct), the truth is cloud-free by construction, and the clouds are
synthetic.
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
CANOPY_CUTS = ("harvest", "mowing")  # truth event kinds that remove the canopy
UNSEEN_EVENT = "after_unseen_event"
GAP_BINS = ((10, "gap_le10d"), (20, "gap_11-20d"), (40, "gap_21-40d"), (80, "gap_41-80d"))
GAP_LONGEST, GAP_EDGE = "gap_gt80d", "gap_edge"
GAP_SUBSETS = (*(name for _, name in GAP_BINS), GAP_LONGEST, GAP_EDGE)
SSIM_SIGMA = 1.5
SSIM_MIN_SIDE = 11  # the Gaussian SSIM window: 2 * int(3.5 * 1.5 + 0.5) + 1 px


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
            mses, ns = [], []
            for band in bands:
                key = (period, subset, method, band)
                n = self.n.get(key, 0)
                ns.append(n)
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
                    # a subset without pixel-dates (e.g. no gap that long): NaN, quietly
                    "rmse": float(np.sqrt(np.nanmean(mses))) if any(n for n in ns) else np.nan,
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
        errs = {
            method: (block_mean(p[:, c]) if coarse else p[:, c]) - t for method, p in preds.items()
        }
        for subset, mask in subsets.items():
            m = block_all(mask & common) if coarse else mask & common
            for method, err in errs.items():
                sums.add((period, subset, method, band), err[m])


def last_clear_day(valid: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(T, H, W) day of the latest clear view on or before each date; -inf before any."""
    seen = np.where(valid, np.asarray(days, float)[:, None, None], -np.inf)
    return np.maximum.accumulate(seen, axis=0)


def next_clear_day(valid: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(T, H, W) day of the earliest clear view on or after each date; +inf after the last."""
    seen = np.where(valid, np.asarray(days, float)[:, None, None], np.inf)
    return np.minimum.accumulate(seen[::-1], axis=0)[::-1]


def gap_subsets(valid: np.ndarray, days: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel-dates not seen clear (``valid`` False), by the length of the gap of clear views
    that holds them: next minus previous clear date, in whole days (module doc)."""
    hidden = ~np.asarray(valid, bool)
    gap = np.rint(next_clear_day(valid, days) - last_clear_day(valid, days))
    edge = hidden & ~np.isfinite(gap)
    inner = hidden & ~edge
    out, low = {}, -np.inf
    for high, name in GAP_BINS:
        out[name] = inner & (gap > low) & (gap <= high)
        low = high
    out[GAP_LONGEST] = inner & (gap > low)
    out[GAP_EDGE] = edge
    return out


def unseen_event_mask(
    valid: np.ndarray,
    days: np.ndarray,
    parcel: np.ndarray,
    event_days: np.ndarray,
    event_parcels: np.ndarray,
    window_days: float,
) -> np.ndarray:
    """(T, H, W) pixel-dates within ``window_days`` after a canopy cut of the pixel's parcel
    with no clear view of the pixel on any date from the event day to the date itself.

    valid: (T, H, W) the cube's clear views; days: (T,) S2 dates as day numbers; parcel:
    (H, W); event_days, event_parcels: the cutting events (calendar day numbers, parcel).
    """
    day = np.floor(np.asarray(days, float))
    ids, inverse = np.unique(parcel, return_inverse=True)
    latest = np.full((day.size, ids.size), -np.inf)  # latest event on or before each date
    j = np.searchsorted(ids, event_parcels)
    ok = (j < ids.size) & (ids[np.minimum(j, ids.size - 1)] == event_parcels)
    for col, ev in zip(j[ok], np.floor(np.asarray(event_days, float))[ok], strict=True):
        after = day >= ev
        latest[after, col] = np.maximum(latest[after, col], ev)
    event = latest[:, inverse.ravel()].reshape(day.size, *parcel.shape)
    seen = np.floor(last_clear_day(valid, days))  # a clear view on the event day sees it
    since = day[:, None, None] - event
    return np.isfinite(event) & (since <= window_days) & (seen < event)


def cut_events(truth: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Day numbers and parcels of the truth's canopy-cutting events (``CANOPY_CUTS``)."""
    if "event" not in truth.dims or truth.sizes["event"] == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    kind = truth["event_kind"].values.astype(object)  # zarr 3 gives numpy's StringDType
    cut = np.isin(kind, list(CANOPY_CUTS))
    return (
        day_numbers(truth["event_date"].values[cut]),
        truth["event_parcel"].values[cut].astype(np.int64),
    )


def psnr_db(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, data range 1) of (C, H, W) images over the pixels of ``mask`` (H, W)."""
    mse = float(np.mean((pred[:, mask].astype(np.float64) - truth[:, mask]) ** 2))
    return float(10.0 * np.log10(1.0 / mse)) if mse > 0 else np.inf


def sam_deg(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean spectral angle (degrees) between (C, H, W) spectra over the pixels of ``mask``;
    pixels where either spectrum is zero have no angle and are left out."""
    p = pred[:, mask].astype(np.float64)
    t = truth[:, mask].astype(np.float64)
    norm = np.linalg.norm(p, axis=0) * np.linalg.norm(t, axis=0)
    ok = norm > 0
    cos = np.clip(np.sum(p * t, axis=0)[ok] / norm[ok], -1.0, 1.0)
    return float(np.degrees(np.mean(np.arccos(cos)))) if ok.any() else np.nan


def ssim_mean(pred: np.ndarray, truth: np.ndarray) -> float:
    """SSIM of (C, H, W) images, per band on the whole image, mean over bands (module doc)."""
    from skimage.metrics import structural_similarity

    return float(
        np.mean(
            [
                structural_similarity(
                    t.astype(np.float64),
                    p.astype(np.float64),
                    data_range=1.0,
                    gaussian_weights=True,
                    sigma=SSIM_SIGMA,
                    use_sample_covariance=False,
                )
                for p, t in zip(pred, truth, strict=True)
            ]
        )
    )


def image_quality(
    preds: dict[str, np.ndarray],
    truth: np.ndarray,
    cloud: np.ndarray,
    bands: list[str],
    min_cloud_fraction: float,
) -> list[dict]:
    """Per-image records (date index, method, cloud fraction, PSNR, SSIM, SAM) of one
    window's (T, C, H, W) predictions and truth; truth ``cloud`` (T, H, W) (module doc)."""
    if min(cloud.shape[-2:]) < SSIM_MIN_SIDE:
        return []
    ssim_bands = [i for i, b in enumerate(bands) if BAND_RES[b] == 10]
    covered = cloud != 0
    records = []
    for t in range(truth.shape[0]):
        fraction = float(covered[t].mean())
        if fraction < min_cloud_fraction or not covered[t].any():
            continue
        if not all(np.isfinite(a[t]).all() for a in (truth, *preds.values())):
            continue
        for method, p in preds.items():
            records.append(
                {
                    "date": t,
                    "method": method,
                    "cloud_fraction": fraction,
                    "psnr_db": psnr_db(p[t], truth[t], covered[t]),
                    "ssim": ssim_mean(p[t, ssim_bands], truth[t, ssim_bands]),
                    "sam_deg": sam_deg(p[t], truth[t], covered[t]),
                }
            )
    return records


def image_quality_table(records: pd.DataFrame) -> pd.DataFrame:
    """Means over images per tile and method, plus the pooled ``tile == "all"`` block."""
    cols = ["tile", "method", "n_images", "mean_cloud_fraction", "psnr_db", "ssim", "sam_deg"]
    if records.empty:
        return pd.DataFrame(columns=cols)
    both = pd.concat([records, records.assign(tile="all")], ignore_index=True)
    out = (
        both.groupby(["tile", "method"], sort=False)
        .agg(
            n_images=("psnr_db", "size"),
            mean_cloud_fraction=("cloud_fraction", "mean"),
            psnr_db=("psnr_db", "mean"),
            ssim=("ssim", "mean"),
            sam_deg=("sam_deg", "mean"),
        )
        .reset_index()
    )
    return out[cols]


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
    event_window_days: float = 28,
    image_min_cloud_fraction: float = 0.1,
    window_px: int = 128,
    seed: int = 0,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Error table of one tile (see module doc) and a dict with the chosen Whittaker lambda
    and the per-image quality records (``image_quality``, a DataFrame)."""
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
    event_days, event_parcels = cut_events(truth)
    images = []
    sums = ErrorSums()
    bar = tqdm(windows, desc="reconstruction eval", disable=not progress)
    for w_index, window in enumerate(bar):
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
        valid = cube["s2_valid"].isel(y=rows, x=cols).values.astype(bool)
        subsets[UNSEEN_EVENT] = unseen_event_mask(
            valid,
            days,
            truth["parcel"].isel(y=rows, x=cols).values,
            event_days,
            event_parcels,
            event_window_days,
        )
        subsets.update(gap_subsets(valid, days))
        score(sums, "s2_dates", preds, truth_s2, subsets, bands)
        for rec_ in image_quality(preds, truth_s2, cloud, bands, image_min_cloud_fraction):
            images.append({"window": w_index, **rec_})
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
    tile = str(cube.attrs.get("tile", Path(cube_path).stem))
    table = sums.table(bands)
    table.insert(0, "tile", tile)
    images = pd.DataFrame(images)
    images.insert(0, "tile", tile)
    return table, {
        "whittaker_lambda": lam,
        "lambda_holdout_rmse": lam_scores,
        "image_quality": images,
    }


def evaluate_tiles(
    tiles: dict[str, dict[str, str | Path]], checkpoint: str | Path, **kwargs
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All tiles, plus a pooled ``tile == "all"`` block (errors pooled over tiles): the
    error table and the image-quality table (``image_quality_table``)."""
    tables, lams, images = [], {}, []
    model = load_embedding_model(checkpoint)
    for tile, paths in tiles.items():
        t, info = evaluate_tile(
            paths["reconstruction"], paths["cube"], paths["truth"], model, **kwargs
        )
        tables.append(t)
        lams[tile] = info["whittaker_lambda"]
        images.append(info["image_quality"])
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
    return out, image_quality_table(pd.concat(images, ignore_index=True))


def settings_from_config(section: dict, *, window_px: int, seed: int) -> dict:
    """The keyword arguments of :func:`evaluate_tile` from the config's
    ``reconstruction_eval`` section (rule eval_reconstruction and benchmarks/seeds.py)."""
    return {
        "lambdas": [float(v) for v in section["whittaker_lambdas"]],
        "daily_stride_px": int(section["daily_stride_px"]),
        "event_window_days": float(section["event_window_days"]),
        "image_min_cloud_fraction": float(section["image_min_cloud_fraction"]),
        "window_px": int(window_px),
        "seed": int(seed),
    }


def write_reconstruction_table(
    tiles: dict[str, dict[str, str | Path]],
    checkpoint: str | Path,
    out: str | Path,
    image_quality_out: str | Path | None = None,
    **kwargs,
) -> pd.DataFrame:
    """Write the error table to ``out`` and, if given, the image-quality table."""
    table, images = evaluate_tiles(tiles, checkpoint, **kwargs)
    with atomic_path(out, replace="any") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    if image_quality_out is not None:
        with atomic_path(image_quality_out, replace="any") as tmp:
            images.to_csv(tmp, index=False, float_format="%.6g")
    return table
