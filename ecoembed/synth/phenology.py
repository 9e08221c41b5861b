"""Potential (unstressed) canopy of every parcel, day by day, with management events.

Green leaf area and standing brown (senescent, cut or dead) area per parcel. Water stress
is applied later, per pixel (state.py). Crops rotate between winter cereal and maize, are
harvested; grassland is mown two or three times a year: events that change the canopy
abruptly and are recorded as truth for the temporal-fidelity evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecoembed.synth.landscape import IGBP_CODES

HARVEST, MOWING = "harvest", "mowing"


@dataclass
class Phenology:
    green: np.ndarray  # (day, parcel) potential green LAI, m2 m-2
    brown: np.ndarray  # (day, parcel) standing senescent / dead area index
    events: pd.DataFrame  # parcel, day (index into days), date, kind, crop


def _logistic(t: np.ndarray, centre: float, rate: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-rate * (t - centre)))


def _deciduous(t: np.ndarray, rng: np.random.Generator, years: np.ndarray) -> tuple:
    g = np.zeros_like(t)
    b = np.zeros_like(t)
    for y in np.unique(years):
        m = years == y
        sos, eos, mx = rng.normal(118, 5), rng.normal(288, 6), rng.normal(5.6, 0.4)
        tt = t[m]
        leaf = _logistic(tt, sos, 0.15) - _logistic(tt, eos, 0.10)
        g[m] = 0.15 + (mx - 0.15) * leaf
        # leaves brown on the tree for a few weeks before they fall
        b[m] = mx * 0.6 * (_logistic(tt, eos - 5, 0.15) - _logistic(tt, eos + 18, 0.2))
    return g, b


def _evergreen(t: np.ndarray, rng: np.random.Generator, years: np.ndarray) -> tuple:
    g = np.zeros_like(t)
    for y in np.unique(years):
        m = years == y
        mx = rng.normal(4.3, 0.3)
        tt = t[m]
        g[m] = mx * (0.78 + 0.22 * (_logistic(tt, 125, 0.08) - _logistic(tt, 285, 0.06)))
    return g, np.zeros_like(t)


def _grass(t, rng, years, day_index, events, parcel, mow=True, max_mean=3.9) -> tuple:
    """Day-by-day regrowth so that each cut resets the canopy and it grows back logistically."""
    n = t.size
    g = np.zeros(n)
    b = np.zeros(n)
    lai, dead = 1.0, 0.5
    cut_days: set[int] = set()
    season_max = {}
    for y in np.unique(years):
        season_max[y] = max(1.5, rng.normal(max_mean, 0.4))
        if mow:
            cuts = [rng.normal(152, 7), rng.normal(203, 8)]
            if rng.random() < 0.7:
                cuts.append(rng.normal(252, 8))
            idx = np.flatnonzero(years == y)
            for c in cuts:
                hit = idx[np.argmin(np.abs(t[idx] - c))]
                cut_days.add(int(hit))
    for i in range(n):
        doy, y = t[i], years[i]
        growing = _logistic(doy, 95, 0.12) - _logistic(doy, 295, 0.08)
        cap = 1.0 + (season_max[y] - 1.0) * growing
        if i in cut_days and lai > 1.2:
            dead += 0.35 * lai
            lai = 0.5
            events.append((parcel, day_index[i], MOWING, "grass"))
        rate = 0.09 * growing + 0.004
        lai = lai + rate * lai * (1 - lai / cap) if lai < cap else lai - 0.05 * (lai - cap)
        dead = dead * 0.93 + 0.01 * max(0.0, 1 - growing)
        g[i], b[i] = lai, dead
    return g, b


def _crop_season(rng: np.random.Generator, crop: str) -> dict:
    if crop == "winter_cereal":
        return dict(
            growth=rng.normal(112, 6),
            sen=rng.normal(186, 5),
            harvest=rng.normal(212, 6),
            mx=rng.normal(5.6, 0.6),
            winter=rng.normal(0.8, 0.15),
            sow=rng.normal(285, 7),
        )
    return dict(
        emerge=rng.normal(142, 5),
        growth=rng.normal(188, 6),
        sen=rng.normal(255, 6),
        harvest=rng.normal(280, 7),
        mx=rng.normal(5.3, 0.5),
    )


def _crop(t, rng, years, day_index, events, parcel) -> tuple:
    """Rotation of winter cereal and maize; harvest removes the canopy in one day."""
    n = t.size
    g = np.zeros(n)
    b = np.zeros(n)
    ys = list(np.unique(years))
    crops = {y: ("winter_cereal" if rng.random() < 0.55 else "maize") for y in ys + [ys[-1] + 1]}
    seasons = {y: _crop_season(rng, crops[y]) for y in crops}
    for y in ys:
        m = years == y
        tt = t[m]
        s = seasons[y]
        if crops[y] == "winter_cereal":
            grow = s["winter"] + (s["mx"] - s["winter"]) * _logistic(tt, s["growth"], 0.09)
            green = grow * (1 - _logistic(tt, s["sen"], 0.14))
            total = np.maximum.accumulate(grow)
        else:
            grow = s["mx"] * _logistic(tt, s["growth"], 0.085) * (tt >= s["emerge"])
            green = grow * (1 - _logistic(tt, s["sen"], 0.09))
            total = np.maximum.accumulate(grow)
        brown = np.clip(total - green, 0, None)
        after = tt >= s["harvest"]
        stubble = 0.4 * np.exp(-(tt - s["harvest"]) / 25.0)
        green = np.where(after, 0.0, green)
        brown = np.where(after, stubble, brown)
        nxt = seasons[y + 1]
        if crops[y + 1] == "winter_cereal":  # autumn sowing for next year's cereal
            green = green + after * nxt["winter"] * _logistic(tt, nxt["sow"] + 22, 0.12)
        first_after = np.flatnonzero(after)
        if first_after.size:
            events.append((parcel, day_index[m][first_after[0]], HARVEST, crops[y]))
        g[m], b[m] = green, brown
    return g, b


def simulate_phenology(
    days: pd.DatetimeIndex, parcel_class: np.ndarray, rng: np.random.Generator
) -> Phenology:
    t = np.asarray(days.day_of_year, float)
    years = np.asarray(days.year)
    day_index = np.arange(len(days))
    n_p = parcel_class.size
    green = np.zeros((len(days), n_p), np.float32)
    brown = np.zeros((len(days), n_p), np.float32)
    events: list[tuple] = []
    for p, cls in enumerate(parcel_class):
        if cls == IGBP_CODES["DBF"]:
            g, b = _deciduous(t, rng, years)
        elif cls == IGBP_CODES["ENF"]:
            g, b = _evergreen(t, rng, years)
        elif cls == IGBP_CODES["GRA"]:
            g, b = _grass(t, rng, years, day_index, events, p)
        elif cls == IGBP_CODES["CRO"]:
            g, b = _crop(t, rng, years, day_index, events, p)
        elif cls == IGBP_CODES["URB"]:  # gardens and verges: light, unmanaged grass
            g, b = _grass(t, rng, years, day_index, events, p, mow=False, max_mean=2.0)
        else:  # water
            g = b = np.zeros_like(t)
        green[:, p], brown[:, p] = g, b
    ev = pd.DataFrame(events, columns=["parcel", "day", "kind", "crop"])
    ev["date"] = days[ev["day"].to_numpy(int)] if len(ev) else pd.DatetimeIndex([])
    return Phenology(green, brown, ev.sort_values(["day", "parcel"]).reset_index(drop=True))
