"""Top-of-atmosphere (extraterrestrial) shortwave radiation, FAO-56 (Allen et al. 1998).

It needs only the latitude and the day of year: the radiation a site would get without
an atmosphere. The synthetic weather scales it by cloudiness; the light-use-efficiency
baseline of the GPP evaluation uses it where the tower's measured radiation is not
allowed (the input sets without meteorology).
"""

from __future__ import annotations

import numpy as np

SOLAR_CONSTANT = 0.0820  # MJ m-2 min-1
MJ_PER_DAY_TO_W = 1e6 / 86400.0  # 1 MJ m-2 d-1 as a daily mean flux, W m-2


def extraterrestrial_radiation(doy: np.ndarray, lat_deg: float) -> np.ndarray:
    """Daily extraterrestrial radiation on a horizontal surface, MJ m-2 d-1 (FAO-56 eqs.
    21, 23-25; 0 in polar night)."""
    doy = np.asarray(doy, float)
    phi = np.deg2rad(lat_deg)
    dr = 1 + 0.033 * np.cos(2 * np.pi * doy / 365)
    decl = 0.409 * np.sin(2 * np.pi * doy / 365 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(decl), -1, 1))
    return (
        (24 * 60 / np.pi)
        * SOLAR_CONSTANT
        * dr
        * (ws * np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.sin(ws))
    )


def extraterrestrial_flux(doy: np.ndarray, lat_deg: float) -> np.ndarray:
    """The same as a daily mean flux in W m-2, the unit of FLUXNET's SW_IN_F."""
    return extraterrestrial_radiation(doy, lat_deg) * MJ_PER_DAY_TO_W
