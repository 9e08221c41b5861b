"""GPP examples: windows end lead_days before the target day and hold no missing day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecoembed.gpp.dataset import build_examples, site_features, windows


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


def test_build_examples_over_sites_from_the_site_table():
    rows = []
    for site in ("A", "B"):
        for source in ("fused", "s1"):
            for k, day in enumerate(daily(range(10))):
                rows.append({"site": site, "date": day, "source": source, "e0": k, "e1": 2 * k})
    table = pd.DataFrame(rows)
    feats = {s: site_features(table, s, "fused") for s in ("A", "B")}
    gpp = {s: pd.Series(1.0, index=daily(range(10))) for s in ("A", "B")}
    ex = build_examples(feats, gpp, window_days=4)
    assert len(ex) == 2 * 7 and ex.features == ("e0", "e1")
    assert set(ex.site) == {"A", "B"} and ex.x.shape == (14, 4, 2)
    with pytest.raises(ValueError, match="window_days"):
        windows(feats["A"], gpp["A"], window_days=0)
