"""Sensor constants shared by the synthetic world, the cube builder and the STAC writers.

Pure Python on purpose: the Snakefile imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class S2Band:
    name: str
    common_name: str
    center_wavelength_um: float
    full_width_half_max_um: float
    resolution_m: int


# Sentinel-2 MSI bands kept by ecoembed (L2A surface reflectance), in cube order.
S2_BANDS: tuple[S2Band, ...] = (
    S2Band("B02", "blue", 0.490, 0.098, 10),
    S2Band("B03", "green", 0.560, 0.045, 10),
    S2Band("B04", "red", 0.665, 0.038, 10),
    S2Band("B05", "rededge071", 0.705, 0.019, 20),
    S2Band("B06", "rededge075", 0.740, 0.018, 20),
    S2Band("B07", "rededge078", 0.783, 0.028, 20),
    S2Band("B08", "nir", 0.842, 0.145, 10),
    S2Band("B8A", "nir08", 0.865, 0.033, 20),
    S2Band("B11", "swir16", 1.610, 0.143, 20),
    S2Band("B12", "swir22", 2.190, 0.242, 20),
)
S2_BAND_NAMES: tuple[str, ...] = tuple(b.name for b in S2_BANDS)
S2_SCL_RESOLUTION_M = 20

# L2A DN -> reflectance for processing baseline 04.00 and later:
# reflectance = DN * 1e-4 - 0.1  (= (DN + BOA_ADD_OFFSET) / 10000, BOA_ADD_OFFSET = -1000)
S2_SCALE = 1e-4
S2_OFFSET = -0.1
S2_NODATA = 0
# Processing baseline 04.00 (in production from 2022-01-25) added BOA_ADD_OFFSET = -1000.
BASELINE_04_START = datetime(2022, 1, 25, tzinfo=UTC)


def l2a_offset(processing_baseline: str | None, when: datetime | None) -> float:
    """Reflectance offset of L2A DNs: -0.1 from baseline 04.00 on, 0 before; by the item's
    date where it does not state its baseline (products made before and after the switch
    are mixed in public archives, so the baseline wins where known)."""
    if processing_baseline is not None:
        new = tuple(int(p) for p in str(processing_baseline).split(".")[:2]) >= (4, 0)
    else:
        new = when is not None and when >= BASELINE_04_START
    return S2_OFFSET if new else 0.0


# Element 84 Earth Search v1: True where the DNs of the COGs were already shifted by
# BOA_ADD_OFFSET when Element 84 converted them (then reflectance = DN * 1e-4), although
# their raster:bands still state offset -0.1. Its maintainers call the flag "the truth"
# where the two disagree (Element84/earth-search issue 9).
BOA_OFFSET_APPLIED = "earthsearch:boa_offset_applied"
# What decided the DN offset of an acquired item, recorded in it (ecoembed.acquire.load).
DN_OFFSET_RULE = "ecoembed:dn_offset_rule"


@dataclass(frozen=True)
class DnConvention:
    """reflectance = DN * scale + offset, and what the item said that decided it."""

    scale: float
    offset: float
    rule: str


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def l2a_dn_convention(
    properties: Mapping[str, Any], raster_band: Mapping[str, Any] | None, when: datetime | None
) -> DnConvention:
    """How to read one L2A asset's DNs, decided from what its item says, in the order a
    careful user would: the provider's explicit "offset already applied" flag, then the
    asset's ``raster:bands`` scale/offset, then the processing-baseline rule (by the
    item's date where it states no baseline).

    The scale is L2A's 1e-4 unless ``raster:bands`` states one (callers check it).
    """
    band = raster_band or {}
    scale = float(band["scale"]) if band.get("scale") is not None else S2_SCALE
    if _flag(properties.get(BOA_OFFSET_APPLIED)):
        return DnConvention(scale, 0.0, f"{BOA_OFFSET_APPLIED}: true")
    if band.get("offset") is not None or band.get("scale") is not None:
        return DnConvention(scale, round(float(band.get("offset") or 0.0), 6), "raster:bands")
    baseline = properties.get("s2:processing_baseline")
    rule = (
        f"s2:processing_baseline {baseline}"
        if baseline is not None
        else f"acquisition date (baseline 04.00 from {BASELINE_04_START:%Y-%m-%d})"
    )
    return DnConvention(scale, l2a_offset(baseline, when), rule)


def mgrs_tile(properties: Mapping[str, Any]) -> str | None:
    """The MGRS tile (e.g. ``33TWN``) of an S2 item: Planetary Computer's ``s2:mgrs_tile``,
    Earth Search's ``grid:code`` (``MGRS-33TWN``) or its ``mgrs:*`` fields; None if absent.

    The UTM zone is written with two digits, as ESA names tiles (``01WCR``, not ``1WCR``).
    """
    code = properties.get("s2:mgrs_tile")
    if code is None and str(properties.get("grid:code", "")).upper().startswith("MGRS-"):
        code = str(properties["grid:code"])[5:]
    if code is None and all(
        properties.get(k) is not None
        for k in ("mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square")
    ):
        code = "{}{}{}".format(
            properties["mgrs:utm_zone"],
            properties["mgrs:latitude_band"],
            properties["mgrs:grid_square"],
        )
    if code is None:
        return None
    m = re.fullmatch(r"(\d{1,2})([C-X])([A-Z]{2})", str(code).strip().upper())
    if m is None:
        raise ValueError(f"{code!r} is not an MGRS tile (zone, latitude band, grid square)")
    return f"{int(m[1]):02d}{m[2]}{m[3]}"


# Sen2Cor scene classification codes (ESA L2A product specification).
SCL_CLASSES: dict[int, str] = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "dark_area_pixels",
    3: "cloud_shadows",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow",
}

S1_POLARISATIONS: tuple[str, ...] = ("VV", "VH")
S1_ASSET_KEYS: tuple[str, ...] = ("vv", "vh")
S1_CENTER_FREQUENCY_GHZ = 5.405
S1_GRD_ENL = 4.4  # equivalent number of looks of IW GRD high resolution (ESA product spec)
