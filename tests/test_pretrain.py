"""Stage-1 pretraining (issue #4): it learns, and an interrupted run resumes exactly."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from ecoembed.models.settings import PretrainConfig
from ecoembed.train.pretrain import PretrainOutputs, pretrain
from ecoembed.train.series import SensorSeries, sensor_series

SMALL = PretrainConfig(
    size=5, frames=3, latent_dim=4, epochs=3, batch_size=32, examples_per_tile=300, seed=3
)


def toy_series(seed: int = 0) -> list[SensorSeries]:
    """Smooth seasonal fields with clouds: enough structure to learn, cheap to train on."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2022-01-01", periods=24, freq="15D")
    t = np.arange(24)[:, None, None, None]
    field = rng.normal(size=(1, 3, 32, 32)).astype(np.float32)
    values = (np.sin(2 * np.pi * t / 24) + field).astype(np.float32)
    values[rng.random((24, 1, 32, 32)).repeat(3, axis=1) < 0.2] = np.nan
    day_of = ((dates - dates[0]).days).to_numpy(np.float32)
    return [SensorSeries(values, day_of, dates)]


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    torch.set_num_threads(1)
    full = PretrainOutputs.in_dir(tmp_path / "full", "s2")
    pretrain(toy_series(), "s2", full, SMALL, progress=False)
    cut = PretrainOutputs.in_dir(tmp_path / "cut", "s2")
    pretrain(toy_series(), "s2", cut, SMALL, progress=False, stop_after_epoch=1)
    assert cut.checkpoint.exists() and not cut.encoder.exists()
    pretrain(toy_series(), "s2", cut, SMALL, progress=False)  # the re-run resumes
    a = torch.load(full.encoder, weights_only=False)
    b = torch.load(cut.encoder, weights_only=False)
    for name, w in a["encoder"].items():
        assert torch.equal(w, b["encoder"][name]), name
    assert pd.read_csv(full.curves).equals(pd.read_csv(cut.curves))
    assert not cut.checkpoint.exists()


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    out = PretrainOutputs.in_dir(tmp_path, "s2")
    pretrain(toy_series(), "s2", out, SMALL, progress=False, stop_after_epoch=1)
    other = PretrainConfig(**{**SMALL.__dict__, "lr": 1e-4})
    with pytest.raises(ValueError, match="another config"):
        pretrain(toy_series(), "s2", out, other, progress=False)


def test_checkpoint_carries_config_and_normalisation(tmp_path):
    out = PretrainOutputs.in_dir(tmp_path, "s1")
    pretrain(toy_series(), "s1", out, SMALL, progress=False)
    state = torch.load(out.encoder, weights_only=False)
    assert state["config"]["latent_dim"] == 4 and state["modality"] == "s1"
    assert state["norm_mean"].shape == (3,) and (state["norm_std"] > 0).all()


def test_pretraining_on_a_cube_beats_the_band_mean(products_cube, tmp_path):
    """On the synthetic world's S2 cube, the held-out central reflectance is decoded far
    better than by predicting each band's mean (normalised RMSE, per band)."""
    from ecoembed.io import zarrio

    _, cube = products_cube
    series = [sensor_series(zarrio.open_zarr(cube), "s2")]
    cfg = PretrainConfig(size=7, frames=5, epochs=5, batch_size=64, examples_per_tile=1500, seed=1)
    out = PretrainOutputs.in_dir(tmp_path / "m", "s2")
    res = pretrain(series, "s2", out, cfg, progress=False)
    assert (res["visible"] < 0.6 * res["baseline"]).all(), (res["visible"], res["baseline"])
    curves = pd.read_csv(out.curves)
    assert curves["train_loss"].iloc[-1] < 0.7 * curves["train_loss"].iloc[0]
    table = pd.read_csv(out.heldout)
    assert list(table.columns) == [
        "band",
        "rmse_centre_visible",
        "rmse_centre_hidden",
        "rmse_band_mean",
        "mae_centre_visible",
    ]
    # the MAE is in reflectance: below the RMSE times the band's standard deviation (MAE <=
    # RMSE), and of the order of that (not in normalised units, not zero)
    norm_std = torch.load(out.encoder, weights_only=True)["norm_std"].numpy()
    scaled = table["rmse_centre_visible"].to_numpy() * norm_std
    assert (table["mae_centre_visible"] <= scaled + 1e-7).all()
    assert (table["mae_centre_visible"] > 0.3 * scaled).all()


def test_training_device_defaults_to_cuda_if_present_and_can_be_overridden(monkeypatch):
    from ecoembed.train.device import training_device

    monkeypatch.delenv("ECOEMBED_DEVICE", raising=False)
    assert training_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("ECOEMBED_DEVICE", "cpu")
    assert training_device() == torch.device("cpu")


def test_the_device_line_says_what_the_device_is_for(monkeypatch, caplog):
    """Training logs "training on ...", export and tower series (resolve_device, also
    behind `python -m ecoembed embed`) "inference on ...", chosen or configured."""
    from ecoembed.train.device import resolve_device, training_device

    monkeypatch.setenv("ECOEMBED_DEVICE", "cpu")
    with caplog.at_level("INFO", logger="ecoembed.train.device"):
        training_device()
        assert resolve_device("auto") == "cpu"
        assert resolve_device("cuda:1") == "cuda:1"  # as configured, not checked here
        training_device(announce=False)
    assert [r.getMessage() for r in caplog.records] == [
        "training on cpu",
        "inference on cpu",
        "inference on cuda:1",
    ]


def test_reproducible_kernels_switch_on_deterministic_algorithms_unless_told_not_to(monkeypatch):
    from ecoembed.train.device import reproducible_kernels

    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        monkeypatch.setenv("ECOEMBED_DETERMINISTIC", "0")
        torch.use_deterministic_algorithms(False)
        assert reproducible_kernels() is False
        assert not torch.are_deterministic_algorithms_enabled()
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
        monkeypatch.delenv("ECOEMBED_DETERMINISTIC")
        assert reproducible_kernels() is True
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


DENSE = PretrainConfig(**{**SMALL.__dict__, "centres_per_window": 8, "window_px": 6})


def test_dense_training_learns_and_resumes_to_the_same_weights(tmp_path):
    """Windows of 8 centres sharing a stem pass: the held-out error falls below the band
    mean's as in one-neighbourhood training, and an interrupted run resumes exactly
    (the windows are drawn anew each epoch from the run's seed)."""
    torch.set_num_threads(1)
    full = PretrainOutputs.in_dir(tmp_path / "full", "s2")
    res = pretrain(toy_series(), "s2", full, DENSE, progress=False)
    assert (res["visible"] < 0.8 * res["baseline"]).all(), (res["visible"], res["baseline"])
    cut = PretrainOutputs.in_dir(tmp_path / "cut", "s2")
    pretrain(toy_series(), "s2", cut, DENSE, progress=False, stop_after_epoch=1)
    pretrain(toy_series(), "s2", cut, DENSE, progress=False)
    a = torch.load(full.encoder, weights_only=False)
    b = torch.load(cut.encoder, weights_only=False)
    for name, w in a["encoder"].items():
        assert torch.equal(w, b["encoder"][name]), name
    one = PretrainOutputs.in_dir(tmp_path / "one", "s2")
    pretrain(toy_series(), "s2", one, SMALL, progress=False)
    c = torch.load(one.encoder, weights_only=False)
    assert not all(torch.equal(w, c["encoder"][n]) for n, w in a["encoder"].items())
    # the same held-out examples and normalisation as one-neighbourhood training
    mean = pd.read_csv(full.heldout)["rmse_band_mean"]
    assert np.allclose(mean, pd.read_csv(one.heldout)["rmse_band_mean"], rtol=1e-6)


def test_dense_training_refuses_a_hidden_centre(tmp_path):
    cfg = PretrainConfig(**{**DENSE.__dict__, "p_centre": 0.5})
    with pytest.raises(ValueError, match="p_centre"):
        pretrain(toy_series(), "s2", PretrainOutputs.in_dir(tmp_path, "s2"), cfg, progress=False)
