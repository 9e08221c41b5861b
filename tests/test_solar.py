"""Top-of-atmosphere radiation (FAO-56), against the worked example of the FAO-56 text."""

from __future__ import annotations

import numpy as np
import pytest

from ecoembed.io.solar import extraterrestrial_flux, extraterrestrial_radiation


def test_fao56_example_8():
    # FAO-56, Example 8: 20 deg S on 3 September (day 246): Ra = 32.2 MJ m-2 d-1
    assert extraterrestrial_radiation(np.array([246]), -20.0)[0] == pytest.approx(32.2, abs=0.05)


def test_seasons_and_polar_night():
    ra = extraterrestrial_radiation(np.array([172, 355]), 51.0)  # solstices at 51 deg N
    assert ra[0] > 5 * ra[1] > 0
    assert extraterrestrial_radiation(np.array([355]), 80.0)[0] == pytest.approx(0.0, abs=1e-9)


def test_flux_is_the_daily_mean_in_watts():
    doy = np.arange(1, 366)
    np.testing.assert_allclose(
        extraterrestrial_flux(doy, 51.0) * 86400 / 1e6, extraterrestrial_radiation(doy, 51.0)
    )
