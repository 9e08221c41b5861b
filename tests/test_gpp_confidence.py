"""The GPP measuring stick: bootstrap intervals and paired differences, and the
decomposition of skill into across-site, seasonal and anomaly parts, each checked on a
case whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from ecoembed.gpp.confidence import (
    BootstrapConfig,
    block_ids,
    bootstrap_tables,
    reference_pairs,
    resample_weights,
    seed_mean_differences,
    weighted_skill,
)
from ecoembed.gpp.decomposition import decompose, seasonal_cycle, split_parts

SITES = [f"XX-{c}0{i}" for i, c in enumerate("ABCDEF", start=1)]


def predictions(noise: dict[str, float], shift: dict[str, float] | None = None, seed: int = 0):
    """Six towers, two years; each set predicts the observation plus its own noise (sd)
    and shift (constant)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2022-01-01", "2023-12-31")
    t = np.arange(days.size)
    frames = []
    for k, site in enumerate(SITES):
        obs = 3 + k + 4 * np.sin(2 * np.pi * t / 365.25) + rng.normal(0, 1, t.size)
        for name, sd in noise.items():
            pred = obs + rng.normal(0, sd, t.size) + (shift or {}).get(name, 0.0)
            frames.append(
                pd.DataFrame(
                    {
                        "site": site,
                        "date": days,
                        "input_set": name,
                        "model": "temporal_net",
                        "split": "loso",
                        "fold": site,
                        "observed": obs,
                        "predicted": pred,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def test_blocks_are_runs_of_days_within_one_tower():
    sites = np.array(["a"] * 70 + ["b"] * 40)
    dates = np.concatenate([np.arange(70), np.arange(100, 140)]).astype(
        "timedelta64[D]"
    ) + np.datetime64("2022-01-01")
    ids = block_ids(sites, dates, 30)
    assert list(np.bincount(ids)) == [30, 30, 10, 30, 10]
    assert len(set(ids[sites == "a"]) & set(ids[sites == "b"])) == 0


def test_resampling_draws_whole_towers_and_whole_blocks():
    sites = np.repeat(np.array(SITES), 90)
    dates = np.tile(np.arange(90).astype("timedelta64[D]") + np.datetime64("2022-01-01"), 6)
    w = resample_weights(
        sites, dates, BootstrapConfig(replicates=400, block_days=30), np.random.default_rng(1)
    )
    assert w.shape == (400, sites.size)
    # every replicate draws 6 towers x 3 blocks x 30 days: as many rows as the data
    np.testing.assert_array_equal(w.sum(axis=1), sites.size)
    # within a block every day has the same weight
    blocks = w.reshape(400, 6, 3, 30)
    assert (blocks == blocks[..., :1]).all()
    # a tower is left out in some replicates (about (5/6)^6 = 33 % of them hold no draw of it)
    absent = (w.reshape(400, 6, 90).sum(axis=2) == 0).mean()
    assert 0.25 < absent < 0.42


def test_weighted_skill_with_unit_weights_is_the_plain_r2_and_rmse():
    rng = np.random.default_rng(3)
    obs = rng.normal(size=200)
    pred = np.stack([obs + 0.5, obs + rng.normal(0, 1, 200)], axis=1)
    r2, rmse = weighted_skill(np.ones((1, 200)), obs, pred)
    np.testing.assert_allclose(rmse[0], [0.5, np.sqrt(np.mean((pred[:, 1] - obs) ** 2))])
    np.testing.assert_allclose(r2[0, 0], 1 - 0.25 / obs.var())
    # weight 2 on a row is the row counted twice
    w = np.ones((1, 200))
    w[0, 0] = 2
    twice = np.concatenate([obs[:1], obs])
    r2w, _ = weighted_skill(w, obs, pred)
    expect = 1 - np.sum((np.concatenate([pred[:1, 1], pred[:, 1]]) - twice) ** 2) / np.sum(
        (twice - twice.mean()) ** 2
    )
    np.testing.assert_allclose(r2w[0, 1], expect)


def test_identical_predictions_have_a_zero_width_paired_interval():
    p = predictions({"fused": 1.0})
    twin = p.assign(input_set="s2")
    summary, diff = bootstrap_tables(pd.concat([p, twin]), BootstrapConfig(replicates=200), 0)
    row = diff.set_index("other").loc["s2"]
    assert row["r2_diff"] == row["r2_diff_lo"] == row["r2_diff_hi"] == 0.0
    assert row["rmse_diff_lo"] == row["rmse_diff_hi"] == 0.0
    assert not row["resolved"]
    # the sets' own intervals are not zero-width: towers and blocks of days vary
    own = summary.set_index("input_set").loc["fused"]
    assert own["r2_lo"] < own["r2"] < own["r2_hi"]


def test_a_shifted_prediction_costs_the_expected_rmse():
    """fused = obs + e, s2 = obs + e + 1 with the same e: the MSE of s2 is that of fused
    + 1 + 2 mean(e) ~ +1 exactly in expectation, and every resample sees fused ahead."""
    p = predictions({"fused": 0.5})
    shifted = p.assign(input_set="s2", predicted=p["predicted"] + 1.0)
    far = p.assign(input_set="s1", predicted=p["predicted"] + 3.0)
    summary, diff = bootstrap_tables(pd.concat([p, shifted, far]), BootstrapConfig(300), 0)
    s = summary.set_index("input_set")
    err = p["predicted"] - p["observed"]
    assert s.loc["s2", "rmse"] == pytest.approx(np.sqrt(np.mean((err + 1) ** 2)))
    assert s.loc["s2", "rmse"] ** 2 - s.loc["fused", "rmse"] ** 2 == pytest.approx(
        1 + 2 * err.mean()
    )
    d = diff.set_index("other")
    assert d.loc["s2", "rmse_diff_hi"] < 0 and d.loc["s2", "r2_diff_lo"] > 0
    assert d.loc["s2", "resolved"] and d.loc["s2", "share_better"] == 1.0
    # a larger shift: a larger difference
    assert d.loc["s1", "r2_diff"] > d.loc["s2", "r2_diff"]
    assert d.loc["s2", "r2_diff_lo"] <= d.loc["s2", "r2_diff"] <= d.loc["s2", "r2_diff_hi"]


def test_noise_of_similar_size_gives_an_unresolved_difference_and_the_same_resamples():
    p = predictions({"fused": 1.0, "s2": 1.02})
    _, diff = bootstrap_tables(p, BootstrapConfig(300), 0)
    row = diff.iloc[0]
    assert row["r2_diff_lo"] < 0 < row["r2_diff_hi"] and not row["resolved"]
    _, again = bootstrap_tables(p, BootstrapConfig(300), 0)
    pd.testing.assert_frame_equal(diff, again)  # a seed gives the same intervals


def other_run(p: pd.DataFrame, swap: bool = False, roll: int = 0) -> pd.DataFrame:
    """Another training run on the same tower-days: the sets' errors swapped between fused
    and s2, or each set's errors rolled by ``roll`` rows (same size, other realisation)."""
    q = p.copy()
    if swap:
        q["input_set"] = q["input_set"].map({"fused": "s2", "s2": "fused"})
    err = q["predicted"] - q["observed"]
    q["predicted"] = q["observed"] + err.groupby(q["input_set"]).transform(
        lambda e: np.roll(e.to_numpy(), roll)
    )
    return q


def test_the_seed_mean_difference_is_the_mean_of_the_seeds_differences():
    """Two training runs: the point is the mean of each run's own R² difference, and one
    run's lead and the other's equal loss average to an unresolved zero."""
    a = predictions({"fused": 0.8, "s2": 1.2}, seed=1)
    b = other_run(a, swap=True)
    cfg = BootstrapConfig(300)
    own = [bootstrap_tables(r, cfg, 0)[1].set_index("other").loc["s2", "r2_diff"] for r in (a, b)]
    d = seed_mean_differences([a, b], cfg, 0).set_index("other").loc["s2"]
    assert d["runs"] == 2
    assert own[0] > 0 > own[1]
    assert d["r2_diff"] == pytest.approx(np.mean(own)) and abs(d["r2_diff"]) < 1e-12
    # on every resample the two runs' sets trade places: the mean difference is 0 there too
    assert abs(d["r2_diff_lo"]) < 1e-12 and abs(d["r2_diff_hi"]) < 1e-12
    assert not d["resolved"]
    # both runs ahead: the mean is resolved, and its interval no wider than one run's
    c = other_run(a, roll=400)
    both = seed_mean_differences([a, c], cfg, 0).set_index("other").loc["s2"]
    single = bootstrap_tables(a, cfg, 0)[1].set_index("other").loc["s2"]
    assert both["resolved"] and both["r2_diff_lo"] > 0
    width = both["r2_diff_hi"] - both["r2_diff_lo"]
    assert width < 1.05 * (single["r2_diff_hi"] - single["r2_diff_lo"])


def test_runs_that_disagree_on_the_observations_are_refused():
    a = predictions({"fused": 0.8, "s2": 1.2}, seed=1)
    b = a.assign(observed=a["observed"] + 1.0)
    with pytest.raises(ValueError, match="observed"):
        seed_mean_differences([a, b], BootstrapConfig(50), 0)


def test_the_seed_mean_uses_only_tower_days_every_run_predicted():
    a = predictions({"fused": 0.8, "s2": 1.2}, seed=1)
    short = a[a["date"] < "2023-01-01"]
    full = seed_mean_differences([short, short], BootstrapConfig(100), 0)
    mixed = seed_mean_differences([a, short], BootstrapConfig(100), 0)
    alone = bootstrap_tables(short, BootstrapConfig(100), 0)[1]
    assert full["r2_diff"].iloc[0] == pytest.approx(alone["r2_diff"].iloc[0])
    assert mixed["r2_diff"].iloc[0] == pytest.approx(alone["r2_diff"].iloc[0])


def test_pairs_compare_fused_within_the_same_meteorology():
    sets = ["fused", "fused+met", "s2", "s2+met", "oracle", "fused_interp"]
    assert reference_pairs(sets) == [
        ("fused", "s2"),
        ("fused", "oracle"),
        ("fused", "fused_interp"),
        ("fused+met", "s2+met"),
    ]


# --- decomposition -------------------------------------------------------------------


def three_part_series(seed=0):
    """Two towers over two years: value = mean + seasonal(doy) + anomaly, the anomaly of
    the second year the negative of the first's, so the mean seasonal cycle (unsmoothed)
    is exactly mean + seasonal."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2021-01-01", "2022-12-31")  # two years without 29 February
    doy = np.asarray(days.day_of_year)
    seasonal = 3 * np.sin(2 * np.pi * (doy - 1) / 365)
    seasonal -= seasonal.mean()
    a = rng.normal(0, 1, 365)
    anomaly = np.concatenate([a, -a])
    return days, seasonal, anomaly


def test_seasonal_cycle_without_smoothing_is_the_mean_of_each_day_of_year():
    days, seasonal, anomaly = three_part_series()
    cycle = seasonal_cycle(days, 5 + seasonal + anomaly, window_days=1)
    np.testing.assert_allclose(cycle, 5 + seasonal, atol=1e-12)
    # smoothing a constant keeps it, across the turn of the year too
    np.testing.assert_allclose(seasonal_cycle(days, np.full(days.size, 2.0), 31), 2.0)


def test_parts_sum_to_the_value():
    days, seasonal, anomaly = three_part_series()
    sites = np.repeat(["a", "b"], days.size)
    values = np.concatenate([2 + seasonal + anomaly, 7 + 2 * seasonal - anomaly])
    parts = split_parts(sites, pd.DatetimeIndex(np.concatenate([days, days])), values, 15)
    np.testing.assert_allclose(parts["mean"] + parts["seasonal"] + parts["anomaly"], values)


def test_decomposition_of_a_series_whose_parts_are_known():
    """The prediction gets tower means and the seasonal cycle exactly and the anomaly not
    at all (zero): across_site and seasonal R² are 1, anomaly R² is 0. A second set gets
    the anomaly right but every tower mean wrong by the same amount: R² of the tower
    means is then 1 - (n shift²) / SS(means)."""
    days, seasonal, anomaly = three_part_series()
    frames = []
    means = {"XX-A01": 2.0, "XX-B02": 6.0, "XX-C03": 9.0}
    for site, m in means.items():
        obs = m + seasonal + anomaly
        for name, pred in (("fused", m + seasonal), ("s2", obs + 1.0)):
            frames.append(
                pd.DataFrame(
                    {
                        "site": site,
                        "date": days,
                        "input_set": name,
                        "model": "gbm",
                        "split": "loso",
                        "observed": obs,
                        "predicted": pred,
                    }
                )
            )
    table = decompose(
        pd.concat(frames), {"XX-A01": "CRO", "XX-B02": "CRO", "XX-C03": "GRA"}, window_days=1
    )
    t = table.set_index(["input_set", "part", "igbp"])
    assert t.loc[("fused", "across_site", ""), "r2"] == pytest.approx(1.0)
    assert t.loc[("fused", "seasonal", ""), "r2"] == pytest.approx(1.0)
    assert t.loc[("fused", "anomaly", ""), "r2"] == pytest.approx(0.0, abs=1e-12)
    assert t.loc[("fused", "anomaly", ""), "rmse"] == pytest.approx(np.sqrt(np.mean(anomaly**2)))
    m = np.array(list(means.values()))
    expect = 1 - 3 * 1.0**2 / np.sum((m - m.mean()) ** 2)
    assert t.loc[("s2", "across_site", ""), "r2"] == pytest.approx(expect)
    assert t.loc[("s2", "anomaly", ""), "r2"] == pytest.approx(1.0)
    assert t.loc[("s2", "across_site", ""), "n"] == 3
    # per IGBP class: the towers of the class, pooled; s2's error is the shift everywhere
    assert t.loc[("s2", "igbp", "CRO"), "rmse"] == pytest.approx(1.0)
    assert t.loc[("s2", "igbp", "CRO"), "n"] == 2 * days.size
    assert t.loc[("s2", "igbp", "GRA"), "n"] == days.size
