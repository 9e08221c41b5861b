"""Map figures of one tile and date: what each sensor saw beside the fused embedding, and
the cloud-free reconstruction against the synthetic truth."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from sklearn.decomposition import PCA

from ecoembed.plots.style import image_axes, scale_bar, stretch, true_colour

GROWING_SEASON = (5, 6, 7, 8, 9)
# Clear fraction of the automatically chosen scene: half cloudy shows both what the
# sensor saw and what had to be reconstructed.
SCENE_CLEAR_FRACTION = 0.5
S1_MAX_DAYS = 6  # the S1 composite is the acquisition nearest the S2 date, at most this far


def pick_scene(valid: xr.DataArray, date: str = "auto") -> int:
    """Index along ``time`` of the scene to map.

    ``date="auto"``: the growing-season date whose clear fraction is nearest one half
    (earliest on ties); otherwise the S2 date nearest ``date``. Only the cube's own clear
    mask is read, so the choice is the same on real data.
    """
    times = pd.DatetimeIndex(valid["time"].values)
    if date != "auto":
        return int(np.argmin(np.abs(times - pd.Timestamp(date))))
    clear = valid.mean(dim=("y", "x")).values
    in_season = np.isin(times.month, GROWING_SEASON)
    if not in_season.any():
        in_season[:] = True
    distance = np.where(in_season, np.abs(clear - SCENE_CLEAR_FRACTION), np.inf)
    return int(np.argmin(distance))


def s2_true_colour(s2: xr.DataArray) -> np.ndarray:
    """(y, x, 3) composite of one date's B04, B03, B02."""
    return true_colour(*(s2.sel(band=b).values for b in ("B04", "B03", "B02")))


def nearest_s1(cube: xr.Dataset, when: pd.Timestamp) -> int | None:
    """Index of the S1 acquisition nearest ``when`` within S1_MAX_DAYS, else None."""
    times = pd.DatetimeIndex(cube["time_s1"].values)
    gap = np.abs(times - when)
    i = int(np.argmin(gap))
    return i if gap[i] <= pd.Timedelta(days=S1_MAX_DAYS) else None


def s1_composite(s1: xr.DataArray) -> np.ndarray:
    """(y, x, 3): VV, VH and VV/VH (all dB), each stretched between its 2nd and 98th
    percentile: vegetation volume shows green-blue, bare soil and settlements red."""
    vv, vh = s1.sel(pol="VV").values, s1.sel(pol="VH").values
    return stretch(np.stack([vv, vh, vv - vh], axis=-1))


def embedding_pcs(embedding: xr.DataArray, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """First ``n`` principal components of one date's embedding (dim, y, x) as (y, x, n),
    stretched for display, and their explained-variance ratios."""
    dims, ny, nx = embedding.shape
    flat = embedding.values.reshape(dims, -1).T
    ok = np.isfinite(flat).all(axis=1)
    pca = PCA(n_components=n, random_state=0).fit(flat[ok])
    pcs = np.full((ny * nx, n), np.nan, np.float32)
    pcs[ok] = pca.transform(flat[ok])
    return stretch(pcs.reshape(ny, nx, n)), pca.explained_variance_ratio_


def _pixel_m(ds: xr.Dataset) -> float:
    return float(abs(ds.rio.resolution()[0]))


def _date_label(t: np.datetime64) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d")


def plot_embedding_map(cube: xr.Dataset, embeddings: xr.Dataset, date: str = "auto") -> plt.Figure:
    """S2 true colour (clouds and all), an S1 VV/VH/ratio composite and the fused
    embedding's first three principal components, side by side."""
    t = pick_scene(cube["s2_valid"], date)
    when = pd.Timestamp(cube["time"].values[t])
    clear = float(cube["s2_valid"].isel(time=t).mean())
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.1), layout="constrained")
    size = cube.sizes["x"]
    axes[0].imshow(s2_true_colour(cube["s2"].isel(time=t)), interpolation="nearest")
    image_axes(axes[0], f"Sentinel-2 true colour, {when:%Y-%m-%d}\n({clear:.0%} clear)")
    j = nearest_s1(cube, when)
    if j is None:
        axes[1].text(0.5, 0.5, f"no Sentinel-1 within {S1_MAX_DAYS} days", ha="center")
        image_axes(axes[1], "Sentinel-1")
    else:
        axes[1].imshow(s1_composite(cube["s1"].isel(time_s1=j)), interpolation="nearest")
        image_axes(
            axes[1],
            f"Sentinel-1 R: VV, G: VH, B: VV/VH\n{_date_label(cube['time_s1'].values[j])}",
        )
    e = int(np.argmin(np.abs(pd.DatetimeIndex(embeddings["time"].values) - when)))
    rgb, ratio = embedding_pcs(embeddings["embedding"].isel(time=e))
    axes[2].imshow(rgb, interpolation="nearest")
    image_axes(
        axes[2],
        f"fused embedding, PCs 1-3 as RGB\n({ratio.sum():.0%} of its variance)",
    )
    for ax in axes:
        scale_bar(ax, _pixel_m(cube), size)
    fig.suptitle(f"{cube.attrs.get('tile', '')}: one date through both sensors and the fusion")
    return fig


def rms_error(estimate: xr.DataArray, truth: xr.DataArray) -> np.ndarray:
    """(y, x) root-mean-square over bands of estimate - truth (both band, y, x)."""
    diff = estimate.transpose("band", "y", "x").values - truth.transpose("band", "y", "x").values
    return np.sqrt(np.mean(diff**2, axis=0))


def plot_reconstruction(
    cube: xr.Dataset, reconstruction: xr.Dataset, truth: xr.Dataset, date: str = "auto"
) -> plt.Figure:
    """A cloudy date as observed, its reconstruction from the fused embedding, the
    clear-sky truth, and the error map (synthetic world only: it needs the truth)."""
    t = pick_scene(cube["s2_valid"], date)
    when = pd.Timestamp(cube["time"].values[t])
    valid = cube["s2_valid"].isel(time=t).values
    recon = reconstruction["s2"].sel(time=cube["time"].values[t])
    clear_truth = truth["s2_clear"].sel(time=cube["time"].values[t]).sel(band=recon["band"].values)
    err = rms_error(recon, clear_truth)
    fig, axes = plt.subplots(1, 4, figsize=(14, 4.2), layout="constrained")
    axes[0].imshow(s2_true_colour(cube["s2"].isel(time=t)), interpolation="nearest")
    axes[0].contour(valid, levels=[0.5], colors="#D55E00", linewidths=0.6)
    image_axes(axes[0], f"observed {when:%Y-%m-%d}\n(orange: cloud and shadow outline)")
    axes[1].imshow(s2_true_colour(recon), interpolation="nearest")
    image_axes(axes[1], "fused reconstruction (clear views + embedding)")
    axes[2].imshow(s2_true_colour(clear_truth), interpolation="nearest")
    image_axes(axes[2], "truth: clear-sky reflectance")
    vmax = float(np.nanpercentile(err, 99))
    im = axes[3].imshow(err, cmap="magma", vmin=0.0, vmax=vmax, interpolation="nearest")
    under, seen = err[~valid], err[valid]
    image_axes(
        axes[3],
        "RMS error over the 10 bands\n"
        f"hidden: {_rms(under):.3f}, clear: {_rms(seen):.3f} (reflectance)",
    )
    fig.colorbar(im, ax=axes[3], shrink=0.8, label="RMS error (reflectance, unitless)")
    for ax in axes:
        scale_bar(ax, _pixel_m(cube), cube.sizes["x"])
    return fig


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2))) if values.size else float("nan")
