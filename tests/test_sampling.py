"""Sampling of pretraining examples (issue #4): valid centres, full context, strata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecoembed.train import sampling
from ecoembed.train.sampling import extract_neighbourhoods, sample_centres, season_of

SIZE, FRAMES = 5, 3


def world(t_len=73, h=40, w=40, seed=0):
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2022-01-01", periods=t_len, freq="5D")
    valid = rng.random((t_len, h, w)) > 0.5
    summer = np.asarray(dates.month.isin([6, 7, 8]))
    valid[summer] &= rng.random((summer.sum(), h, w)) > 0.8  # a cloudy summer
    return dates, valid


def test_centres_are_valid_with_full_context():
    dates, valid = world()
    c = sample_centres(valid, dates, n=800, size=SIZE, frames=FRAMES, rng=np.random.default_rng(1))
    assert len(c) > 500
    assert valid[c.t, c.row, c.col].all()
    assert c.row.min() >= 2 and c.row.max() <= 37 and c.col.min() >= 2 and c.col.max() <= 37
    assert c.t.min() >= 1 and c.t.max() <= 71
    assert len(set(zip(c.t, c.row, c.col, strict=True))) == len(c)  # no repeats


def test_sampling_is_stratified_over_space_and_season():
    dates, valid = world()
    c = sample_centres(valid, dates, n=1600, size=SIZE, frames=FRAMES, rng=np.random.default_rng(2))
    season = season_of(dates)[c.t]
    counts = np.bincount(season, minlength=4)
    # equal shares per season although the summer has a quarter of the clear views
    assert counts.max() - counts.min() <= 0.1 * counts.max()
    block = (c.row * 4 // 40) * 4 + c.col * 4 // 40
    per_block = np.bincount(block, minlength=16)
    assert per_block.min() > 0.8 * per_block.max()


def test_same_seed_same_sample():
    dates, valid = world()
    a = sample_centres(valid, dates, n=300, size=SIZE, frames=FRAMES, rng=np.random.default_rng(5))
    b = sample_centres(valid, dates, n=300, size=SIZE, frames=FRAMES, rng=np.random.default_rng(5))
    assert np.array_equal(a.t, b.t) and np.array_equal(a.row, b.row)


def test_no_valid_centre_is_a_clear_error():
    dates, valid = world(t_len=2)
    with pytest.raises(ValueError, match="no valid centre"):
        sample_centres(valid, dates, n=10, size=SIZE, frames=FRAMES, rng=np.random.default_rng(0))


def test_extraction_is_the_neighbourhood_and_its_time_gaps():
    dates, valid = world(t_len=10, h=12, w=12)
    cube = np.random.default_rng(3).normal(size=(10, 2, 12, 12)).astype(np.float32)
    days = np.asarray((dates - dates[0]).days, np.float32)
    c = sampling.Centres(np.array([4]), np.array([6]), np.array([3]))
    x, dt = extract_neighbourhoods(cube, days, c, size=SIZE, frames=FRAMES)
    assert x.shape == (1, 3, 2, 5, 5)
    np.testing.assert_array_equal(x[0, 1], cube[4, :, 4:9, 1:6])
    np.testing.assert_array_equal(dt[0], [-5.0, 0.0, 5.0])


def test_window_centres_share_a_date_and_a_square_outside_the_held_out_part():
    dates, valid = world()
    anchors = sample_centres(
        valid, dates, n=200, size=SIZE, frames=FRAMES, rng=np.random.default_rng(3)
    )
    allowed = np.ones(valid.shape[1:], bool)
    allowed[:, 20:] = False  # say, the held-out blocks
    keep = allowed[anchors.row, anchors.col]
    a = np.stack([0 * anchors.t, anchors.t, anchors.row, anchors.col], axis=1)[keep]
    win = sampling.window_centres(
        a, [valid], [allowed], size=SIZE, px=6, per_window=8, rng=np.random.default_rng(4)
    )
    assert len(win) == len(a) and win.px == 6
    first = np.flatnonzero(np.diff(np.concatenate([[-1], win.group])))
    # the anchor comes first in its window, then others of the same date
    assert (win.row[first] == a[:, 2]).all() and (win.col[first] == a[:, 3]).all()
    t = win.t[win.group]
    assert valid[t, win.row, win.col].all() and allowed[win.row, win.col].all()
    dr, dc = win.row - win.row0[win.group], win.col - win.col0[win.group]
    assert dr.min() >= 0 and dr.max() < 6 and dc.min() >= 0 and dc.max() < 6
    # the square keeps the full spatial context inside the tile
    assert win.row0.min() >= SIZE // 2 and (win.row0 + 6).max() <= 40 - SIZE // 2
    sizes = np.bincount(win.group)
    assert sizes.max() == 8 and sizes.mean() > 4  # half the pixels are clear
    assert len(set(zip(win.group, win.row, win.col, strict=True))) == win.group.size
    again = sampling.window_centres(
        a, [valid], [allowed], size=SIZE, px=6, per_window=8, rng=np.random.default_rng(4)
    )
    assert np.array_equal(again.row, win.row) and np.array_equal(again.col, win.col)
