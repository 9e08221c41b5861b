"""The GPP input sets: footprint bands gap-filled per pixel, NIRv, the oracle, the table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from pyproj import Transformer

from ecoembed.embed.sites import SitePixel
from ecoembed.evaluation.oracle import oracle_features, truth_oracle
from ecoembed.gpp.inputs import (
    add_met_sets,
    base_input_sets,
    footprint_reflectance,
    inputs_table,
    split_inputs_table,
)
from ecoembed.io.solar import extraterrestrial_radiation

BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
T0 = np.datetime64("2022-01-01T10:00")


def small_cube(seed=0, n=11):
    """Reflectance linear in time per pixel (so linear gap-filling is exact), some clouds."""
    rng = np.random.default_rng(seed)
    times = T0 + np.arange(5) * np.timedelta64(10, "D")
    base = rng.uniform(0.05, 0.4, (len(BANDS), n, n))
    slope = rng.uniform(-0.004, 0.004, (len(BANDS), n, n))
    t = np.arange(5) * 10.0
    s2 = base[None] + slope[None] * t[:, None, None, None]
    valid = np.ones((5, n, n), bool)
    valid[2, 5, 6] = False  # a cloudy neighbour
    valid[3, 5, 5] = False  # the tower pixel under a cloud
    s2[3, :, 5, 5] = np.nan  # what a cloud leaves: nothing to trust
    cube = xr.Dataset(
        {
            "s2": (("time", "band", "y", "x"), s2.astype(np.float32)),
            "s2_valid": (("time", "y", "x"), valid),
            "s1": (("time_s1", "pol", "y", "x"), np.zeros((2, 2, n, n), np.float32)),
        },
        coords={
            "time": times,
            "time_s1": T0 + np.array([2, 30]) * np.timedelta64(1, "D"),
            "band": BANDS,
            "pol": ["VV", "VH"],
            "y": 5_000_005.0 - 10.0 * np.arange(n),
            "x": 600_005.0 + 10.0 * np.arange(n),
        },
    ).rio.write_crs(32632)
    return cube, base, slope


def hand_weights(radius_m=30.0):
    """Gaussian (sigma radius/3) over the pixels within the radius, by hand."""
    w = np.zeros((7, 7))
    for i in range(7):
        for j in range(7):
            d2 = ((i - 3) ** 2 + (j - 3) ** 2) * 100.0
            if d2 <= radius_m**2:
                w[i, j] = np.exp(-0.5 * d2 / (radius_m / 3) ** 2)
    return w / w.sum()


def test_footprint_bands_gap_fill_each_pixel_then_weight():
    cube, base, slope = small_cube()
    site = SitePixel("XX-A", "tile00", 5, 5)
    refl = footprint_reflectance(cube, site, radius_m=30.0, stride_px=1)
    bands = refl.band_series()
    assert list(bands.columns) == BANDS
    assert bands.index[0] == pd.Timestamp("2022-01-01") and len(bands) == 41
    w = hand_weights()
    win = (slice(None), slice(2, 9), slice(2, 9))
    for day in (0, 17, 30, 40):  # an S2 day, a day between, the cloudy day, the last day
        tau = day + (0.0 if day % 10 == 0 else 2.0 / 24)  # S2 at 10:00, others at noon
        expected = ((base + slope * tau)[win] * w).sum(axis=(1, 2))
        np.testing.assert_allclose(bands.iloc[day].to_numpy(), expected, rtol=1e-5)
    # NIRv from the gap-filled bands of each pixel, then weighted
    nirv = refl.nirv()
    red = (base[2] + slope[2] * 17.0833333)[win[1:]]
    nir = (base[6] + slope[6] * 17.0833333)[win[1:]]
    assert nirv.iloc[17] == pytest.approx(((nir - red) / (nir + red) * nir * w).sum(), rel=1e-4)


def test_nirv_lue_is_nirv_times_top_of_atmosphere_radiation_not_the_towers():
    cube, _, _ = small_cube()
    site = SitePixel("XX-A", "tile00", 5, 5)
    table = pd.DataFrame(
        [{"site": "XX-A", "tile": "tile00", "row": 5, "col": 5, "status": "inside"}]
    )
    days = pd.date_range("2022-01-01", periods=41)

    def nirv_lue(sw_in):
        flux = {"XX-A": pd.DataFrame({"GPP": 1.0, "SW_IN_F": sw_in}, index=days)}
        sets = base_input_sets(
            pd.DataFrame(), table, {"tile00": cube}, flux,
            names=["nirv_lue"], oracle=None, radius_m=30.0, stride_px=1,
        )  # fmt: skip
        return sets["nirv_lue"]["XX-A"]["NIRv_SW_TOA"]

    got = nirv_lue(np.full(41, 100.0))
    pd.testing.assert_series_equal(got, nirv_lue(np.linspace(0, 400, 41)))  # no SW_IN_F in it
    # the latitude of the tower pixel's centre (its x and y coordinates, UTM 32N)
    x, y = float(cube["x"][5]), float(cube["y"][5])
    lat = Transformer.from_crs(32632, 4326, always_xy=True).transform(x, y)[1]
    toa = extraterrestrial_radiation(days.day_of_year.to_numpy(), lat) * 1e6 / 86400
    nirv = footprint_reflectance(cube, site, radius_m=30.0, stride_px=1).nirv()
    np.testing.assert_allclose(got.to_numpy(), nirv.to_numpy() * toa, rtol=1e-6)


def test_footprint_is_cut_at_the_tile_edge():
    cube, base, _ = small_cube(n=11)
    corner = footprint_reflectance(
        cube, SitePixel("XX-B", "t", 0, 0), radius_m=30.0, stride_px=1
    ).band_series()
    w = hand_weights()[3:, 3:]
    expected = (base[:, :4, :4] * w).sum(axis=(1, 2)) / w.sum()
    np.testing.assert_allclose(corner.iloc[0].to_numpy(), expected, rtol=1e-5)


def truth_store():
    days = pd.date_range("2022-01-01", periods=4)
    return xr.Dataset(
        {
            "site_lai": (("site", "day"), [[0.0, 1.0, 2.0, 4.0], [3.0, 3.0, 3.0, 3.0]]),
            "site_sm_root": (("site", "day"), [[0.5, 0.4, 0.3, 0.2], [1.0, 1.0, 1.0, 1.0]]),
            "site_igbp": (("site",), ["CRO", "ENF"]),
        },
        coords={"site": ["XX-C01", "XX-E02"], "day": days},
    )


def test_oracle_is_true_fapar_soil_water_and_class():
    df = oracle_features(truth_store(), "XX-C01", ["CRO", "DBF", "ENF"])
    np.testing.assert_allclose(df["fapar"], 0.95 * (1 - np.exp(-0.5 * np.array([0, 1, 2, 4.0]))))
    np.testing.assert_allclose(df["sm_root"], [0.5, 0.4, 0.3, 0.2])
    assert (df["igbp_CRO"] == 1).all() and (df[["igbp_DBF", "igbp_ENF"]] == 0).all().all()


def test_oracle_set_is_the_truth_of_each_towers_tile_with_every_tiles_classes():
    other = truth_store().assign_coords(site=["XX-D03", "XX-G04"])
    other["site_igbp"] = ("site", ["DBF", "GRA"])
    truths = {"tile00": truth_store(), "tile01": other}
    table = pd.DataFrame(
        [
            {"site": "XX-E02", "tile": "tile00", "row": 5, "col": 5, "status": "inside"},
            {"site": "XX-D03", "tile": "tile01", "row": 5, "col": 5, "status": "inside"},
        ]
    )
    days = pd.date_range("2022-01-01", periods=4)
    flux = {s: pd.DataFrame({"GPP": 1.0}, index=days) for s in ("XX-E02", "XX-D03")}
    sets = base_input_sets(
        pd.DataFrame(), table, {}, flux,
        names=["oracle"], oracle=truth_oracle(truths), radius_m=30.0, stride_px=1,
    )  # fmt: skip
    classes = ["CRO", "DBF", "ENF", "GRA"]
    for site, tile in (("XX-E02", "tile00"), ("XX-D03", "tile01")):
        pd.testing.assert_frame_equal(
            sets["oracle"][site], oracle_features(truths[tile], site, classes)
        )
    assert sets["oracle"]["XX-D03"]["igbp_DBF"].eq(1).all()


def test_input_sets_are_checked():
    with pytest.raises(ValueError, match="unknown input sets"):
        base_input_sets(
            pd.DataFrame(),
            pd.DataFrame(),
            {},
            {},
            names=["ndvi"],
            oracle=None,
            radius_m=30,
            stride_px=1,
        )
    with pytest.raises(ValueError, match="oracle"):
        base_input_sets(
            pd.DataFrame(),
            pd.DataFrame(),
            {},
            {},
            names=["oracle"],
            oracle=None,
            radius_m=30,
            stride_px=1,
        )


def test_inputs_table_round_trip_and_met():
    days = pd.date_range("2022-01-01", periods=5)
    flux = {
        s: pd.DataFrame(
            {
                "GPP": np.arange(5.0) + k,
                "NEE_VUT_REF_QC": 1.0,
                "SW_IN_F": 200.0 + k,
                "TA_F": 10.0,
                "VPD_F": 5.0,
            },
            index=days,
        )
        for k, s in enumerate(["A", "B"])
    }
    base = {
        "fused": {
            s: pd.DataFrame(
                {"e0": np.arange(6.0), "e1": 1.0}, index=pd.date_range("2021-12-31", periods=6)
            )
            for s in flux
        },
        "nirv_lue": {s: pd.DataFrame({"NIRv_SW_TOA": np.ones(5)}, index=days) for s in flux},
    }
    table = inputs_table(base, flux)
    assert list(table.columns[:2]) == ["site", "date"] and "fused:e0" in table
    back_base, back_flux = split_inputs_table(table)
    pd.testing.assert_frame_equal(
        back_base["fused"]["B"], base["fused"]["B"], check_names=False, check_freq=False
    )
    np.testing.assert_array_equal(back_flux["B"]["GPP"].dropna(), np.arange(5.0) + 1)
    sets = add_met_sets(back_base, back_flux)
    assert set(sets) == {"fused", "fused+met", "nirv_lue", "nirv_lue+met"}
    met = sets["fused+met"]["B"]
    assert list(met.columns) == ["e0", "e1", "SW_IN_F", "TA_F", "VPD_F"]
    assert np.isnan(met["SW_IN_F"].iloc[0]) and met["SW_IN_F"].iloc[1] == 201.0
