"""Per-pixel daily land-surface state: soil water, stressed canopy, leaf traits and GPP.

Two soil layers: a thin surface layer (what C-band radar sees) that wets with every shower
and dries within days, and a root-zone bucket whose capacity varies with the soil. Water
stress reaches the canopy at three speeds: the water content of leaves and stems (what
radar's volume term sees) within days, the optical leaf traits (chlorophyll, leaf water
thickness) over about two weeks, leaf area over weeks. So a drought shows in radar first
(soil and plant water) and in optical greenness later: the reason fusing the two sensors
pays off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ecoembed.synth.landscape import IGBP_CODES, Landscape
from ecoembed.synth.phenology import Phenology
from ecoembed.synth.weather import Weather

TOP_CAPACITY_MM = 12.0
STRESS_TAU_DAYS = 14.0  # leaf-area response to water stress
# Leaf water / chlorophyll response. Observed lags of vegetation indices behind soil
# moisture: 8-56 days for NDVI, 16-56 days for NDWI (Zhang et al., "Response of spectral
# vegetation indices to soil moisture in grasslands and shrublands"); an exponential
# response's mean lag is its time constant, so 12 days sits between the shortest of each.
TRAIT_TAU_DAYS = 12.0
# Plant water content (leaves and stems), what C-band volume scattering sees through the
# dielectric constant of the canopy, follows root-zone supply within days: leaf water and its
# C-band permittivity drop at the onset of stress (van Emmerik et al. 2017, IEEE GRSL 14:8-12),
# forest backscatter responds to the water of leaves and trunks first at that onset (MIMICS
# studies cited there), and microwave vegetation optical depth anomalies track root-zone soil
# moisture anomalies (Konings et al. 2021, GRL 48:e2021GL095267), whereas optical indices lag
# by weeks (above). Relative loss of plant water at full stress (beta = 0):
PLANT_WATER_TAU_DAYS = 2.0
PLANT_WATER_DROP = 0.35
BETA_WILT, BETA_FULL = 0.05, 0.45  # relative root-zone water: no uptake / unstressed

# Per class: maximum light-use efficiency (gC per MJ APAR), temperature range (deg C),
# drought sensitivity of leaf area, chlorophyll (ug cm-2) of healthy leaves.
CLASS_PARAMS: dict[str, dict[str, float]] = {
    "ENF": dict(eps=0.72, tmin=-3.0, topt=16.0, sens=0.15, cab=38.0),
    "DBF": dict(eps=1.35, tmin=-2.0, topt=15.0, sens=0.30, cab=42.0),
    "GRA": dict(eps=1.20, tmin=0.0, topt=18.0, sens=0.70, cab=40.0),
    "CRO": dict(eps=2.35, tmin=2.0, topt=24.0, sens=0.30, cab=50.0),
    "URB": dict(eps=1.20, tmin=0.0, topt=18.0, sens=0.60, cab=40.0),
    "WAT": dict(eps=0.0, tmin=0.0, topt=20.0, sens=0.0, cab=0.0),
}
VPD_LOW_HPA, VPD_HIGH_HPA = 6.5, 38.0
CW_HEALTHY_CM = 0.012  # equivalent water thickness of a healthy leaf


@dataclass
class DailyState:
    lai: np.ndarray  # (day, y, x) green leaf area index
    brown: np.ndarray  # (day, y, x) senescent / dead standing area index
    cab: np.ndarray  # (day, y, x) leaf chlorophyll, ug cm-2
    cw: np.ndarray  # (day, y, x) leaf equivalent water thickness, cm
    plant_water: np.ndarray  # (day, y, x) relative water content of leaves and stems, 0..1
    sm_surface: np.ndarray  # (day, y, x) relative water of the 0-5 cm layer, 0..1
    sm_root: np.ndarray  # (day, y, x) relative plant-available root-zone water, 0..1
    gpp: np.ndarray  # (day, y, x) gross primary production, gC m-2 d-1


def fapar(lai: np.ndarray) -> np.ndarray:
    """Beer's law with an extinction coefficient of 0.5."""
    return 0.95 * (1.0 - np.exp(-0.5 * lai))


def water_stress(sm_root: np.ndarray) -> np.ndarray:
    return np.clip((sm_root - BETA_WILT) / (BETA_FULL - BETA_WILT), 0.0, 1.0)


def _per_pixel(landscape: Landscape, key: str) -> np.ndarray:
    table = np.zeros(256, np.float32)
    for name, code in IGBP_CODES.items():
        table[code] = CLASS_PARAMS[name][key]
    return table[landscape.landcover]


def priestley_taylor_pet(sw_mj: float, ta: float) -> float:
    """Potential evapotranspiration, mm d-1 (net radiation taken as 45 % of shortwave)."""
    delta = 4098 * 0.6108 * np.exp(17.27 * ta / (ta + 237.3)) / (ta + 237.3) ** 2
    gamma = 0.066
    return max(0.0, 1.26 * delta / (delta + gamma) * 0.45 * sw_mj / 2.45)


def simulate_state(
    landscape: Landscape, phen: Phenology, weather: Weather, progress: bool = False
) -> DailyState:
    n_days = len(weather.days)
    shape = landscape.parcel.shape
    water = landscape.landcover == IGBP_CODES["WAT"]
    urban = landscape.landcover == IGBP_CODES["URB"]
    cap = np.where(urban, 0.3, 1.0) * landscape.soil_capacity_mm
    eps = _per_pixel(landscape, "eps")
    tmin = _per_pixel(landscape, "tmin")
    topt = _per_pixel(landscape, "topt")
    sens = _per_pixel(landscape, "sens")
    cab0 = _per_pixel(landscape, "cab")

    out = {
        k: np.empty((n_days, *shape), np.float32)
        for k in ("lai", "brown", "cab", "cw", "plant_water", "sm_surface", "sm_root", "gpp")
    }
    root = 0.9 * cap
    top = np.full(shape, 0.8 * TOP_CAPACITY_MM, np.float32)
    slow = np.ones(shape, np.float32)  # lagged stress memory for leaf area
    fast = np.ones(shape, np.float32)  # lagged stress memory for leaf traits
    hydraulic = np.ones(shape, np.float32)  # short stress memory for plant water
    par = weather.par
    sw_mj = weather.sw_mj
    for d in tqdm(range(n_days), desc="land surface", unit="day", disable=not progress):
        beta = water_stress(root / cap)
        slow += (beta - slow) / STRESS_TAU_DAYS
        fast += (beta - fast) / TRAIT_TAU_DAYS
        hydraulic += (beta - hydraulic) / PLANT_WATER_TAU_DAYS
        pot_g = phen.green[d][landscape.parcel] * landscape.vigour
        pot_b = phen.brown[d][landscape.parcel] * landscape.vigour
        lost = pot_g * sens * (1.0 - slow)
        lai = pot_g - lost
        brown = pot_b + 0.8 * lost
        cab = cab0 * (1.0 - 0.35 * (1.0 - fast))
        cw = CW_HEALTHY_CM * (1.0 - 0.45 * (1.0 - fast))

        # Soil water: rain fills the surface layer, overflow and drainage feed the root zone.
        pet = priestley_taylor_pet(float(sw_mj[d]), float(weather.ta[d]))
        cover = 1.0 - np.exp(-0.5 * lai)
        top = top + weather.precip[d]
        overflow = np.maximum(top - TOP_CAPACITY_MM, 0.0)
        top = np.minimum(top, TOP_CAPACITY_MM)
        evap = pet * (1.0 - cover) * 0.9 * top / TOP_CAPACITY_MM
        drain = 0.08 * top
        top = np.clip(top - evap - drain, 0.0, TOP_CAPACITY_MM)
        transp = pet * (0.15 + 0.85 * cover) * beta
        root = np.clip(root + overflow + drain - transp, 0.0, cap)

        t_scalar = np.clip((weather.ta[d] - tmin) / (topt - tmin), 0.0, 1.0)
        v_scalar = np.clip((VPD_HIGH_HPA - weather.vpd[d]) / (VPD_HIGH_HPA - VPD_LOW_HPA), 0.1, 1.0)
        gpp = eps * fapar(lai) * par[d] * t_scalar * v_scalar * beta

        out["lai"][d] = np.where(water, 0.0, lai)
        out["brown"][d] = np.where(water, 0.0, brown)
        out["cab"][d] = cab
        out["cw"][d] = cw
        out["plant_water"][d] = 1.0 - PLANT_WATER_DROP * (1.0 - hydraulic)
        out["sm_surface"][d] = np.where(water, 1.0, top / TOP_CAPACITY_MM)
        out["sm_root"][d] = np.where(water, 1.0, root / cap)
        out["gpp"][d] = np.where(water, 0.0, gpp)
    return DailyState(**out)
