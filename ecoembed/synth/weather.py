"""Regional daily weather: radiation, cloudiness, temperature, humidity and rain.

One weather series serves every tile (they are a few km apart). Cloudiness is the same
quantity that later decides the Sentinel-2 scene cloud cover, so rainy, dull days are the
days optical views are lost, as in reality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ecoembed.io.rng import stream
from ecoembed.io.solar import extraterrestrial_radiation


@dataclass
class Weather:
    days: pd.DatetimeIndex
    cloudiness: np.ndarray  # 0..1, fraction of the sky covered at the S2 overpass
    sw_in: np.ndarray  # W m-2, daily mean shortwave incoming radiation
    ta: np.ndarray  # deg C, daily mean air temperature
    vpd: np.ndarray  # hPa, daily mean vapour pressure deficit
    precip: np.ndarray  # mm d-1
    drought: np.ndarray  # bool: day inside the imposed drought

    @property
    def par(self) -> np.ndarray:
        """Photosynthetically active radiation, MJ m-2 d-1 (48 % of shortwave)."""
        return 0.48 * self.sw_in * 0.0864

    @property
    def sw_mj(self) -> np.ndarray:
        return self.sw_in * 0.0864


def saturation_vapour_pressure_hpa(ta: np.ndarray) -> np.ndarray:
    return 6.108 * np.exp(17.27 * ta / (ta + 237.3))


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Unit-variance AR(1) series: weather anomalies persist for a few days."""
    e = rng.standard_normal(n) * np.sqrt(1 - phi**2)
    out = np.empty(n)
    out[0] = rng.standard_normal()
    for i in range(1, n):
        out[i] = phi * out[i - 1] + e[i]
    return out


def _yearly_uniform_ranks(z: np.ndarray, years: np.ndarray) -> np.ndarray:
    u = np.empty_like(z)
    for y in np.unique(years):
        m = years == y
        u[m] = (stats.rankdata(z[m]) - 0.5) / m.sum()
    return u


def drought_mask(days: pd.DatetimeIndex, enabled: bool) -> np.ndarray:
    """Summer (June to August) of the last simulated year."""
    if not enabled:
        return np.zeros(len(days), bool)
    last = days.year.max()
    return np.asarray((days.year == last) & (days.month >= 6) & (days.month <= 8))


def simulate_weather(
    days: pd.DatetimeIndex, lat_deg: float, cloud_cover_mean: float, drought: bool, seed: int
) -> Weather:
    rng = stream(seed, "weather")
    n = len(days)
    doy = np.asarray(days.day_of_year, float)
    season = np.cos(2 * np.pi * (doy - 15) / 365.25)  # +1 mid-January, -1 mid-July
    dry = drought_mask(days, drought)

    # Cloudiness: a seasonal climatology (duller winters) with persistent weather regimes,
    # drawn from a U-shaped beta distribution (many clear and many overcast days) whose mean
    # is the climatology, so scene cloud cover averages to cloud_cover_mean.
    # The persistent AR(1) driver is rank-normalised within each year, so every year samples
    # the whole distribution once (a fair year, not a lucky one) while keeping its spells.
    clim = np.clip(cloud_cover_mean + 0.12 * season, 0.03, 0.97)
    u = _yearly_uniform_ranks(ar1(rng, n, 0.6), np.asarray(days.year))
    k = 1.6
    cloudiness = stats.beta.ppf(u, clim * k, (1 - clim) * k)
    cloudiness = np.where(dry, cloudiness * 0.75, cloudiness)

    ra = extraterrestrial_radiation(doy, lat_deg)
    sw_mj = ra * (0.25 + 0.50 * (1 - cloudiness))  # Angstrom-Prescott, a=0.25, b=0.50
    sw_in = sw_mj / 0.0864

    t_anom = ar1(rng, n, 0.8)
    ta = 9.5 - 9.0 * season + 2.8 * t_anom + 3.0 * (0.5 - cloudiness) * (1 - season) / 2
    ta = np.where(dry, ta + 2.5, ta)
    rh = np.clip(
        0.62 + 0.28 * cloudiness + 0.08 * season + 0.05 * rng.standard_normal(n), 0.3, 0.98
    )
    rh = np.where(dry, rh - 0.12, rh)
    vpd = saturation_vapour_pressure_hpa(ta) * (1 - np.clip(rh, 0.15, 0.98))

    # Rain falls on cloudy days; amounts exponential, about 700 mm a year.
    p_wet = np.clip((cloudiness - 0.3) / 0.6, 0, 1) ** 1.1
    wet = rng.random(n) < p_wet
    amount = rng.exponential(1.0, n) * 5.0 * (1.0 - 0.4 * season)  # heavier summer showers
    precip = np.where(wet, amount, 0.0)
    precip = np.where(dry, precip * 0.3, precip)

    return Weather(
        days,
        cloudiness.astype(np.float32),
        sw_in.astype(np.float32),
        ta.astype(np.float32),
        vpd.astype(np.float32),
        precip.astype(np.float32),
        dry,
    )
