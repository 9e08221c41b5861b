"""Stage-2 training (issue #4): frozen encoders, exact resume, and a fused embedding that
reconstructs a hidden clear S2 view far better than the band mean."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ecoembed.embed.model import load_embedding_model
from ecoembed.io.errors import InputDataError
from ecoembed.models.checkpoint import load_checkpoint, load_encoder, untrained_checkpoint
from ecoembed.models.settings import FusionConfig, PretrainConfig
from ecoembed.train.fusion import FusionObjective, FusionOutputs, train_fusion
from ecoembed.train.pretrain import PretrainOutputs, pretrain
from ecoembed.train.series import sensor_series
from tests.test_checkpoints import crafted

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stage1(products_cube, tmp_path_factory):
    """Both encoders pretrained (small settings) on the products world's cube."""
    from ecoembed.io import zarrio

    root = tmp_path_factory.mktemp("stage1")
    cube = zarrio.open_zarr(products_cube[1])

    series = {m: [sensor_series(cube, m)] for m in ("s2", "s1")}
    paths = {}
    for m in ("s2", "s1"):
        out = PretrainOutputs.in_dir(root / "models", m)
        pretrain(
            series[m],
            m,
            out,
            PretrainConfig(
                size=7, frames=5, epochs=4, batch_size=64, examples_per_tile=1200, seed=1
            ),
            progress=False,
        )
        paths[m] = out.encoder
    return series, paths


FAST = FusionConfig(epochs=3, batch_size=64, examples_per_tile=800, seed=2)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_encoders_in_memory_stay_frozen_while_fusion_trains(stage1, tmp_path, monkeypatch):
    """The stage-1 encoders train_fusion holds (loaded once, used for every frozen code)
    have the same weights after training as when loaded, and never took a gradient; the
    fusion checkpoint carries those weights, not a copy of its own."""
    from ecoembed.train import fusion

    series, paths = stage1
    held, before = {}, {}

    def loaded(path):
        enc, state = load_encoder(path)
        held[state["modality"]] = enc
        before[state["modality"]] = {k: v.clone() for k, v in enc.state_dict().items()}
        return enc, state

    monkeypatch.setattr(fusion, "load_encoder", loaded)
    train_fusion(
        series["s2"], series["s1"], paths, FusionOutputs.in_dir(tmp_path), FAST, progress=False
    )
    assert set(held) == {"s2", "s1"}
    for m, enc in held.items():
        assert all(p.grad is None and not p.requires_grad for p in enc.parameters()), m
        after = enc.state_dict()
        assert after.keys() == before[m].keys()
        assert all(torch.equal(after[k], before[m][k]) for k in after), m
    state = load_checkpoint(tmp_path / "fusion.pt")
    assert set(state["encoders"]) == {"s2", "s1"} and "encoder" not in state["fusion"]
    for m, enc in held.items():
        carried = state["encoder_states"][m]["encoder"]
        assert all(torch.equal(carried[k], v) for k, v in enc.state_dict().items()), m


def test_interrupted_fusion_training_resumes_to_the_same_weights(stage1, tmp_path):
    torch.set_num_threads(1)
    series, paths = stage1
    full, cut = FusionOutputs.in_dir(tmp_path / "full"), FusionOutputs.in_dir(tmp_path / "cut")
    train_fusion(series["s2"], series["s1"], paths, full, FAST, progress=False)
    train_fusion(series["s2"], series["s1"], paths, cut, FAST, progress=False, stop_after_epoch=1)
    assert cut.checkpoint.exists() and not cut.model.exists()
    train_fusion(series["s2"], series["s1"], paths, cut, FAST, progress=False)
    a = torch.load(full.model, weights_only=False)["fusion"]
    b = torch.load(cut.model, weights_only=False)["fusion"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert pd.read_csv(full.curves).equals(pd.read_csv(cut.curves))


def test_fused_embedding_reconstructs_hidden_clear_views(stage1, tmp_path):
    """Held-out blocks, the day's own S2 code hidden: the embedding from context and S1
    still decodes the clear reflectance far better than each band's mean."""
    series, paths = stage1
    cfg = FusionConfig(epochs=10, batch_size=64, examples_per_tile=1500, seed=3)
    res = train_fusion(
        series["s2"], series["s1"], paths, FusionOutputs.in_dir(tmp_path), cfg, progress=False
    )
    s2 = res["figures"][res["figures"]["sensor"] == "s2"]
    assert (s2["rmse_day_hidden"] < 0.7 * s2["rmse_band_mean"]).all(), s2
    assert np.median(s2["rmse_day_visible"]) <= np.median(s2["rmse_day_hidden"]) + 0.02
    curves = pd.read_csv(tmp_path / "fusion_curves.csv")
    assert curves["train_loss"].iloc[-1] < 0.8 * curves["train_loss"].iloc[0]


def test_fusion_loss_setting_chooses_the_reconstruction_penalty():
    """fusion.loss reaches the objective: one large error among small ones weighs as its
    square under mse, linearly under l1 and huber."""
    pred, target = torch.tensor([[0.1, -0.1, 2.0]]), torch.zeros(1, 3)
    penalty = {
        kind: float(FusionObjective(None, FusionConfig(loss=kind), {}).penalty(pred, target))
        for kind in ("mse", "huber", "l1")
    }
    assert penalty["mse"] == pytest.approx((0.01 + 0.01 + 4.0) / 3)
    assert penalty["l1"] == pytest.approx(2.2 / 3)
    assert penalty["huber"] == pytest.approx((0.01 + 0.01 + 0.6 * (2.0 - 0.15)) / 3)


def test_consistency_brings_reconstructed_days_onto_observed_ones(stage1, tmp_path):
    """Without the consistency loss a day's embedding jumps between 'S2 visible' and
    'S2 hidden'; with it the held-out gap shrinks, and the reconstruction stays good."""
    series, paths = stage1
    gaps = {}
    for weight in (0.0, 1.0):
        cfg = FusionConfig(epochs=6, batch_size=64, examples_per_tile=800, consistency=weight)
        out = FusionOutputs.in_dir(tmp_path / str(weight))
        res = train_fusion(series["s2"], series["s1"], paths, out, cfg, progress=False)
        curves = pd.read_csv(out.curves)
        gaps[weight] = curves[["heldout_embedding_gap", "heldout_embedding_offset"]].iloc[-1]
        s2 = res["figures"][res["figures"]["sensor"] == "s2"]
        # a brief training; hidden days lie in simulated clouds as long as the world's
        assert s2["rmse_day_hidden"].mean() < 0.9 * s2["rmse_band_mean"].mean()
    offset = {k: g["heldout_embedding_offset"] for k, g in gaps.items()}
    assert offset[1.0] < 0.75 * offset[0.0], gaps


def test_code_loss_keeps_more_of_each_sensors_code(stage1, tmp_path):
    """fusion.code_weight asks the embedding to keep each encoder's code: what of the S1
    code the held-out embeddings cannot map onto linearly is at least halved (without it
    the embedding keeps only what predicts the day's values of the centre pixel). One S1
    token: with the default six, 4 epochs on 800 examples are too few for the embedding to
    summarise them all (held-out S1 code R² 0.68 without the loss, 0.72 with it here; 0.993
    or more in the default run)."""
    series, paths = stage1
    kept = {}
    for weight in (0.0, 3.0):
        cfg = FusionConfig(
            epochs=4, batch_size=64, examples_per_tile=800, code_weight=weight, other_tokens=1
        )
        out = FusionOutputs.in_dir(tmp_path / str(weight))
        train_fusion(series["s2"], series["s1"], paths, out, cfg, progress=False)
        kept[weight] = pd.read_csv(out.curves).iloc[-1]
    lost = {w: 1.0 - k["heldout_s1_code_r2"] for w, k in kept.items()}
    assert lost[3.0] < 0.5 * lost[0.0], kept
    assert kept[3.0]["heldout_s2_code_r2"] > 0.8, kept


def test_resume_refuses_a_checkpoint_made_with_other_encoders(stage1, tmp_path):
    """Encoders A, interrupted; the same run with another S1 encoder (B) must not continue
    A's network: it is refused, naming the encoder that differs, and nothing is trained."""
    series, paths = stage1
    other = PretrainOutputs.in_dir(tmp_path / "other", "s1")
    pretrain(
        series["s1"],
        "s1",
        other,
        PretrainConfig(size=7, frames=5, epochs=1, batch_size=64, examples_per_tile=300, seed=9),
        progress=False,
    )
    out = FusionOutputs.in_dir(tmp_path / "fusion")
    train_fusion(series["s2"], series["s1"], paths, out, FAST, progress=False, stop_after_epoch=1)
    before = out.checkpoint.read_bytes()
    mixed = {"s2": paths["s2"], "s1": other.encoder}
    with pytest.raises(InputDataError) as err:
        train_fusion(series["s2"], series["s1"], mixed, out, FAST, progress=False)
    assert str(err.value) == (
        f"{out.checkpoint}: resume checkpoint made with other stage-1 encoders (s1); "
        "delete it to retrain from the start"
    )
    assert out.checkpoint.read_bytes() == before and not out.model.exists()
    # the checkpoint records what it was made from, as the final model does
    state = load_checkpoint(out.checkpoint)
    assert state["encoder_sha256"] == {m: digest(p) for m, p in paths.items()}


def test_fusion_refuses_a_crafted_resume_checkpoint_unrun(stage1, tmp_path):
    series, paths = stage1
    marker = tmp_path / "pwned"
    out = FusionOutputs.in_dir(tmp_path)
    out.checkpoint.parent.mkdir(parents=True)
    crafted(out.checkpoint, marker)
    with pytest.raises(InputDataError, match="resume checkpoint refused unread") as err:
        train_fusion(series["s2"], series["s1"], paths, out, FAST, progress=False)
    assert str(err.value).startswith(str(out.checkpoint))
    assert not marker.exists() and not out.model.exists()


def structure(value):
    """The shape of a checkpoint: dict keys (not those of a module's weights), leaf types,
    tensor dtypes."""
    if isinstance(value, dict):
        if value and all(isinstance(v, torch.Tensor) for v in value.values()):
            return "weights"
        return {k: structure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [structure(v) for v in value[:1]]
    if isinstance(value, torch.Tensor):
        return f"tensor {value.dtype}"
    return type(value).__name__


def test_trained_and_hand_made_fusion_checkpoints_have_one_format(stage1, tmp_path):
    """untrained_checkpoint (benchmarks, export tests) writes what training writes, and
    both are read by the weights-only loader."""
    series, paths = stage1
    out = FusionOutputs.in_dir(tmp_path)
    cfg = FusionConfig(epochs=1, batch_size=64, examples_per_tile=200, seed=2)
    train_fusion(series["s2"], series["s1"], paths, out, cfg, progress=False)
    trained = load_checkpoint(out.model)
    made = untrained_checkpoint(size=7, frames=5, latent_dim=7, embedding_dim=7)
    made_path = tmp_path / "made.pt"
    torch.save(made, made_path)
    made = load_checkpoint(made_path)
    # a hand-made one comes from no encoder files
    assert made.pop("encoders") == made.pop("encoder_sha256") == {}
    assert set(trained.pop("encoders")) == set(trained.pop("encoder_sha256")) == {"s2", "s1"}
    assert structure(made) == structure(trained)
    assert structure(trained["encoder_states"]["s2"])["norm_mean"] == "tensor torch.float32"
    for path in (out.model, made_path):
        model = load_embedding_model(path)
        assert model.norm["s2"][0].dtype == np.float32 and model.norm["s2"][0].shape == (10,)


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "--cores", "2"]
        + ["-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
        + ["--configfile", str(REPO / "config" / "tiny.yaml"), str(workdir / "small.yaml")],
        capture_output=True,
        text=True,
        timeout=600,
    )


# tiny, smaller still: the test is about which jobs run, not what they learn
SMALL_WORLD = """\
synth: {{tile_size: 64, end: "2022-04-30", n_sites: 1}}
context: {{size: 7, frames: 5}}
pretrain: {{epochs: 1, examples_per_tile: 100, lr: {lr}}}
fusion: {{epochs: 1, examples_per_tile: 100}}
embed: {{daily_start: null, daily_end: null}}  # tiny's daily period lies after this world
"""


@pytest.mark.slow
def test_one_invocation_retrains_the_fusion_after_a_pretraining_change(tmp_path):
    """A change of the pretraining parameters plans pretraining and the fusion in the same
    invocation, and nothing upstream. (With the encoders as ancient() inputs of
    train_fusion it planned pretraining only: the fusion stayed that of the old encoders.)"""
    (tmp_path / "small.yaml").write_text(SMALL_WORLD.format(lr=0.002), encoding="utf-8")
    first = snakemake(tmp_path, "train_fusion")
    assert first.returncode == 0, first.stdout + first.stderr
    again = snakemake(tmp_path, "train_fusion", "-n")  # finished, with Snakemake's metadata
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout + again.stderr
    (tmp_path / "small.yaml").write_text(SMALL_WORLD.format(lr=0.001), encoding="utf-8")
    plan = snakemake(tmp_path, "train_fusion", "-n")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    planned = re.findall(r"^rule (\w+):", plan.stdout, re.MULTILINE)
    assert sorted(planned) == ["pretrain", "pretrain", "train_fusion"], plan.stdout


def small_encoders(size: int, frames: int):
    """Untrained S2 and S1 context encoders, seeded."""
    from ecoembed.models import ContextEncoder

    torch.manual_seed(0)
    enc2 = ContextEncoder(10, size=size, frames=frames, latent_dim=4).eval()
    enc1 = ContextEncoder(2, size=size, frames=frames, latent_dim=4).eval()
    return enc2, enc1


def random_window_series(rng, t2: int, t1: int, h: int, w: int, cloud: float):
    """Random S2 (with a share ``cloud`` of pixel-dates missing) and S1 series on
    irregular days: values unique, so an example's pixel-date is found from its target."""
    from ecoembed.train.series import SensorSeries

    s2v = rng.normal(size=(t2, 10, h, w)).astype(np.float32)
    s2v[np.broadcast_to((rng.random((t2, 1, h, w)) < cloud), s2v.shape)] = np.nan
    s1v = rng.normal(size=(t1, 2, h, w)).astype(np.float32)
    s2_days = (np.cumsum(rng.integers(3, 8, t2)) + 8000.4).astype(np.float32)
    s1_days = (np.cumsum(rng.integers(4, 10, t1)) + 7998.7).astype(np.float32)
    dates = pd.DatetimeIndex(pd.Timestamp("1990-01-01") + pd.to_timedelta(s2_days, "D"))
    s2 = SensorSeries(s2v, s2_days, dates)
    return s2, SensorSeries(s1v, s1_days, pd.DatetimeIndex(dates[:1].repeat(t1)))


def test_window_examples_equal_a_per_pixel_construction():
    """The densely computed examples of a window (codes, context, S1, the anchored
    reconstruction's views) against one neighbourhood per code and brute-force searches,
    on examples far enough from the series' ends and the tile edge for those."""
    from ecoembed.train.fusion import WINDOW_PX, window_examples
    from tests.test_embed import _nearest_clear, encode_at

    rng = np.random.default_rng(11)
    size, frames = 7, 5
    enc2, enc1 = small_encoders(size, frames)
    t2, t1, h, w = 24, 20, 48, 44
    s2, s1 = random_window_series(rng, t2, t1, h, w, 0.4)
    s2v, s2_days, s1_days = s2.values, s2.day_of, s1.day_of
    row, col = 9, 6
    cfg = FusionConfig(context_dates=4)
    k1 = cfg.other_tokens
    assert k1 > 1  # the default: several S1 tokens
    ex = window_examples(s2, s1, enc2, enc1, cfg, row, col, rng)
    assert ex is not None and ex["day_code"].shape[0] > 100
    half = frames // 2
    checked = 0
    for i in range(ex["day_code"].shape[0]):
        target = ex["s2_target"][i]
        # find the example's pixel and date from its target values (random, so unique)
        hit = np.argwhere(
            np.all(
                s2v[:, :, row : row + WINDOW_PX, col : col + WINDOW_PX].transpose(0, 2, 3, 1)
                == target,
                axis=-1,
            )
        )
        assert len(hit) == 1
        t, r, c = hit[0][0], hit[0][1] + row, hit[0][2] + col
        clear = np.isfinite(s2v[:, :, r, c]).all(axis=1)
        near = _nearest_clear(clear, t, 4, 0, t2 - 1)
        np.testing.assert_allclose(
            ex["ctx_dt"][i][ex["ctx_ok"][i]], s2_days[near] - s2_days[t], atol=1e-3
        )
        before = [u for u in range(t - 1, -1, -1) if clear[u]]
        after = [u for u in range(t + 1, t2) if clear[u]]
        if before:
            np.testing.assert_array_equal(ex["before_value"][i], s2v[before[0], :, r, c])
        else:
            assert np.isnan(ex["before_value"][i]).all()
        if after:
            assert ex["after_dt"][i] == pytest.approx(s2_days[after[0]] - s2_days[t], abs=1e-3)
        # the k1 S1 acquisitions nearest the day, nearest first (all valid here)
        s1_ts = np.argsort(np.abs(s1_days - s2_days[t]), kind="stable")[:k1]
        assert ex["s1_ok"][i].all()
        np.testing.assert_allclose(ex["s1_dt"][i], s1_days[s1_ts] - s2_days[t], atol=1e-3)
        full = all(half <= u < t2 - half for u in [t, *near]) and all(
            half <= u < t1 - half for u in s1_ts
        )
        inside = size // 2 <= r < h - size // 2 and size // 2 <= c < w - size // 2
        if not (full and inside):
            continue
        rr, cc = np.array([r]), np.array([c])
        np.testing.assert_allclose(
            ex["day_code"][i], encode_at(enc2, s2, np.array([t]), rr, cc)[0], atol=1e-5
        )
        ctx = encode_at(enc2, s2, np.array(near), rr.repeat(len(near)), cc.repeat(len(near)))
        np.testing.assert_allclose(ex["ctx_code"][i][ex["ctx_ok"][i]], ctx, atol=1e-5)
        codes1 = encode_at(enc1, s1, s1_ts, rr.repeat(k1), cc.repeat(k1))
        np.testing.assert_allclose(ex["s1_codes"][i], codes1, atol=1e-5)
        np.testing.assert_allclose(ex["s1_code"][i], codes1[0], atol=1e-5)  # the nearest
        checked += 1
    assert checked >= 20


def test_hidden_examples_see_nothing_of_their_cloud_run():
    """The cloudy-day inputs of a window's examples equal a per-pixel construction on the
    series with the example's run of dates set to NaN everywhere: context dates and views
    outside the run, their codes from frames in which the run is missing; so no context
    code holds the hidden day's values (which the clear-day context codes do)."""
    from ecoembed.train.fusion import WINDOW_PX, window_examples
    from ecoembed.train.series import SensorSeries
    from tests.test_embed import _nearest_clear, encode_at

    rng = np.random.default_rng(5)
    size, frames = 7, 5
    enc2, enc1 = small_encoders(size, frames)
    t2, t1, h, w = 30, 24, 44, 44
    s2, s1 = random_window_series(rng, t2, t1, h, w, 0.3)
    s2v, s2_days = s2.values, s2.day_of
    row, col = 6, 6
    ex = window_examples(s2, s1, enc2, enc1, FusionConfig(context_dates=4), row, col, rng)
    lengths = ex["run_hi"] - ex["run_lo"] + 1
    assert lengths.min() == 1 and lengths.max() > 1
    # every run is as long as one of the window's cloud gaps (brute force)
    window = np.isfinite(s2v[:, :, row : row + WINDOW_PX, col : col + WINDOW_PX]).all(axis=1)
    gaps = set()
    for px in window.reshape(t2, -1).T:
        run = 0
        for ok in [*px, True]:
            if ok and run:
                gaps.add(run)
            run = 0 if ok else run + 1
    cut = (ex["run_lo"] == 0) | (ex["run_hi"] == t2 - 1)  # cut at the series' ends
    assert set(lengths[~cut].tolist()) <= gaps
    half = frames // 2
    checked = leaked = 0
    for i in range(ex["day_code"].shape[0]):
        hit = np.argwhere(
            np.all(
                s2v[:, :, row : row + WINDOW_PX, col : col + WINDOW_PX].transpose(0, 2, 3, 1)
                == ex["s2_target"][i],
                axis=-1,
            )
        )
        t, r, c = hit[0][0], hit[0][1] + row, hit[0][2] + col
        lo, hi = int(ex["run_lo"][i]), int(ex["run_hi"][i])
        assert lo <= t <= hi
        masked = s2v.copy()
        masked[lo : hi + 1] = np.nan
        clear = np.isfinite(masked[:, :, r, c]).all(axis=1)
        near = _nearest_clear(clear, t, 4, 0, t2 - 1)
        assert not any(lo <= u <= hi for u in near)
        np.testing.assert_allclose(
            ex["hid_ctx_dt"][i][ex["hid_ctx_ok"][i]], s2_days[near] - s2_days[t], atol=1e-3
        )
        before = [u for u in range(lo - 1, -1, -1) if clear[u]]
        after = [u for u in range(hi + 1, t2) if clear[u]]
        for name, side in (("before", before), ("after", after)):
            if side:
                np.testing.assert_array_equal(ex[f"hid_{name}_value"][i], s2v[side[0], :, r, c])
                assert ex[f"hid_{name}_dt"][i] == pytest.approx(
                    s2_days[side[0]] - s2_days[t], abs=1e-3
                )
            else:
                assert np.isnan(ex[f"hid_{name}_value"][i]).all()
        full = all(half <= u < t2 - half for u in near)
        inside = size // 2 <= r < h - size // 2 and size // 2 <= c < w - size // 2
        if not (full and inside and near):
            continue
        rr, cc = np.array([r]).repeat(len(near)), np.array([c]).repeat(len(near))
        hidden = SensorSeries(masked, s2_days, s2.dates)
        ctx = ex["hid_ctx_code"][i][ex["hid_ctx_ok"][i]]
        np.testing.assert_allclose(ctx, encode_at(enc2, hidden, np.array(near), rr, cc), atol=1e-5)
        seen = encode_at(enc2, s2, np.array(near), rr, cc)  # the day's values in the frames
        leaked += int(not np.allclose(ctx, seen, atol=1e-3))
        checked += 1
    assert checked >= 20 and leaked >= checked // 2


def test_a_cosine_schedule_falls_from_the_base_rate_to_its_floor():
    from ecoembed.train.loop import LR_FLOOR, epoch_lr

    rates = [epoch_lr(0.01, e, 5, "cosine") for e in range(5)]
    assert rates[0] == pytest.approx(0.01) and rates[-1] == pytest.approx(0.01 * LR_FLOOR)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert epoch_lr(0.01, 3, 5, "constant") == 0.01
    with pytest.raises(ValueError, match="schedule"):
        epoch_lr(0.01, 0, 5, "step")


def test_cloud_runs_are_each_cloudy_dates_place_in_its_gap():
    from ecoembed.train.fusion import cloud_runs

    clear = np.array(
        [[1, 0, 0], [0, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]], bool
    )  # pixel 2 never clear: beyond the tile edge, left out
    place, length = cloud_runs(clear)
    # pixel 0: dates 1-2 (a gap of 2), date 4 (cut at the end, 1); pixel 1: dates 0-1 (2), 4 (1)
    assert sorted(zip(place.tolist(), length.tolist(), strict=True)) == sorted(
        [(0, 2), (1, 2), (0, 1), (0, 2), (1, 2), (0, 1)]
    )
