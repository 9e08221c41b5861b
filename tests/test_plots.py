"""Figures: what each one selects (scene, pixels, baseline) is checked on data built so
that the right answer is known, and every figure function writes a real PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.image import imread

from ecoembed.gpp.confidence import BootstrapConfig, bootstrap_tables
from ecoembed.gpp.decomposition import decompose
from ecoembed.io.names import FIGURE_NAMES
from ecoembed.plots.figures import FIGURES, make_figure
from ecoembed.plots.gpp import best_baseline, plot_gpp_scatter, plot_gpp_skill
from ecoembed.plots.scenes import embedding_pcs, pick_scene, rms_error
from ecoembed.plots.series import pick_event_pixel
from ecoembed.plots.style import save_png, stretch, true_colour
from ecoembed.plots.training import plot_training_curves


def valid_mask(clear_fractions: list[float], times: list[str], size: int = 10) -> xr.DataArray:
    rng = np.random.default_rng(0)
    masks = [rng.permutation(size * size) < round(f * size * size) for f in clear_fractions]
    return xr.DataArray(
        np.stack(masks).reshape(-1, size, size),
        dims=("time", "y", "x"),
        coords={"time": pd.DatetimeIndex(times)},
    )


def test_scene_is_the_growing_season_date_half_clear():
    valid = valid_mask(
        [0.5, 0.9, 0.2, 0.45, 0.55, 0.1],
        ["2022-01-10", "2022-05-01", "2022-06-01", "2022-07-01", "2022-08-01", "2022-12-01"],
    )
    # January is exactly half clear but out of season; July and August tie: the earlier
    assert pick_scene(valid) == 3
    assert pick_scene(valid, "2022-05-03") == 1  # nearest date when asked for one


def test_scene_outside_any_growing_season_still_picks_the_half_clear_date():
    valid = valid_mask([0.9, 0.6, 0.1], ["2022-01-01", "2022-01-06", "2022-01-11"])
    assert pick_scene(valid) == 1


def truth_with_parcels() -> xr.Dataset:
    parcel = np.zeros((20, 32), np.int32)
    parcel[:, :11] = 1  # 20 x 11 at the tile's left edge: 6 pixels deep (column 5)
    parcel[2:19, 13:30] = 2  # 17 x 17 inside the tile: 9 deep at its centre (10, 21)
    parcel[0:2, 13:30] = 3
    dates = pd.DatetimeIndex(["2022-07-20", "2022-06-01", "2023-06-10", "2022-08-01", "2022-07-01"])
    return xr.Dataset(
        {
            "parcel": (("y", "x"), parcel),
            "event_date": ("event", dates),
            "event_kind": ("event", np.array(["harvest", "mowing", "mowing", "mowing", "harvest"])),
            "event_crop": ("event", np.array(["maize", "grass", "grass", "grass", "maize"])),
            "event_parcel": ("event", np.array([1, 2, 2, 2, 3])),
        }
    )


def test_event_pixel_is_deepest_in_its_parcel_and_the_tile_edge_counts_as_an_edge():
    truth = truth_with_parcels()
    mown = pick_event_pixel(truth, "mowing")
    assert mown.parcel == 2 and (mown.row, mown.col) == (10, 21)
    assert mown.year == 2022
    assert list(mown.events["date"]) == [pd.Timestamp("2022-06-01"), pd.Timestamp("2022-08-01")]
    harvest = pick_event_pixel(truth, "harvest")
    # parcel 1 is deeper than parcel 3; counting the tile edge as an edge puts its deepest
    # pixel in its middle column, not on the tile's border
    assert harvest.parcel == 1 and harvest.col == 5
    with pytest.raises(ValueError, match="sowing"):
        pick_event_pixel(truth, "sowing")


def test_principal_components_follow_the_embedding_variance():
    rng = np.random.default_rng(1)
    strong = rng.normal(0, 3.0, (16, 16))
    weak = rng.normal(0, 0.1, (5, 16, 16))
    emb = np.concatenate([strong[None], weak, -strong[None] * 0.5], axis=0)
    rgb, ratio = embedding_pcs(xr.DataArray(emb, dims=("dim", "y", "x")))
    assert rgb.shape == (16, 16, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert ratio[0] > 0.95
    r = np.corrcoef(rgb[..., 0].ravel(), strong.ravel())[0, 1]
    assert abs(r) > 0.95


def test_rms_error_over_bands():
    truth = xr.DataArray(np.zeros((2, 3, 4)), dims=("band", "y", "x"))
    est = truth.copy(data=np.stack([np.full((3, 4), 3.0), np.full((3, 4), 4.0)]))
    np.testing.assert_allclose(rms_error(est, truth), np.sqrt(12.5))


def test_composites_are_clipped_and_nan_safe():
    rgb = true_colour(np.array([[0.08, np.nan]]), np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]]))
    assert rgb.shape == (1, 2, 3)
    np.testing.assert_allclose(rgb[0, 0], [0.5 ** (1 / 1.4), 1.0, 0.0])
    assert rgb[0, 1, 0] == 0.0
    s = stretch(np.arange(100, dtype=float).reshape(10, 10, 1))
    assert s.min() == 0 and s.max() == 1


def metrics_table() -> pd.DataFrame:
    rows = []
    r2 = {
        "fused": 0.7,
        "s2": 0.72,
        "s1": 0.5,
        "oracle": 0.9,
        "fused+met": 0.9,
        "s2+met": 0.85,
        "s1+met": 0.88,
        "oracle+met": 0.95,
    }
    for model in ("temporal_net", "gbm"):
        for split in ("loso", "loyo"):
            for name, v in r2.items():
                shift = 0.0 if split == "loso" else -0.2
                rows.append((name, model, split, "pooled", v + shift, 1 - v, 0.1, 100))
                rows.append((name, model, split, "XX-A01", v, 1 - v, 0.1, 50))
    return pd.DataFrame(
        rows, columns=["input_set", "model", "split", "site", "r2", "rmse", "bias", "n"]
    )


def test_best_baseline_is_neither_fused_nor_the_oracle_and_matches_the_met_setting():
    table = metrics_table()
    assert best_baseline(table, "temporal_net", "loso", met=False) == "s2"
    assert best_baseline(table, "temporal_net", "loso", met=True) == "s1+met"
    with pytest.raises(ValueError, match="pooled rows"):
        best_baseline(table, "temporal_net", "nosuchsplit", met=True)


def predictions_table(metrics: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    days = pd.date_range("2022-04-01", periods=60)
    frames = []
    for (name, model, split), _ in metrics.groupby(["input_set", "model", "split"]):
        for site in ("XX-A01", "XX-B02"):
            obs = 5 + 4 * np.sin(np.arange(60) / 9)
            frames.append(
                pd.DataFrame(
                    {
                        "site": site,
                        "date": days,
                        "input_set": name,
                        "model": model,
                        "split": split,
                        "fold": site,
                        "observed": obs,
                        "predicted": obs + rng.normal(0, 1, 60),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def is_png(path, min_bytes: int = 10_000) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes, path
    return imread(path).shape[:2]


def test_gpp_and_training_figures_write_pngs(tmp_path):
    metrics = metrics_table()
    preds = predictions_table(metrics)
    metrics.to_csv(tmp_path / "metrics.csv", index=False)
    preds.to_parquet(tmp_path / "predictions.parquet")
    for sensor in ("s2", "s1"):
        pd.DataFrame(
            {"epoch": [1, 2, 3], "train_loss": [0.5, 0.3, 0.2], "heldout_loss": [0.4, 0.3, 0.25]}
        ).to_csv(tmp_path / f"pre_{sensor}.csv", index=False)
    pd.DataFrame(
        {
            "epoch": [1, 2],
            "train_loss": [1.0, 0.5],
            "heldout_s2_rmse_hidden": [0.6, 0.4],
            "heldout_embedding_gap": [0.2, 0.1],
            "heldout_s2_code_r2": [0.9, 0.95],
            "heldout_s1_code_r2": [0.6, 0.8],
        }
    ).to_csv(tmp_path / "fusion.csv", index=False)
    summary, differences = bootstrap_tables(preds, BootstrapConfig(replicates=50), seed=0)
    summary.to_csv(tmp_path / "summary.csv", index=False)
    differences.to_csv(tmp_path / "differences.csv", index=False)
    decompose(preds, {"XX-A01": "CRO", "XX-B02": "GRA"}).to_csv(
        tmp_path / "decomposition.csv", index=False
    )
    inputs = {
        "predictions": str(tmp_path / "predictions.parquet"),
        "metrics": str(tmp_path / "metrics.csv"),
        "summary": str(tmp_path / "summary.csv"),
        "differences": str(tmp_path / "differences.csv"),
        "decomposition": str(tmp_path / "decomposition.csv"),
        "pretrain_s2": str(tmp_path / "pre_s2.csv"),
        "pretrain_s1": str(tmp_path / "pre_s1.csv"),
        "fusion": str(tmp_path / "fusion.csv"),
    }
    params = {"model": "gbm", "split": "loyo", "met": True, "date": "auto", "tile": "t"}
    gpp = ("gpp_timeseries", "gpp_scatter", "gpp_skill", "gpp_decomposition")
    for name in (*gpp, "training_curves"):
        out = tmp_path / "figures" / f"{name}.png"
        make_figure(name, inputs, params, out)
        height, width = is_png(out)
        assert 300 < height < 3000 and 600 < width < 3000, (name, height, width)
    assert not list((tmp_path / "figures").glob("*tmp*"))  # nothing half-written left
    with pytest.raises(ValueError, match="unknown figure"):
        make_figure("nope", inputs, params, tmp_path / "nope.png")
    assert set(FIGURES) == set(FIGURE_NAMES)  # every figure the rules make has a plot


def test_scatter_and_skill_panels_hold_every_input_set():
    metrics = metrics_table()
    fig = plot_gpp_scatter(predictions_table(metrics), metrics, "temporal_net")
    titles = {ax.get_title() for ax in fig.axes if ax.get_visible()}
    assert titles >= set(metrics["input_set"])
    preds = predictions_table(metrics)
    summary, differences = bootstrap_tables(preds, BootstrapConfig(replicates=50), seed=0)
    skill = plot_gpp_skill(summary, differences)
    bars = [p for ax in skill.axes for p in ax.patches]
    n_sets = preds["input_set"].nunique()
    assert len(bars) == 2 * 2 * 2 * n_sets  # metrics x models x splits
    # every bar has its interval: one error bar per bar, and one per paired difference
    # (fused against each other set without +met, fused+met against each with it)
    pairs = differences[["input_set", "other"]].drop_duplicates()
    assert len(pairs) == n_sets - 2
    lines = [c for ax in skill.axes[4:] for c in ax.containers]  # the differences row
    assert len(lines) == 2 * 2  # splits x models


def test_a_failing_figure_leaves_no_file(tmp_path):
    import matplotlib.pyplot as plt

    class Broken(Exception):
        pass

    fig = plt.figure()
    fig.savefig = lambda *a, **k: (_ for _ in ()).throw(Broken())
    with pytest.raises(Broken):
        save_png(fig, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_training_curves_show_the_code_probe_only_where_it_was_logged():
    pretrain = {
        "s2": pd.DataFrame({"epoch": [1, 2], "train_loss": [1, 0.5], "heldout_loss": [1, 0.6]})
    }
    fusion = pd.DataFrame(
        {"epoch": [1, 2], "train_loss": [1.0, 0.5], "heldout_s2_rmse_hidden": [0.6, 0.4]}
    )
    assert len(plot_training_curves(pretrain, fusion).axes) == 3
    fusion["heldout_s2_code_r2"] = [0.9, 0.95]
    fusion["heldout_s1_code_r2"] = [0.6, 0.8]
    probe = plot_training_curves(pretrain, fusion).axes[3]
    lines = {line.get_label(): list(line.get_ydata()) for line in probe.get_lines()}
    assert lines == {"S2 code": [0.9, 0.95], "S1 code": [0.6, 0.8]}
