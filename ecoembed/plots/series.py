"""Time-series figures at single pixels: do abrupt management events (harvest, mowing)
show in the fused embedding and its reconstruction within one acquisition?"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import distance_transform_edt

from ecoembed.plots.style import OBSERVED_COLOUR, OKABE_ITO, categorical

EVENT_PANELS = (("harvest", "harvested field"), ("mowing", "mown meadow"))


@dataclass(frozen=True)
class EventPixel:
    """The pixel deepest inside a managed parcel, and the parcel's events of one year."""

    kind: str
    parcel: int
    row: int
    col: int
    year: int
    events: pd.DataFrame  # date, kind, crop of this parcel in ``year``


def truth_events(truth: xr.Dataset) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.DatetimeIndex(truth["event_date"].values),
            "kind": truth["event_kind"].values.astype(object),
            "crop": truth["event_crop"].values.astype(object),
            "parcel": truth["event_parcel"].values.astype(int),
        }
    )


def pick_event_pixel(truth: xr.Dataset, kind: str) -> EventPixel:
    """The parcel with an event of ``kind`` that has the pixel farthest from its edge (no
    mixed pixels, no co-registration blur), in the year of its first such event."""
    events = truth_events(truth)
    of_kind = events[events["kind"] == kind]
    if of_kind.empty:
        raise ValueError(f"the truth holds no {kind!r} event")
    parcel_map = truth["parcel"].values
    best = None
    for parcel in np.unique(of_kind["parcel"]):
        # zero-padded: the tile's edge counts as the parcel's edge
        inside = distance_transform_edt(np.pad(parcel_map == parcel, 1))[1:-1, 1:-1]
        depth = float(inside.max())
        if best is None or depth > best[0]:
            row, col = np.unravel_index(int(np.argmax(inside)), inside.shape)
            best = (depth, int(parcel), int(row), int(col))
    _, parcel, row, col = best
    year = int(of_kind[of_kind["parcel"] == parcel]["date"].min().year)
    mine = events[(events["parcel"] == parcel) & (events["date"].dt.year == year)]
    return EventPixel(kind, parcel, row, col, year, mine.reset_index(drop=True))


def ndvi(s2: xr.DataArray) -> xr.DataArray:
    red, nir = s2.sel(band="B04"), s2.sel(band="B08")
    return (nir - red) / (nir + red)


def _in_year(ds: xr.Dataset | xr.DataArray, year: int, dim: str = "time"):
    return ds.sel({dim: slice(f"{year}-01-01", f"{year}-12-31")})


def _mark_events(ax: plt.Axes, events: pd.DataFrame, label: bool) -> None:
    for i, ev in events.iterrows():
        ax.axvline(
            ev["date"],
            color=OKABE_ITO["vermillion"],
            ls="--",
            lw=1,
            label="true event date" if label and i == 0 else None,
        )


def plot_temporal_fidelity(
    cube: xr.Dataset, embeddings: xr.Dataset, reconstruction: xr.Dataset, truth: xr.Dataset
) -> plt.Figure:
    """Per event kind: the embedding dimensions (top) and observed, reconstructed and true
    NDVI (bottom) over the event's year at one pixel, true event dates dashed."""
    fig, axes = plt.subplots(
        2, len(EVENT_PANELS), figsize=(12, 6.5), sharex="col", layout="constrained"
    )
    for c, (kind, title) in enumerate(EVENT_PANELS):
        px = pick_event_pixel(truth, kind)
        at = dict(y=px.row, x=px.col)
        emb = _in_year(embeddings["embedding"].isel(**at), px.year)
        times = pd.DatetimeIndex(emb["time"].values)
        top, bottom = axes[0, c], axes[1, c]
        for d in range(emb.sizes["dim"]):
            top.plot(times, emb.isel(dim=d).values, lw=1.2, color=categorical(d), label=f"dim {d}")
        _mark_events(top, px.events, label=False)
        crop = px.events["crop"].iloc[0]
        top.set_title(f"{title} ({crop}), parcel {px.parcel}, pixel row {px.row} col {px.col}")
        top.set_ylabel("fused embedding (unitless)")

        s2 = _in_year(cube["s2"].isel(**at), px.year)
        clear = _in_year(cube["s2_valid"].isel(**at), px.year).values
        observed = ndvi(s2).values
        recon = ndvi(_in_year(reconstruction["s2"].isel(**at), px.year)).values
        true = ndvi(_in_year(truth["s2_clear"].isel(**at), px.year)).values
        s2_times = pd.DatetimeIndex(s2["time"].values)
        bottom.plot(s2_times, true, color="black", lw=1, ls=":", label="truth (clear sky)")
        bottom.plot(s2_times, recon, color=OKABE_ITO["blue"], lw=1.5, label="reconstructed")
        bottom.plot(
            s2_times[clear],
            observed[clear],
            "o",
            ms=4,
            color=OBSERVED_COLOUR,
            label="observed, clear",
        )
        bottom.plot(
            s2_times[~clear],
            observed[~clear],
            "x",
            ms=4,
            color=OBSERVED_COLOUR,
            alpha=0.6,
            label="observed, masked (cloud)",
        )
        _mark_events(bottom, px.events, label=True)
        bottom.set_ylabel("NDVI (unitless)")
        bottom.set_xlabel(f"date ({px.year})")
        bottom.set_ylim(-0.2, 1.0)
    axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="embedding")
    axes[1, -1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for ax in axes[1]:
        ax.xaxis.set_major_formatter(plt.matplotlib.dates.DateFormatter("%b"))
    return fig
