"""The reconstruction evaluation's subsets where fusion must pay (after unseen cuts, by
cloud-gap length) and its image-quality measures, on constructed arrays with a known
answer (ecoembed.evaluation.reconstruction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ecoembed.evaluation.reconstruction import (
    GAP_EDGE,
    GAP_SUBSETS,
    UNSEEN_EVENT,
    ErrorSums,
    cut_events,
    gap_subsets,
    image_quality,
    image_quality_table,
    psnr_db,
    sam_deg,
    score,
    ssim_mean,
    unseen_event_mask,
)
from ecoembed.io.timeaxis import day_numbers

DAYS = np.arange(0.0, 100.0, 5.0) + 0.44  # S2 dates every 5 days, at 10:30


def series(*clear_days: list[float], n: int = DAYS.size) -> np.ndarray:
    """(T, 1, P) clear-view masks, one pixel per list of clear days (whole days of DAYS)."""
    valid = np.zeros((n, 1, len(clear_days)), bool)
    for p, cd in enumerate(clear_days):
        valid[np.isin(np.floor(DAYS[:n]), cd), 0, p] = True
    return valid


# --- after_unseen_event ---------------------------------------------------------------


def test_an_event_hidden_by_cloud_is_in_after_unseen_event_and_a_seen_one_is_not():
    # pixel 0 (parcel 1): clear on 0, 5, 10, then never again; harvest on day 12
    # pixel 1 (parcel 1): clear on 0, 5, 10 and 20: the event is seen on day 20
    # pixel 2 (parcel 2): mown on day 10 and clear that very day: seen
    # pixel 3 (parcel 3): no event
    valid = series([0, 5, 10], [0, 5, 10, 20], [0, 10], [0])
    parcel = np.array([[1, 1, 2, 3]])
    mask = unseen_event_mask(valid, DAYS, parcel, np.array([12.0, 10.0]), np.array([1, 2]), 28)
    got = {p: np.floor(DAYS[mask[:, 0, p]]).tolist() for p in range(4)}
    # 15..40: after the event (12) and within 28 days of it (45 - 12 = 33 > 28)
    assert got[0] == [15, 20, 25, 30, 35, 40]
    assert got[1] == [15]  # 20 is clear (it sees the cut), 25.. come after that view
    assert got[2] == [] and got[3] == []
    # a later event on the same parcel starts its own window
    mask2 = unseen_event_mask(valid, DAYS, parcel, np.array([12.0, 60.0]), np.array([1, 1]), 28)
    assert np.floor(DAYS[mask2[:, 0, 0]]).tolist() == [
        15,
        20,
        25,
        30,
        35,
        40,
        60,
        65,
        70,
        75,
        80,
        85,
    ]
    # the window length is the config's
    mask3 = unseen_event_mask(valid, DAYS, parcel, np.array([12.0]), np.array([1]), 10)
    assert np.floor(DAYS[mask3[:, 0, 0]]).tolist() == [15, 20]


def test_cut_events_take_harvest_and_mowing_only():
    truth = xr.Dataset(
        {
            "event_date": ("event", pd.to_datetime(["2022-03-01", "2022-07-15", "2022-08-01"])),
            "event_kind": ("event", np.array(["mowing", "sowing", "harvest"])),
            "event_parcel": ("event", np.array([4, 5, 6], np.int32)),
        }
    )
    days, parcels = cut_events(truth)
    assert parcels.tolist() == [4, 6]
    np.testing.assert_array_equal(
        days, day_numbers(pd.to_datetime(["2022-03-01", "2022-08-01"]).values)
    )
    # zarr 3 reads the kinds back as numpy's variable-width strings
    if hasattr(np.dtypes, "StringDType"):
        kinds = truth["event_kind"].values.astype(np.dtypes.StringDType())
        assert cut_events(truth.assign(event_kind=("event", kinds)))[1].tolist() == [4, 6]
    days, parcels = cut_events(xr.Dataset())
    assert days.size == 0 and parcels.size == 0


# --- cloud-gap length -----------------------------------------------------------------


def test_gap_lengths_of_a_constructed_mask_land_in_their_bins():
    valid = series(
        [5, 15, 35, 85],  # hidden 0 (edge), 10 (gap 10), 20-30 (20), 40-80 (50), 90, 95 (edge)
        [0, 30],  # 5-25: gap 30; after 30: edge
        [0, 90],  # 5-85: gap 90
        [],  # never clear: every date at the edge
    )
    subsets = gap_subsets(valid, DAYS)
    assert set(subsets) == set(GAP_SUBSETS)

    def dates(name, p):
        return np.floor(DAYS[subsets[name][:, 0, p]]).astype(int).tolist()

    assert dates(GAP_EDGE, 0) == [0, 90, 95]
    assert dates("gap_le10d", 0) == [10]
    assert dates("gap_11-20d", 0) == [20, 25, 30]
    assert dates("gap_41-80d", 0) == list(range(40, 85, 5))
    assert dates("gap_21-40d", 1) == [5, 10, 15, 20, 25]
    assert dates(GAP_EDGE, 1) == list(range(35, 100, 5))
    assert dates("gap_gt80d", 2) == list(range(5, 90, 5))
    assert dates(GAP_EDGE, 3) == list(range(0, 100, 5))
    # every hidden pixel-date in exactly one bin, no clear one in any
    count = sum(m.astype(int) for m in subsets.values())
    np.testing.assert_array_equal(count, (~valid).astype(int))


def test_new_subsets_are_scored_on_their_pixel_dates():
    valid = series([0, 10], [0, 5, 10])
    truth = np.zeros((DAYS.size, 1, 1, 2), np.float32)
    pred = truth.copy()
    pred[1, 0, 0, 0] = 0.3  # the only hidden date of a 10-day gap
    subsets = {UNSEEN_EVENT: np.zeros_like(valid), **gap_subsets(valid, DAYS)}
    subsets[UNSEEN_EVENT][1, 0, 0] = True
    sums = ErrorSums()
    score(sums, "s2_dates", {"fused": pred, "linear": truth}, truth, subsets, ["B04"])
    t = sums.table(["B04"]).set_index(["subset", "method", "band"])
    assert t.loc[("gap_le10d", "fused", "B04"), "rmse"] == pytest.approx(0.3)
    assert t.loc[("gap_le10d", "fused", "B04"), "n"] == 1
    assert t.loc[(UNSEEN_EVENT, "fused", "all"), "rmse"] == pytest.approx(0.3)
    assert t.loc[(UNSEEN_EVENT, "linear", "all"), "rmse"] == 0
    # pixel 1 is hidden from day 15 on (edge), pixel 0 too: 2 x 17 pixel-dates
    assert t.loc[(GAP_EDGE, "fused", "B04"), "n"] == 2 * (DAYS.size - 3)


# --- image quality --------------------------------------------------------------------


def test_psnr_of_a_constant_error_over_the_cloud_covered_pixels():
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.0, 0.5, (3, 8, 8))
    mask = np.zeros((8, 8), bool)
    mask[2:5, 1:6] = True
    pred = truth + 0.01
    pred[:, ~mask] += 0.3  # errors outside the cloud do not count
    assert psnr_db(pred, truth, mask) == pytest.approx(40.0)
    assert psnr_db(truth - 0.1, truth, mask) == pytest.approx(20.0)
    assert psnr_db(truth, truth, mask) == np.inf


def test_sam_of_known_spectra():
    mask = np.ones((1, 2), bool)
    truth = np.array([[[1.0, 0.2]], [[0.0, 0.4]], [[0.0, 0.1]]])  # (C, H, W)
    orthogonal = np.array([[[0.0, 0.0]], [[0.5, 0.0]], [[0.0, 0.0]]])
    assert sam_deg(orthogonal, truth, np.array([[True, False]])) == pytest.approx(90.0)
    assert sam_deg(3.0 * truth, truth, mask) == pytest.approx(0.0, abs=1e-5)
    half = np.array([[[1.0, 0.2]], [[1.0, 0.4]], [[0.0, 0.1]]])  # 45 deg at pixel 0, 0 at 1
    assert sam_deg(half, truth, mask) == pytest.approx(22.5)


def test_ssim_is_one_for_identical_images_and_less_otherwise():
    rng = np.random.default_rng(2)
    truth = rng.uniform(0.0, 0.4, (4, 32, 32)).astype(np.float32)
    assert ssim_mean(truth, truth) == pytest.approx(1.0)
    noisy = truth + rng.normal(0, 0.05, truth.shape).astype(np.float32)
    assert ssim_mean(noisy, truth) < 0.95


def test_image_quality_keeps_cloudy_images_where_every_method_has_a_value():
    rng = np.random.default_rng(3)
    bands = ["B02", "B03", "B04", "B08", "B11"]
    truth = rng.uniform(0.05, 0.4, (4, len(bands), 16, 16)).astype(np.float32)
    cloud = np.zeros((4, 16, 16), np.uint8)
    cloud[1, :4] = 1  # 25 % cloud
    cloud[1, 4:6] = 2  # + 12.5 % shadow
    cloud[2, 0, :10] = 1  # 4 %: under the threshold
    cloud[3, :8] = 1  # 50 %, but linear has no value somewhere: dropped
    linear = truth.copy()
    linear[3, :, 0, 0] = np.nan
    fused = truth + np.float32(0.01)
    recs = pd.DataFrame(image_quality({"fused": fused, "linear": linear}, truth, cloud, bands, 0.1))
    assert recs["date"].tolist() == [1, 1]
    assert recs["cloud_fraction"].tolist() == pytest.approx([0.375, 0.375])
    f = recs.set_index("method")
    assert f.loc["fused", "psnr_db"] == pytest.approx(40.0, abs=1e-3)
    assert f.loc["linear", "psnr_db"] == np.inf
    assert f.loc["linear", "ssim"] == pytest.approx(1.0)
    assert f.loc["fused", "sam_deg"] > 0 and f.loc["linear", "sam_deg"] == pytest.approx(
        0, abs=1e-3
    )
    # a window too small for the SSIM window gives no image
    assert image_quality({"fused": fused}, truth[:, :, :8, :8], cloud[:, :8, :8], bands, 0.1) == []


def test_image_quality_table_means_per_tile_and_pooled():
    recs = pd.DataFrame(
        {
            "tile": ["a", "a", "b", "a", "a", "b"],
            "method": ["fused"] * 3 + ["linear"] * 3,
            "cloud_fraction": [0.2, 0.4, 0.6, 0.2, 0.4, 0.6],
            "psnr_db": [30.0, 40.0, 20.0, 31.0, 33.0, 35.0],
            "ssim": [0.9, 0.8, 0.7, 0.9, 0.9, 0.9],
            "sam_deg": [2.0, 4.0, 6.0, 1.0, 1.0, 1.0],
        }
    )
    t = image_quality_table(recs).set_index(["tile", "method"])
    assert list(t.columns) == ["n_images", "mean_cloud_fraction", "psnr_db", "ssim", "sam_deg"]
    assert t.loc[("a", "fused"), "n_images"] == 2
    assert t.loc[("a", "fused"), "psnr_db"] == pytest.approx(35.0)
    assert t.loc[("all", "fused"), "n_images"] == 3
    assert t.loc[("all", "fused"), "psnr_db"] == pytest.approx(30.0)
    assert t.loc[("all", "fused"), "sam_deg"] == pytest.approx(4.0)
    assert t.loc[("all", "linear"), "mean_cloud_fraction"] == pytest.approx(0.4)
    assert image_quality_table(pd.DataFrame()).empty
