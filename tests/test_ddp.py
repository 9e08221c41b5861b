"""Data-parallel training (issue #9): two CPU processes (gloo) split every batch and take
the same optimiser steps as one process, for both training stages.

The two processes are started with torch.multiprocessing (spawn), with the environment
torchrun would give them; the library only reads WORLD_SIZE, RANK and LOCAL_RANK.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from ecoembed.models import FusionNetwork
from ecoembed.models.settings import FusionConfig, PretrainConfig
from ecoembed.train import fusion as fusion_mod
from ecoembed.train import pretrain as pretrain_mod
from ecoembed.train.distributed import Distributed, shard_scale
from ecoembed.train.fusion import FusionOutputs, train_fusion
from ecoembed.train.pretrain import PretrainOutputs, pretrain, split_examples
from ecoembed.train.series import SensorSeries

WORLD = 2
# The gradients of the two runs agree to float rounding (~1e-7 relative); Adam's first
# steps move a weight by about lr * sign(gradient), so a weight whose gradient is almost
# zero can still end a step apart. Measured here: the weights end 5e-4 (relative to how
# far training moved them) apart, the losses 2e-7; splitting the weighted loss by count
# instead of weight gives 6e-2 and 6e-4.
WEIGHT_TOLERANCE = 5e-3
LOSS_RTOL = 1e-5


def toy(channels: tuple[str, ...], seed: int, cloud: float) -> list[SensorSeries]:
    """Smooth seasonal fields, with gaps where ``cloud`` > 0: cheap, learnable, and with
    an uneven number of valid values per example (so the weighted loss must be split
    by weight, not by count)."""
    rng = np.random.default_rng(seed)
    n_t, c = 24, len(channels)
    dates = pd.date_range("2022-01-01", periods=n_t, freq="15D")
    t = np.arange(n_t)[:, None, None, None]
    field = rng.normal(size=(1, c, 24, 24)).astype(np.float32)
    values = (np.sin(2 * np.pi * t / n_t) + field).astype(np.float32)
    values[rng.random((n_t, 1, 24, 24)).repeat(c, axis=1) < cloud] = np.nan
    day_of = ((dates - dates[0]).days).to_numpy(np.float32)
    return [SensorSeries(values, day_of, dates, channels)]


def s2_series() -> list[SensorSeries]:
    return toy(("B04", "B08", "B11"), seed=0, cloud=0.2)


def s1_series() -> list[SensorSeries]:
    return toy(("VV", "VH"), seed=1, cloud=0.0)


BASE = PretrainConfig(size=5, frames=3, latent_dim=4, epochs=2, examples_per_tile=200, seed=3)


def pretrain_config() -> PretrainConfig:
    """BASE with a batch size that leaves one example for the last batch of an epoch:
    one of the two processes then has no row of its own in that step."""
    train_idx, _ = split_examples(s2_series(), BASE)
    size = next(b for b in range(10, 64) if train_idx.shape[0] % b == 1)
    return PretrainConfig(**{**BASE.__dict__, "batch_size": size})


FUSION = FusionConfig(
    embedding_dim=3, epochs=2, batch_size=40, examples_per_tile=150, code_weight=1.0, seed=5
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _count_rows(module, method: str, log: list[int]) -> None:
    """Record the batch size of every training forward pass (rows this process ran)."""
    original = getattr(module, method)

    def counted(self, *args, **kwargs):
        log.append(int(args[0].shape[0] if torch.is_tensor(args[0]) else args[0][0].shape[0]))
        return original(self, *args, **kwargs)

    setattr(module, method, counted)


def _worker(rank: int, root: str, port: int, encoders: dict[str, str]) -> None:
    """One of the torchrun-like processes: both stages, outputs under root/ddp."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(WORLD),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        ECOEMBED_DEVICE="cpu",  # gloo on CPU, even where a GPU is present
    )
    torch.set_num_threads(1)
    rows: dict[str, list[int]] = {"pretrain": [], "fusion": []}
    _count_rows(pretrain_mod.Autoencoder, "forward", rows["pretrain"])
    _count_rows(fusion_mod.FusionObjective, "forward", rows["fusion"])
    out = Path(root) / "ddp"
    pretrain(
        s2_series(), "s2", PretrainOutputs.in_dir(out, "s2"), pretrain_config(), progress=False
    )
    train_fusion(
        s2_series(), s1_series(), encoders, FusionOutputs.in_dir(out), FUSION, progress=False
    )
    (Path(root) / f"rows_{rank}.json").write_text(json.dumps(rows))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process, then two processes, on the same problems."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ddp")
    enc = {}
    for m, series in (("s2", s2_series()), ("s1", s1_series())):
        out = PretrainOutputs.in_dir(root / "encoders", m)
        pretrain(series, m, out, BASE, progress=False)
        enc[m] = str(out.encoder)
    single = root / "single"
    pretrain(
        s2_series(), "s2", PretrainOutputs.in_dir(single, "s2"), pretrain_config(), progress=False
    )
    train_fusion(
        s2_series(), s1_series(), enc, FusionOutputs.in_dir(single), FUSION, progress=False
    )
    mp.spawn(_worker, args=(str(root), _free_port(), enc), nprocs=WORLD, join=True)
    rows = [json.loads((root / f"rows_{r}.json").read_text()) for r in range(WORLD)]
    return root, rows


def relative_distance(a: dict, b: dict, start: dict) -> float:
    """|a - b| over |a - start| (Euclidean, over all weights): how far apart two trained
    states are, as a fraction of how far training moved them."""
    assert a.keys() == b.keys() == start.keys()
    apart = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a)
    moved = sum(float(((a[k] - start[k]) ** 2).sum()) for k in a)
    return (apart / moved) ** 0.5


def test_two_processes_pretrain_to_the_weights_of_one(runs):
    root, _ = runs
    one = torch.load(root / "single" / "encoder_s2.pt", weights_only=False)
    two = torch.load(root / "ddp" / "encoder_s2.pt", weights_only=False)
    enc, dec = pretrain_mod.build_models(3, pretrain_config())
    assert relative_distance(one["encoder"], two["encoder"], enc.state_dict()) < WEIGHT_TOLERANCE
    assert relative_distance(one["decoder"], two["decoder"], dec.state_dict()) < WEIGHT_TOLERANCE
    c1 = pd.read_csv(root / "single" / "pretrain_s2_curves.csv")
    c2 = pd.read_csv(root / "ddp" / "pretrain_s2_curves.csv")
    np.testing.assert_allclose(c1.to_numpy(), c2.to_numpy(), rtol=LOSS_RTOL)
    assert not (root / "ddp" / "checkpoints" / "pretrain_s2.pt").exists()


def test_two_processes_train_fusion_to_the_weights_of_one(runs):
    root, _ = runs
    one = torch.load(root / "single" / "fusion.pt", weights_only=False)["fusion"]
    two = torch.load(root / "ddp" / "fusion.pt", weights_only=False)["fusion"]
    torch.manual_seed(FUSION.seed)  # the initial network, as train_fusion builds it
    start = FusionNetwork({"s2": 3, "s1": 2}, latent_dim=4, embedding_dim=3).state_dict()
    assert relative_distance(one, two, start) < WEIGHT_TOLERANCE
    c1 = pd.read_csv(root / "single" / "fusion_curves.csv")
    c2 = pd.read_csv(root / "ddp" / "fusion_curves.csv")
    np.testing.assert_allclose(c1["train_loss"], c2["train_loss"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(c1.to_numpy(), c2.to_numpy(), rtol=1e-3)


def test_each_process_runs_half_of_every_batch(runs):
    """The batches are split, not repeated: in every step the two processes ran half of
    the batch each (one more row for one of them when it is odd), together all of it; in
    the one-example last batch of an epoch, the process without a row ran a stand-in."""
    _, rows = runs
    cfg = pretrain_config()
    n_train = split_examples(s2_series(), cfg)[0].shape[0]
    sizes = [min(cfg.batch_size, n_train - i) for i in range(0, n_train, cfg.batch_size)]
    assert sizes[-1] == 1
    first, second = rows[0]["pretrain"], rows[1]["pretrain"]
    assert first == [(n + 1) // 2 for n in sizes] * cfg.epochs
    assert second == [max(n // 2, 1) for n in sizes] * cfg.epochs
    n_fusion = [a + b for a, b in zip(rows[0]["fusion"], rows[1]["fusion"], strict=True)]
    assert all(n <= FUSION.batch_size for n in n_fusion)
    assert rows[0]["fusion"] == [(n + 1) // 2 for n in n_fusion]


def test_only_rank_zero_writes(runs):
    root, _ = runs
    written = sorted(p.name for p in (root / "ddp").iterdir())
    assert written == [
        "checkpoints",
        "encoder_s2.pt",
        "fusion.pt",
        "fusion_curves.csv",
        "fusion_heldout.csv",
        "pretrain_s2_curves.csv",
        "pretrain_s2_heldout.csv",
    ]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 8])
def test_shards_cover_a_batch_once(n):
    parts = [Distributed(r, 3, torch.device("cpu")).shard(n) for r in range(3)]
    covered = [i for p in parts for i in range(n)[p]]
    assert covered == list(range(n))
    assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_shard_scale_recovers_the_mean_of_the_whole_batch():
    """Per-process means, scaled and averaged as DDP averages gradients, are the mean."""
    values = np.arange(1.0, 8.0)
    parts = [values[:3], values[3:]]
    scaled = [p.mean() * shard_scale(p.size, values.size, 2) for p in parts]
    assert np.mean(scaled) == pytest.approx(values.mean())
    assert shard_scale(5.0, 5.0, 1) == 1.0 and shard_scale(0.0, 0.0, 2) == 0.0
