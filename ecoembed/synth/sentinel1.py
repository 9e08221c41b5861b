"""Sentinel-1 IW GRD gamma0 from a water-cloud model with speckle.

Backscatter = vegetation volume term + two-way-attenuated soil term (Attema & Ulaby 1978),
with vegetation described by green + brown area and a woody part for forests (the living
parts weighted by their relative water content), the soil term driven by surface soil
moisture, roughness and incidence angle. Water is a dark specular surface, settlements are
bright double-bounce scatterers. Multiplicative gamma speckle with the equivalent number
of looks of GRD products.
"""

from __future__ import annotations

import numpy as np

from ecoembed.io.sentinel import S1_GRD_ENL
from ecoembed.synth.landscape import IGBP_CODES, Landscape

# Water-cloud parameters per polarisation: A (volume scattering), B (attenuation per unit
# vegetation), soil backscatter in dB at 38 deg as C + D * volumetric moisture.
WCM = {
    "VV": dict(A=0.22, B=0.10, C=-17.0, D=26.0, angle_slope=-0.22, water=-23.0, urban=1.0),
    "VH": dict(A=0.080, B=0.085, C=-25.0, D=15.0, angle_slope=-0.15, water=-29.0, urban=-7.5),
}
WOODY_AREA = {"DBF": 4.0, "ENF": 3.5}  # stems and branches scatter all year


def volumetric_moisture(sm_surface: np.ndarray) -> np.ndarray:
    """Relative surface-layer water -> m3 m-3 of a loam (residual 0.05, saturation 0.40)."""
    return 0.05 + 0.35 * sm_surface


def backscatter_linear(
    pol: str,
    lai: np.ndarray,
    brown: np.ndarray,
    plant_water: np.ndarray,
    sm_surface: np.ndarray,
    incidence_deg: np.ndarray,
    landscape: Landscape,
) -> np.ndarray:
    """Speckle-free gamma0 (linear power) of one acquisition."""
    p = WCM[pol]
    lc = landscape.landcover
    woody = np.zeros(lc.shape, np.float32)
    for name, area in WOODY_AREA.items():
        woody[lc == IGBP_CODES[name]] = area
    # Water in leaves and stems scales the volume term: drought-stressed plants scatter less.
    veg = (lai + woody) * plant_water + 0.4 * brown
    cos_t = np.cos(np.deg2rad(incidence_deg))
    tau2 = np.exp(-2.0 * p["B"] * veg / cos_t)
    soil_db = (
        p["C"]
        + p["D"] * volumetric_moisture(sm_surface)
        + p["angle_slope"] * (incidence_deg - 38.0)
        + landscape.roughness_db
    )
    sigma = p["A"] * (1.0 - np.exp(-0.35 * veg)) * cos_t * (1.0 - tau2) + tau2 * 10 ** (
        soil_db / 10
    )
    sigma = np.where(
        lc == IGBP_CODES["WAT"],
        10 ** ((p["water"] + 0.6 * landscape.roughness_db - 0.3 * (incidence_deg - 38.0)) / 10),
        sigma,
    )
    sigma = np.where(
        lc == IGBP_CODES["URB"], 10 ** ((p["urban"] + 2.0 * landscape.roughness_db) / 10), sigma
    )
    return sigma.astype(np.float32)


def speckle(
    rng: np.random.Generator, shape: tuple[int, ...], enl: float = S1_GRD_ENL
) -> np.ndarray:
    """Unit-mean gamma-distributed intensity speckle with ``enl`` looks."""
    return rng.gamma(enl, 1.0 / enl, shape).astype(np.float32)
