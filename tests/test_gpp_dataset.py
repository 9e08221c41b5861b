"""GPP examples: windows end lead_days before the target day and hold no missing day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecoembed.gpp.dataset import (
    common_targets,
    site_features,
    site_series,
    window_summaries,
    windows,
)


def daily(values, start="2022-01-01"):
    return pd.date_range(start, periods=len(values))


def test_windows_align_inputs_and_targets():
    days = daily(range(30))
    feats = pd.DataFrame({"e0": np.arange(30.0), "e1": -np.arange(30.0)}, index=days)
    gpp = pd.Series(np.arange(30.0) * 10, index=days)
    x, y, d = windows(feats, gpp, window_days=5, lead_days=2)
    # first target: day 6 (window days 0..4 ends 2 days before it)
    assert d[0] == np.datetime64("2022-01-07") and y[0] == 60.0
    np.testing.assert_array_equal(x[0, :, 0], [0, 1, 2, 3, 4])
    assert x.shape == (30 - 6, 5, 2)
    # every example: the window's last day is lead_days before the target
    last = x[:, -1, 0]
    np.testing.assert_array_equal(last + 2, y / 10)


def test_windows_skip_missing_days_and_failed_qc():
    days = daily(range(20))
    feats = pd.DataFrame({"e0": np.arange(20.0)}, index=days).drop(days[8])  # a missing day
    feats.loc[days[12], "e0"] = np.nan  # a missing value
    gpp = pd.Series(np.arange(20.0), index=days)
    gpp[days[4]] = np.nan  # QC-filtered
    x, y, d = windows(feats, gpp, window_days=3)
    kept = sorted(int(v) for v in y)
    # windows touching day 8 (targets 8-10) or day 12 (12-14) are out; so is target 4
    assert kept == [2, 3, 5, 6, 7, 11, 15, 16, 17, 18, 19]
    assert np.isfinite(x).all()


def test_site_features_pick_one_source_of_one_site():
    rows = []
    for site in ("A", "B"):
        for source in ("fused", "s1"):
            for k, day in enumerate(daily(range(10))):
                rows.append(
                    {"site": site, "date": day, "source": source, "e0": k, "e1": 2 * k, "e2": None}
                )
    table = pd.DataFrame(rows)
    table.loc[(table.site == "B") & (table.source == "s1"), "e0"] += 100
    feats = site_features(table, "B", "s1")
    assert list(feats.columns) == ["e0", "e1"]  # the all-missing dimension is dropped
    np.testing.assert_array_equal(feats["e0"], np.arange(10) + 100)
    with pytest.raises(ValueError, match="window_days"):
        windows(feats, pd.Series(1.0, index=feats.index), window_days=0)


def test_series_on_a_given_calendar_and_summaries_equal_explicit_windows():
    rng = np.random.default_rng(0)
    days = daily(range(60))
    feats = pd.DataFrame(rng.normal(size=(60, 2)), index=days, columns=["a", "b"])
    feats.iloc[20, 1] = np.nan
    gpp = pd.Series(rng.normal(size=60), index=days)
    calendar = pd.date_range("2021-12-20", "2022-03-10")
    s = site_series("A", feats, gpp, window_days=10, lead_days=3, days=calendar)
    assert s.dates.size == calendar.size and s.dates[0] == np.datetime64("2021-12-20")
    x, y, d = windows(feats, gpp, window_days=10, lead_days=3)
    np.testing.assert_array_equal(s.dates[s.target], d)
    np.testing.assert_array_equal(s.gpp[s.target], y)
    summ = window_summaries(s)
    assert summ.shape == (len(y), 8)
    expected = np.concatenate(
        [x[:, -1], x[:, -7:].mean(1), x[:, -10:].mean(1), x.mean(1)], axis=1
    )  # the month is capped at the 10-day window
    np.testing.assert_allclose(summ, expected, rtol=1e-5, atol=1e-6)


def test_common_targets_are_the_days_every_set_has():
    days = daily(range(30))
    gpp = pd.Series(1.0, index=days)
    a = pd.DataFrame({"x": np.ones(30)}, index=days)
    b = a.copy()
    b.iloc[15] = np.nan
    sa = site_series("A", a, gpp, window_days=5, days=days)
    sb = site_series("A", b, gpp, window_days=5, days=days)
    keep = common_targets([sa, sb])
    assert keep.sum() == sb.target.sum() == sa.target.sum() - 5
    assert not sa.restrict(keep).target[15:20].any()
    with pytest.raises(ValueError, match="different days"):
        common_targets([sa, site_series("A", a.iloc[:20], gpp.iloc[:20], window_days=5)])
