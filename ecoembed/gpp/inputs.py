"""The input sets of the GPP evaluation, as daily feature tables per tower.

* ``fused``, ``s2``, ``s1``: the footprint embeddings of rule site_embeddings;
* ``s2_bands``: the cube's S2 reflectance over the same footprint pixels, each pixel's
  clear views interpolated linearly to every day (held before the first and after the
  last clear view), then footprint-weighted: the raw-band baseline;
* ``nirv_lue``: NIRv (NDVI x NIR reflectance, from those gap-filled bands, per pixel and
  then footprint-weighted) times the top-of-atmosphere shortwave radiation at the tower's
  latitude on that day (FAO-56), the light-use-efficiency baseline. Not the tower's
  SW_IN_F: that is the tower's meteorology, which only the ``+met`` sets get, so that no
  set without ``+met`` holds measured weather (with ``+met`` the model has SW_IN_F beside
  NIRv x radiation and can form the classic NIRv x SW_IN_F);
* ``oracle`` (synthetic world only): the footprint's true fAPAR (of the footprint-mean
  true LAI, as the truth stores it) and root-zone soil water, and the tower's land-cover
  class (one-hot), which sets the light-use efficiency and which any remote-sensing input
  can see. The ceiling of the comparison. Its features come from the truth and the
  world's light-use model, so they are made in ``ecoembed.evaluation.oracle`` and passed
  in as a function of the tower (this package never imports ``ecoembed.synth``).

Every set also comes as ``<set>+met``, with the tower's SW_IN_F, TA_F and VPD_F.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ecoembed.embed.dense import daily_targets
from ecoembed.embed.export import daily_range
from ecoembed.embed.sites import (
    SOURCES,
    SitePixel,
    interpolate_daily,
    site_footprint,
    site_latitude,
    weighted_series,
)
from ecoembed.gpp.dataset import site_features
from ecoembed.io.fluxnet import MET_COLUMNS, read_daily_gpp
from ecoembed.io.names import MET_SUFFIX
from ecoembed.io.solar import extraterrestrial_flux
from ecoembed.io.timeaxis import day_dates, day_numbers

log = logging.getLogger(__name__)

EMBEDDING_SETS = SOURCES  # the towers' series: fused, then one per sensor
INPUT_SETS = (*EMBEDDING_SETS, "s2_bands", "nirv_lue", "oracle")


def read_flux(
    flux_paths: Mapping[str, str | Path], *, partitioning: str, min_qc: float
) -> dict[str, pd.DataFrame]:
    """Each tower's daily GPP (QC-filtered) and meteorology, indexed by calendar day.

    A tower without a day of GPP is an error here (read_daily_gpp), not a tower that
    drops out of the evaluation unnoticed; the rules that collect the flux files check
    the same earlier, for the config's partitioning and min_qc.
    """
    out = {}
    for site, path in flux_paths.items():
        df = read_daily_gpp(path, partitioning=partitioning, min_qc=min_qc, site=site)
        df.index = pd.DatetimeIndex(df.index).normalize()
        out[site] = df
    return out


def located_sites(table: pd.DataFrame) -> list[SitePixel]:
    """The towers inside a tile, from rule site_embeddings' site table."""
    inside = table[table["status"] == "inside"]
    return [
        SitePixel(str(r.site), str(r.tile), int(r.row), int(r.col))
        for r in inside.itertuples(index=False)
    ]


@dataclass(frozen=True)
class FootprintReflectance:
    """A tower's footprint pixels' daily S2 reflectance, each pixel's clear views
    interpolated linearly in time, read once for both reflectance-based input sets."""

    daily: np.ndarray  # (D, band, pixel)
    weights: np.ndarray  # (pixel,)
    days: np.ndarray  # (D,) day numbers
    bands: list[str]

    def band_series(self) -> pd.DataFrame:
        """Footprint-weighted daily reflectance of every band (``s2_bands``)."""
        return _daily_frame(weighted_series(self.daily, self.weights), self.days, self.bands)

    def nirv(self) -> pd.Series:
        """Daily footprint NIRv = NDVI x B08, per pixel, then weighted (``nirv_lue``)."""
        red = self.daily[:, self.bands.index("B04")]
        nir = self.daily[:, self.bands.index("B08")]
        with np.errstate(invalid="ignore", divide="ignore"):
            nirv = (nir - red) / (nir + red) * nir
        frame = _daily_frame(weighted_series(nirv[:, None, :], self.weights), self.days, ["NIRv"])
        return frame["NIRv"]


def footprint_reflectance(
    cube: xr.Dataset, site: SitePixel, *, radius_m: float, stride_px: int
) -> FootprintReflectance:
    fp = site_footprint(cube, site, radius_m=radius_m, stride_px=stride_px)
    rows = xr.DataArray(site.row + fp.dr, dims="pixel")
    cols = xr.DataArray(site.col + fp.dc, dims="pixel")
    s2 = cube["s2"].isel(y=rows, x=cols).transpose("time", "pixel", "band").values
    clear = cube["s2_valid"].isel(y=rows, x=cols).transpose("time", "pixel").values
    clear = clear & np.isfinite(s2).all(axis=2)
    s2_days = day_numbers(cube["time"].values)
    days = daily_targets(s2_days, *daily_range(cube)).days
    bands = [str(b) for b in cube["band"].values]
    return FootprintReflectance(
        interpolate_daily(s2, clear, s2_days, days), fp.weights, days, bands
    )


def _daily_frame(values: np.ndarray, days: np.ndarray, columns) -> pd.DataFrame:
    index = pd.DatetimeIndex(day_dates(days), name="date")
    return pd.DataFrame(values, index=index, columns=[str(c) for c in columns])


def nirv_lue_features(nirv: pd.Series, lat_deg: float) -> pd.DataFrame:
    """NIRv x top-of-atmosphere shortwave radiation (W m-2, daily mean): epsilon x fAPAR x
    radiation with NIRv for fAPAR and no measured weather."""
    toa = extraterrestrial_flux(np.asarray(nirv.index.day_of_year), lat_deg)
    return (nirv * toa).to_frame("NIRv_SW_TOA")


def base_input_sets(
    site_embeddings: pd.DataFrame,
    site_table: pd.DataFrame,
    cubes: Mapping[str, xr.Dataset],
    flux: Mapping[str, pd.DataFrame],
    *,
    names: list[str],
    oracle: Callable[[SitePixel], pd.DataFrame] | None,
    radius_m: float,
    stride_px: int,
) -> dict[str, dict[str, pd.DataFrame]]:
    """input set -> tower -> daily features (without meteorology), for every tower inside
    a tile that has a flux file. ``oracle`` needs ``oracle`` (tower -> its features, from
    the truth: ``ecoembed.evaluation.oracle.truth_oracle``)."""
    unknown = set(names) - set(INPUT_SETS)
    if unknown:
        raise ValueError(f"unknown input sets {sorted(unknown)}; known: {list(INPUT_SETS)}")
    if "oracle" in names and oracle is None:
        raise ValueError("input set 'oracle' needs the synthetic world's truth stores")
    located = located_sites(site_table)
    for s in located:
        if s.site not in flux:
            log.warning("site %s has embeddings but no flux file: left out", s.site)
    sets: dict[str, dict[str, pd.DataFrame]] = {name: {} for name in names}
    for s in (s for s in located if s.site in flux):
        cube = cubes.get(s.tile)
        refl = None  # read once per tower for s2_bands and nirv_lue
        for name in names:
            if cube is None and name in ("s2_bands", "nirv_lue"):
                raise ValueError(f"input set {name} needs the cube of tile {s.tile}")
            if name in EMBEDDING_SETS:
                feats = site_features(site_embeddings, s.site, name)
            elif name in ("s2_bands", "nirv_lue"):
                refl = refl or footprint_reflectance(
                    cube, s, radius_m=radius_m, stride_px=stride_px
                )
                if name == "s2_bands":
                    feats = refl.band_series()
                else:
                    feats = nirv_lue_features(refl.nirv(), site_latitude(cube, s))
            else:
                feats = oracle(s)
            sets[name][s.site] = feats
    return sets


def add_met_sets(
    base: Mapping[str, Mapping[str, pd.DataFrame]], flux: Mapping[str, pd.DataFrame]
) -> dict[str, dict[str, pd.DataFrame]]:
    """Every set as it is and as ``<set>+met``: its features joined with the tower's
    SW_IN_F, TA_F, VPD_F."""
    out = {name: dict(per_site) for name, per_site in base.items()}
    for name, per_site in base.items():
        out[name + MET_SUFFIX] = {
            site: feats.join(flux[site][list(MET_COLUMNS)], how="left")
            for site, feats in per_site.items()
        }
    return out


# --- the table rule gpp_inputs writes: one row per tower and day, "<set>:<feature>" columns


def inputs_table(
    base: Mapping[str, Mapping[str, pd.DataFrame]], flux: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    frames = []
    for site in sorted(flux):
        parts = [
            per_site[site].add_prefix(f"{name}:")
            for name, per_site in base.items()
            if site in per_site
        ]
        if not parts:
            continue
        f = flux[site][["GPP", *MET_COLUMNS]].add_prefix("flux:")
        df = pd.concat([*parts, f], axis=1).sort_index()
        df.index.name = "date"
        frames.append(df.reset_index().assign(site=site))
    table = pd.concat(frames, ignore_index=True)
    return table[["site", "date", *[c for c in table.columns if c not in ("site", "date")]]]


def split_inputs_table(
    table: pd.DataFrame,
) -> tuple[dict[str, dict[str, pd.DataFrame]], dict[str, pd.DataFrame]]:
    """Back from :func:`inputs_table` to (input set -> site -> features, site -> flux)."""
    base: dict[str, dict[str, pd.DataFrame]] = {}
    flux = {}
    for site, g in table.groupby("site", sort=True):
        g = g.set_index(pd.DatetimeIndex(g["date"]).normalize())
        names = dict.fromkeys(c.split(":", 1)[0] for c in g.columns if ":" in c)
        for name in names:
            cols = [c for c in g.columns if c.startswith(f"{name}:")]
            part = g[cols].rename(columns=lambda c: c.split(":", 1)[1])
            if name == "flux":
                flux[site] = part
            else:
                base.setdefault(name, {})[site] = part.dropna(how="all")
    return base, flux
