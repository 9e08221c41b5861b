"""GPP models and cross-validation: windows exactly as declared, statistics from training
folds only, folds that never test on what they trained on, and metrics by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ecoembed.gpp.dataset import site_series
from ecoembed.gpp.evaluate import (
    build_series,
    cross_validate,
    evaluate,
    loso_folds,
    loyo_folds,
    metrics,
    scores,
)
from ecoembed.gpp.models import (
    GbmConfig,
    GbmModel,
    Normaliser,
    TemporalConfig,
    TemporalEnsemble,
    TemporalModel,
    TemporalNet,
    window_coverage,
)


def test_temporal_net_sees_exactly_its_window():
    torch.manual_seed(0)
    net = TemporalNet(3, window_days=12, hidden=4).eval()
    x = torch.randn(2, 3, 50)
    with torch.no_grad():
        dense = net(x)
        assert dense.shape == (2, 50 - 12 + 1)
        # the output for the window ending at day e equals the net run on that window alone
        for e in (11, 30, 49):
            alone = net(x[:, :, e - 11 : e + 1])
            torch.testing.assert_close(dense[:, e - 11], alone[:, 0], rtol=1e-4, atol=1e-5)
        # a change one day before the window, or after its end, changes nothing
        y = x.clone()
        y[:, :, 18] += 5.0
        changed = (net(y) - dense).abs().amax(0) > 1e-5
    affected = np.flatnonzero(changed.numpy())
    # windows ending at days 18..29 contain day 18: outputs 18 - 11 .. 29 - 11
    np.testing.assert_array_equal(affected, np.arange(7, 19))


def test_ensemble_is_its_members_side_by_side():
    torch.manual_seed(0)
    nets = [TemporalNet(3, window_days=12, hidden=4).eval() for _ in range(3)]
    ens = TemporalEnsemble(nets).eval()
    x = torch.randn(2, 3, 50)
    with torch.no_grad():
        out = ens(x)
        assert out.shape == (2, 3, 39)
        for m, net in enumerate(nets):
            torch.testing.assert_close(out[:, m], net(x), rtol=1e-4, atol=1e-5)


def test_members_trained_together_train_as_if_alone():
    """Summing the members' losses in one pass must not couple them: each member ends where
    training it alone (same initial weights, same optimiser) would."""
    torch.manual_seed(1)
    nets = [TemporalNet(2, window_days=10, hidden=4) for _ in range(2)]
    x, y = torch.randn(3, 2, 60), torch.randn(3, 51)
    ens = TemporalEnsemble(nets)

    def train(module, loss_of):
        opt = torch.optim.AdamW(module.parameters(), lr=0.02, weight_decay=1e-4)
        for _ in range(30):
            opt.zero_grad()
            loss_of(module).backward()
            opt.step()

    train(ens, lambda e: ((e(x) - y[:, None]) ** 2).mean(dim=(0, 2)).sum())
    for m, net in enumerate(nets):
        train(net, lambda n: ((n(x) - y) ** 2).mean())
        with torch.no_grad():
            torch.testing.assert_close(ens(x)[:, m], net(x), rtol=1e-3, atol=1e-4)
    # and they did move: a member trained alone differs from its untrained twin
    torch.manual_seed(1)
    untrained = TemporalNet(2, window_days=10, hidden=4)
    with torch.no_grad():
        assert (untrained(x) - nets[0](x)).abs().max() > 0.1


def _synthetic_sites(n_sites=4, n_days=400, seed=0):
    """GPP = 2 x the mean of feature a over the last week + feature b today (+ noise)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2021-07-01", periods=n_days)
    feats, gpp = {}, {}
    for i in range(n_sites):
        a = np.convolve(rng.normal(size=n_days + 20), np.ones(15) / 15, "same")[:n_days]
        b = rng.normal(size=n_days)
        week = pd.Series(a).rolling(7).mean().to_numpy()
        g = 2 * week + b + 0.05 * rng.normal(size=n_days) + 5
        feats[f"S{i}"] = pd.DataFrame({"a": a, "b": b}, index=days)
        gpp[f"S{i}"] = pd.Series(g, index=days)
    return feats, gpp


@pytest.mark.parametrize(
    "model",
    [
        lambda seed: TemporalModel(TemporalConfig(epochs=150), seed),
        lambda seed: GbmModel(GbmConfig(max_iter=200), seed),
    ],
    ids=["temporal_net", "gbm"],
)
def test_models_learn_a_known_relation_on_a_held_out_site(model):
    feats, gpp = _synthetic_sites()
    series = {s: site_series(s, feats[s], gpp[s], window_days=20, lead_days=0) for s in feats}
    train = [series[s] for s in ("S0", "S1", "S2")]
    test = series["S3"]
    pred = model(0).fit(train).predict(test)
    r2 = scores(test.gpp[test.target], pred)["r2"]
    assert r2 > 0.85
    # shifting the target by a few days (a misaligned window) must cost skill
    shifted = {s: site_series(s, feats[s], gpp[s].shift(-5), window_days=20) for s in feats}
    pred_s = model(0).fit([shifted[s] for s in ("S0", "S1", "S2")]).predict(shifted["S3"])
    assert scores(shifted["S3"].gpp[shifted["S3"].target], pred_s)["r2"] < r2 - 0.3


def test_temporal_model_is_reproducible_with_a_seed():
    feats, gpp = _synthetic_sites(n_sites=2, n_days=120)
    series = [site_series(s, feats[s], gpp[s], window_days=10) for s in feats]
    a = TemporalModel(TemporalConfig(epochs=20), 3).fit(series[:1]).predict(series[1])
    b = TemporalModel(TemporalConfig(epochs=20), 3).fit(series[:1]).predict(series[1])
    c = TemporalModel(TemporalConfig(epochs=20), 4).fit(series[:1]).predict(series[1])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_normalisation_comes_from_the_training_windows_only():
    days = pd.date_range("2022-01-01", periods=40)
    x = pd.DataFrame({"a": np.arange(40.0)}, index=days)
    gpp = pd.Series(np.nan, index=days)
    gpp.iloc[[20, 21]] = [1.0, 3.0]  # two examples: windows of 5 days ending at 20 and 21
    s = site_series("A", x, gpp, window_days=5)
    cov = window_coverage(s)
    np.testing.assert_array_equal(np.flatnonzero(cov), np.arange(16, 22))
    norm = Normaliser.fit([s])
    assert norm.x_mean[0] == pytest.approx(np.mean(np.arange(16, 22)))
    assert norm.y_mean == pytest.approx(2.0) and norm.y_std == pytest.approx(1.0)
    # a test site with wildly different inputs does not move the statistics
    other = site_series("B", x * 1000, gpp, window_days=5)
    assert Normaliser.fit([s]).x_std == pytest.approx(norm.x_std)
    assert not np.allclose(Normaliser.fit([s, other]).x_std, norm.x_std)


def test_folds_never_test_on_training_days():
    feats, gpp = _synthetic_sites(n_sites=3, n_days=600)  # to 2023-02
    series = {s: site_series(s, feats[s], gpp[s], window_days=10) for s in feats}
    loso = loso_folds(series)
    assert [f.name for f in loso] == ["S0", "S1", "S2"]
    for f in loso:
        assert f.name not in f.train and list(f.test) == [f.name]
    loyo = loyo_folds(series)
    assert [f.name for f in loyo] == ["2021", "2022", "2023"]
    for f in loyo:
        for site, s in series.items():
            assert not (f.train[site] & f.test[site]).any()
            years = s.dates[f.test[site]].astype("datetime64[Y]").astype(int) + 1970
            assert set(years) <= {int(f.name)}
    one_year = {s: v.restrict(v.dates < np.datetime64("2022-01-01")) for s, v in series.items()}
    assert loyo_folds(one_year) == []


def test_scores_by_hand():
    obs = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.5, 2.0, 2.5, 5.0])
    s = scores(obs, pred)
    # SSE = 0.25 + 0 + 0.25 + 1 = 1.5; SS = 5
    assert s["r2"] == pytest.approx(1 - 1.5 / 5)
    assert s["rmse"] == pytest.approx(np.sqrt(1.5 / 4))
    assert s["bias"] == pytest.approx(0.25) and s["n"] == 4
    assert np.isnan(scores(obs[:1], pred[:1])["r2"])


def test_cross_validation_and_metrics_table():
    feats, gpp = _synthetic_sites(n_sites=3, n_days=450)
    noise = {s: f.assign(a=np.random.default_rng(1).normal(size=len(f))) for s, f in feats.items()}
    series = build_series({"good": feats, "noise": noise}, gpp, window_days=20, lead_days=0)
    pred = evaluate(series, models={"gbm": {"max_iter": 100}}, splits=["loso"], seed=0)
    assert set(pred["input_set"]) == {"good", "noise"}
    # every input set is scored on the same days
    days = pred.groupby("input_set")["date"].apply(lambda d: tuple(sorted(d)))
    assert days["good"] == days["noise"]
    table = metrics(pred)
    assert list(table.columns) == ["input_set", "model", "split", "site", "r2", "rmse", "bias", "n"]
    pooled = table[table.site == "pooled"].set_index("input_set")
    assert pooled.loc["good", "r2"] > 0.8 > pooled.loc["noise", "r2"]
    assert (
        pooled.loc["good", "n"]
        == table[(table.site != "pooled") & (table.input_set == "good")]["n"].sum()
    )
    # the pooled row is computed from the predictions, by hand
    g = pred[pred.input_set == "good"]
    assert pooled.loc["good", "rmse"] == pytest.approx(
        np.sqrt(np.mean((g.predicted - g.observed) ** 2))
    )
    again = cross_validate(series["good"], "loso", "gbm", {"max_iter": 100}, 0)
    np.testing.assert_array_equal(again["predicted"], g["predicted"])


def test_pooled_summary_relates_each_set_to_its_oracle():
    from ecoembed.gpp.evaluate import pooled_summary

    rows = [
        ("oracle", 0.8),
        ("oracle+met", 0.9),
        ("fused", 0.6),
        ("fused+met", 0.45),
    ]
    table = pd.DataFrame(
        [
            {
                "input_set": s,
                "model": "gbm",
                "split": "loso",
                "site": site,
                "r2": r2,
                "rmse": 1.0,
                "bias": 0.0,
                "n": 10,
            }
            for s, r2 in rows
            for site in ("pooled", "A")
        ]
    )
    out = pooled_summary(table).set_index("input_set")
    assert len(out) == 4
    assert out.loc["fused", "of_oracle"] == pytest.approx(0.75)
    assert out.loc["fused+met", "of_oracle"] == pytest.approx(0.5)
    assert out.loc["oracle+met", "of_oracle"] == pytest.approx(1.0)
    # an oracle without skill gives no reference: NaN, not a ratio to a negative R²
    table.loc[(table["input_set"] == "oracle") & (table["site"] == "pooled"), "r2"] = -0.01
    out = pooled_summary(table).set_index("input_set")
    assert np.isnan(out.loc["fused", "of_oracle"]) and np.isnan(out.loc["oracle", "of_oracle"])
    assert out.loc["fused+met", "of_oracle"] == pytest.approx(0.5)


def test_days_since_clear_and_error_by_gap():
    from ecoembed.gpp.evaluate import days_since_clear, rmse_by_clear_gap

    dates = pd.date_range("2022-01-01", periods=30)
    frac = np.zeros(30)
    frac[[2, 3, 20]] = [0.9, 0.4, 0.6]  # clear on day 2 and 20; day 3 only 40 % clear
    obs = pd.DataFrame({"site": "A", "date": dates, "observed_fraction": frac})
    gaps = days_since_clear(obs)
    days = gaps["days"].to_numpy()
    assert np.isnan(days[:2]).all()
    np.testing.assert_array_equal(days[2:6], [0, 1, 2, 3])
    assert days[19] == 17 and days[20] == 0 and days[29] == 9
    long_obs = pd.DataFrame(
        {
            "site": "A",
            "date": pd.date_range("2022-01-01", periods=40),
            "observed_fraction": np.r_[1.0, np.zeros(39)],
        }
    )
    gaps = days_since_clear(long_obs)
    pred = pd.DataFrame(
        {
            "site": "A",
            "date": long_obs["date"],
            "input_set": "x",
            "observed": 0.0,
            "predicted": np.where(gaps["days"] > 20, 2.0, 1.0),
        }
    )
    table = rmse_by_clear_gap(pred, gaps)
    assert list(table.columns) == ["0", "1-5", "6-10", "11-20", ">20"]
    assert table.loc["n"].tolist() == [1, 5, 5, 10, 19]
    np.testing.assert_allclose(table.loc["x"].to_numpy(dtype=float), [1, 1, 1, 1, 2])
