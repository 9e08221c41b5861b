"""Sentinel-2 L2A as the sensor sees it: canopy/soil reflectance, clouds, shadows, SCL.

Reflectance is a linear mixture of endmember spectra weighted by green cover (Beer's law
on green LAI), brown cover and background (soil, forest floor or built surface); leaf
chlorophyll raises visible and red-edge reflectance as it falls, leaf water raises SWIR as
it falls, soil moisture darkens bare soil. Clouds are coherent opacity fields with thin
edges, shadows are the same fields shifted away from the sun, and the scene
classification detects only the denser part of both, as Sen2Cor does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import zoom

from ecoembed.io.sentinel import S2_BAND_NAMES, S2_OFFSET, S2_SCALE
from ecoembed.synth.fields import gaussian_field, multiscale_field
from ecoembed.synth.landscape import IGBP_CODES, Landscape
from ecoembed.synth.state import CW_HEALTHY_CM


def _spectrum(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


#                 B02    B03    B04    B05    B06    B07    B08    B8A    B11    B12
_VEG = _spectrum(0.025, 0.055, 0.025, 0.090, 0.280, 0.380, 0.420, 0.430, 0.200, 0.090)
_VEG_LOW_CAB = _spectrum(0.020, 0.060, 0.085, 0.090, 0.040, 0.010, 0.0, 0.0, 0.0, 0.0)
_VEG_DRY_LEAF = _spectrum(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.110, 0.090)
_NIR_MULTI = _spectrum(0.0, 0.0, 0.0, 0.3, 0.8, 1.0, 1.0, 1.0, 0.4, 0.2)  # canopy depth
_BROWN = _spectrum(0.060, 0.090, 0.120, 0.160, 0.220, 0.260, 0.280, 0.290, 0.380, 0.280)
_SOIL = _spectrum(0.080, 0.110, 0.140, 0.170, 0.200, 0.220, 0.240, 0.250, 0.330, 0.280)
_SOIL_WET_DARKENING = _spectrum(0.30, 0.30, 0.30, 0.30, 0.32, 0.33, 0.34, 0.34, 0.50, 0.55)
_FOREST_FLOOR = _spectrum(0.035, 0.050, 0.065, 0.080, 0.100, 0.115, 0.120, 0.125, 0.170, 0.110)
_URBAN = _spectrum(0.100, 0.120, 0.140, 0.160, 0.180, 0.190, 0.210, 0.210, 0.250, 0.220)
_WATER = _spectrum(0.050, 0.048, 0.030, 0.020, 0.012, 0.010, 0.008, 0.007, 0.003, 0.002)
_CLOUD = _spectrum(0.52, 0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.42, 0.30)

SENSOR_NOISE = 0.002  # white, per pixel
ATMOSPHERE_NOISE = 0.002  # smooth residual of the atmospheric correction, per date
TRUE_CLOUD_OPACITY = 0.03  # opacity above which a pixel counts as truly cloud/shadow
SHADOW_STRENGTH = 0.65


def surface_reflectance(
    lai: np.ndarray,
    brown: np.ndarray,
    cab: np.ndarray,
    cw: np.ndarray,
    sm_surface: np.ndarray,
    landscape: Landscape,
) -> np.ndarray:
    """Clear-sky surface reflectance (band, y, x) of one day from the land-surface state."""
    b = (slice(None), None, None)
    fc = 1.0 - np.exp(-0.5 * lai)
    fb = (1.0 - fc) * (1.0 - np.exp(-0.5 * brown))
    fs = 1.0 - fc - fb
    depth = (1.0 - np.exp(-0.35 * lai)) / (1.0 - np.exp(-0.35 * 6.0))
    cab_deficit = np.clip((45.0 - cab) / 45.0, 0.0, 1.0)
    water_deficit = np.clip((CW_HEALTHY_CM - cw) / CW_HEALTHY_CM, 0.0, 1.0)
    veg = (
        _VEG[b] * (1.0 - 0.3 * _NIR_MULTI[b] + 0.3 * _NIR_MULTI[b] * depth)
        + _VEG_LOW_CAB[b] * cab_deficit
        + _VEG_DRY_LEAF[b] * water_deficit
    )
    soil = _SOIL[b] * landscape.soil_brightness * (1.0 - _SOIL_WET_DARKENING[b] * sm_surface)
    lc = landscape.landcover
    forest = (lc == IGBP_CODES["DBF"]) | (lc == IGBP_CODES["ENF"])
    background = np.where(forest, _FOREST_FLOOR[b], soil)
    background = np.where(lc == IGBP_CODES["URB"], _URBAN[b], background)
    refl = fc * veg + fb * _BROWN[b] + fs * background
    refl = np.where(lc == IGBP_CODES["WAT"], _WATER[b] * (1.0 + 0.1 * (sm_surface - 1.0)), refl)
    return (refl * landscape.texture).astype(np.float32)


@dataclass
class CloudScene:
    opacity: np.ndarray  # (y, x) cloud opacity 0..1
    shadow: np.ndarray  # (y, x) shadow opacity 0..1 (before SHADOW_STRENGTH)
    cirrus: bool

    def truth(self) -> np.ndarray:
        """0 clear, 1 cloud, 2 cloud shadow (cloud wins where both)."""
        t = np.zeros(self.opacity.shape, np.uint8)
        t[self.shadow >= TRUE_CLOUD_OPACITY] = 2
        t[self.opacity >= TRUE_CLOUD_OPACITY] = 1
        return t


def cloud_scene(
    rng: np.random.Generator, size: int, cover: float, shift_px: tuple[int, int]
) -> CloudScene:
    """Cloud and shadow opacity for a scene whose cloud fraction is ``cover``.

    Simulated at 20 m and interpolated to 10 m (cloud fields have no 10 m detail worth the
    cost), on a padded domain so that shadows of clouds outside the tile fall into it.
    Opacity ramps from 0 at the cloud boundary to 1 within a few hundred metres: the thin
    edges are what a threshold-based mask misses.
    """
    pad = max(abs(shift_px[0]), abs(shift_px[1])) + 8
    pad += pad % 2
    full = size + 2 * pad
    coarse = (full // 2, full // 2)
    cirrus = bool(rng.random() < 0.12)
    if cirrus:  # a veil of high, thin ice cloud: wide, low opacity
        f = multiscale_field(rng, coarse, (size / 6, size / 24), (1.0, 0.4))
    else:
        f = multiscale_field(rng, coarse, (size / 12, size / 40, 1.25), (1.0, 0.45, 0.12))
    f = zoom(f, 2, order=1, grid_mode=True, mode="grid-wrap")
    if cover <= 0.002:
        opacity = np.zeros((full, full), np.float32)
    else:
        thr = np.quantile(f, 1.0 - min(cover, 0.999))
        ramp = 0.25 if cirrus else 0.6
        opacity = np.clip((f - thr) / ramp, 0.0, 1.0) ** 0.8
        if cirrus:
            opacity *= 0.22
    inner = (slice(pad, pad + size), slice(pad, pad + size))
    dy, dx = shift_px
    shadow = opacity[pad - dy : pad - dy + size, pad - dx : pad - dx + size]
    return CloudScene(opacity[inner].astype(np.float32), shadow.astype(np.float32), cirrus)


def apply_clouds(surface: np.ndarray, clouds: CloudScene) -> np.ndarray:
    """Top-of-canopy reflectance as observed: shadowed, then overlain by cloud."""
    shaded = surface * (1.0 - SHADOW_STRENGTH * clouds.shadow)[None]
    a = clouds.opacity[None]
    return (1.0 - a) * shaded + a * _CLOUD[:, None, None]


def observation_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    smooth = ATMOSPHERE_NOISE * gaussian_field(rng, shape, shape[0] / 8)
    white = rng.standard_normal((len(S2_BAND_NAMES), *shape), dtype=np.float32)
    return smooth[None] + np.float32(SENSOR_NOISE) * white


def block_mean(a: np.ndarray, k: int = 2) -> np.ndarray:
    """Aggregate the last two axes by k x k (10 m -> 20 m)."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // k, k, w // k, k).mean(axis=(-3, -1))


def scene_classification(
    observed20: np.ndarray,
    clouds: CloudScene,
    landcover20: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sen2Cor-like SCL at 20 m from 20 m quantities, with realistic omissions.

    Detection thresholds vary from scene to scene; thin cloud edges and faint shadows stay
    unflagged and are classified as the surface below them.
    """
    op = block_mean(clouds.opacity)
    sh = block_mean(clouds.shadow)
    red, nir = observed20[2], observed20[6]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    scl = np.where(ndvi > 0.4, 4, 5).astype(np.uint8)
    scl[(landcover20 == IGBP_CODES["WAT"]) & (ndvi < 0.1)] = 6
    scl[(nir < 0.04) & (scl != 6)] = 2  # dark area pixels
    t_shadow = rng.uniform(0.15, 0.30)
    scl[(sh > t_shadow) & (op < 0.05)] = 3
    if clouds.cirrus:
        scl[op > rng.uniform(0.04, 0.08)] = 10
    else:
        t_cloud = rng.uniform(0.12, 0.25)
        scl[op > t_cloud] = 8
        scl[op > 0.55] = 9
    # Commission errors: bright built-up pixels occasionally flagged as cloud.
    urban = (landcover20 == IGBP_CODES["URB"]) & (rng.random(landcover20.shape) < 0.02)
    scl[urban & (scl < 8)] = 8
    return scl


def to_dn(reflectance: np.ndarray) -> np.ndarray:
    """L2A digital numbers (baseline >= 04.00); 0 is nodata, so valid DNs start at 1."""
    dn = np.rint((reflectance - S2_OFFSET) / S2_SCALE)
    return np.clip(dn, 1, 65535).astype(np.uint16)
