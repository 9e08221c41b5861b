"""Examples for GPP models: the input series of the preceding days at a tower, and its GPP.

For a tower and a day d, the inputs are the daily features (embedding dimensions, and with
``+met`` the tower's SW_IN_F, TA_F, VPD_F) of the ``window_days`` days ending ``lead_days``
before d, and the target is the tower's GPP on d (DESIGN.md, "Evaluation protocol").
A day is an example only when its GPP passed the QC filter and every day of its window
has every feature: nothing is imputed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EMBEDDING_PREFIX = "e"


@dataclass(frozen=True)
class Examples:
    x: np.ndarray  # (N, window_days, K) float32
    y: np.ndarray  # (N,) GPP, gC m-2 d-1
    site: np.ndarray  # (N,) site id
    date: np.ndarray  # (N,) datetime64[D] of the target day
    features: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.y.size)


def site_features(site_embeddings: pd.DataFrame, site: str, source: str) -> pd.DataFrame:
    """One tower's daily embedding of one source (fused, s2, s1), indexed by date."""
    sel = site_embeddings[(site_embeddings["site"] == site) & (site_embeddings["source"] == source)]
    cols = [c for c in sel.columns if c.startswith(EMBEDDING_PREFIX) and c[1:].isdigit()]
    cols = [c for c in cols if sel[c].notna().any()]  # sources may have fewer dimensions
    return sel.set_index(pd.DatetimeIndex(sel["date"]).normalize())[cols].sort_index()


def windows(
    features: pd.DataFrame,
    gpp: pd.Series,
    *,
    window_days: int,
    lead_days: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, window_days, K) inputs, (N,) targets and (N,) dates of one tower's examples.

    features and gpp are indexed by calendar day; days missing from ``features`` count as
    missing features.
    """
    if window_days < 1 or lead_days < 0:
        raise ValueError("window_days must be >= 1 and lead_days >= 0")
    days = pd.date_range(
        min(features.index.min(), gpp.index.min()), max(features.index.max(), gpp.index.max())
    )
    f = features.reindex(days).to_numpy(np.float32)  # (D, K) with NaN for missing days
    g = gpp.reindex(days).to_numpy(np.float64)
    complete = np.isfinite(f).all(axis=1)
    # complete_windows[i]: days i - window_days + 1 .. i all complete
    run = np.convolve(complete.astype(int), np.ones(window_days, int))[: days.size]
    complete_windows = run == window_days
    target = np.arange(days.size)
    end = target - lead_days
    ok = (end >= window_days - 1) & np.isfinite(g)
    ok[ok] &= complete_windows[end[ok]]
    idx = target[ok]
    starts = end[ok] - window_days + 1
    x = (
        np.stack([f[s : s + window_days] for s in starts])
        if idx.size
        else np.zeros((0, window_days, f.shape[1]), np.float32)
    )
    return x, g[idx], days.values[idx].astype("datetime64[D]")


def build_examples(
    per_site_features: dict[str, pd.DataFrame],
    per_site_gpp: dict[str, pd.Series],
    *,
    window_days: int,
    lead_days: int = 0,
) -> Examples:
    """All towers' examples of one input set (the same feature columns at every tower)."""
    names = None
    xs, ys, sites, dates = [], [], [], []
    for site, feats in per_site_features.items():
        if names is None:
            names = tuple(feats.columns)
        elif tuple(feats.columns) != names:
            raise ValueError(f"site {site}: features {list(feats.columns)} differ from {names}")
        x, y, d = windows(feats, per_site_gpp[site], window_days=window_days, lead_days=lead_days)
        xs.append(x)
        ys.append(y)
        dates.append(d)
        sites.append(np.full(y.size, site, dtype=object))
    k = len(names or ())
    return Examples(
        np.concatenate(xs) if xs else np.zeros((0, window_days, k), np.float32),
        np.concatenate(ys) if ys else np.zeros(0),
        np.concatenate(sites) if sites else np.zeros(0, object),
        np.concatenate(dates) if dates else np.zeros(0, "datetime64[D]"),
        names or (),
    )
