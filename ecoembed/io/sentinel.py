"""Sensor constants shared by the synthetic world, the cube builder and the STAC writers.

Pure Python on purpose: the Snakefile imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


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
