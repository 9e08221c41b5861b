"""Examples for GPP models: the input series of the preceding days at a tower, and its GPP.

For a tower and a day d, the inputs are the daily features (embedding dimensions, and with
``+met`` the tower's SW_IN_F, TA_F, VPD_F) of the ``window_days`` days ending ``lead_days``
before d, and the target is the tower's GPP on d (docs/design.md, "Evaluation protocol").
A day is an example only when its GPP passed the QC filter and every day of its window
has every feature: nothing is imputed here.

Neighbouring days' windows overlap by all but one day, so the examples are kept as one
daily series per tower (:class:`SiteSeries`) with a mask of the example days, and models
compute on the series (a causal convolution, rolling summaries) rather than on a stack of
copied windows; :func:`windows` gives the explicit stack where one is wanted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

EMBEDDING_PREFIX = "e"
SUMMARY_DAYS = (1, 7, 30)  # besides the whole window: the last day, week and month


@dataclass(frozen=True)
class SiteSeries:
    """One tower's daily inputs and GPP on one calendar, and which days are examples.

    ``target[d]`` is True when day d is an example: its GPP is known and the window of
    ``window_days`` days ending at day ``d - lead_days`` is complete.
    """

    site: str
    dates: np.ndarray  # (D,) datetime64[D], consecutive days
    x: np.ndarray  # (D, K) float32, NaN where missing
    gpp: np.ndarray  # (D,) float64, NaN where missing or QC-filtered
    target: np.ndarray  # (D,) bool
    features: tuple[str, ...]
    window_days: int
    lead_days: int

    @property
    def window_end(self) -> np.ndarray:
        """Index of the last window day of each example day (where ``target``)."""
        return np.flatnonzero(self.target) - self.lead_days

    def restrict(self, keep: np.ndarray) -> SiteSeries:
        """The same series with fewer example days (``target & keep``)."""
        return replace(self, target=self.target & np.asarray(keep, bool))


def site_features(site_embeddings: pd.DataFrame, site: str, source: str) -> pd.DataFrame:
    """One tower's daily embedding of one source (fused, s2, s1), indexed by date."""
    sel = site_embeddings[(site_embeddings["site"] == site) & (site_embeddings["source"] == source)]
    cols = [c for c in sel.columns if c.startswith(EMBEDDING_PREFIX) and c[1:].isdigit()]
    cols = [c for c in cols if sel[c].notna().any()]  # sources may have fewer dimensions
    return sel.set_index(pd.DatetimeIndex(sel["date"]).normalize())[cols].sort_index()


def complete_windows(complete: np.ndarray, window_days: int) -> np.ndarray:
    """ok[i]: days i - window_days + 1 .. i all complete (False for the first days)."""
    run = np.convolve(complete.astype(int), np.ones(window_days, int))[: complete.size]
    return run == window_days


def site_series(
    site: str,
    features: pd.DataFrame,
    gpp: pd.Series,
    *,
    window_days: int,
    lead_days: int = 0,
    days: pd.DatetimeIndex | None = None,
) -> SiteSeries:
    """Align a tower's features and GPP (both indexed by calendar day) on one calendar:
    ``days``, or every day either covers. Days missing from ``features`` count as missing
    features.
    """
    if window_days < 1 or lead_days < 0:
        raise ValueError("window_days must be >= 1 and lead_days >= 0")
    if days is None:
        days = pd.date_range(
            min(features.index.min(), gpp.index.min()),
            max(features.index.max(), gpp.index.max()),
        )
    x = features.reindex(days).to_numpy(np.float32)
    g = gpp.reindex(days).to_numpy(np.float64)
    ok_window = complete_windows(np.isfinite(x).all(axis=1), window_days)
    end = np.arange(days.size) - lead_days
    target = (end >= 0) & np.isfinite(g)
    target[target] &= ok_window[end[target]]
    return SiteSeries(
        site,
        days.values.astype("datetime64[D]"),
        x,
        g,
        target,
        tuple(str(c) for c in features.columns),
        window_days,
        lead_days,
    )


def windows(
    features: pd.DataFrame,
    gpp: pd.Series,
    *,
    window_days: int,
    lead_days: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, window_days, K) inputs, (N,) targets and (N,) dates of one tower's examples."""
    s = site_series("", features, gpp, window_days=window_days, lead_days=lead_days)
    starts = s.window_end - window_days + 1
    x = (
        np.stack([s.x[i : i + window_days] for i in starts])
        if starts.size
        else np.zeros((0, window_days, s.x.shape[1]), np.float32)
    )
    return x, s.gpp[s.target], s.dates[s.target]


def window_summaries(series: SiteSeries) -> np.ndarray:
    """(N, 4 K) per example day: the last day's features and their means over the last
    week, the last month and the whole window, for models that take a flat vector."""
    x = np.nan_to_num(series.x.astype(np.float64))
    csum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    end = series.window_end
    parts = []
    for n in (*SUMMARY_DAYS, series.window_days):
        n = min(n, series.window_days)
        parts.append((csum[end + 1] - csum[end + 1 - n]) / n)
    return np.concatenate(parts, axis=1).astype(np.float32)


def common_targets(series: list[SiteSeries]) -> np.ndarray:
    """Example days shared by several input sets of one tower (same calendar required),
    so that every input set is scored on exactly the same days."""
    first = series[0]
    for s in series[1:]:
        if s.dates.size != first.dates.size or (s.dates != first.dates).any():
            raise ValueError(f"site {first.site}: input sets cover different days")
    return np.logical_and.reduce([s.target for s in series])
