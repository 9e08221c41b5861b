"""Stage 1: self-supervised pretraining of one sensor's context autoencoder.

Examples are neighbourhoods cut on the fly from the sensor's cubes (held in memory), at
centres from ``sampling.sample_centres``; every fifth spatial block is held out for
evaluation. Inputs are normalised with per-band statistics of the training examples only
(S1 in dB). Each epoch ends with an atomic checkpoint (weights, optimiser, config,
normalisation, curves, the SHA-256 of the training data); a re-run resumes from it, and
because every epoch draws from random streams derived from (seed, epoch) a resumed run ends
bit-identical to an uninterrupted one. A checkpoint made from another config, sensor or
data is refused, never resumed. Under torchrun the batches are split over the processes
(ecoembed.train.distributed), with the same optimiser steps as one process.

Checkpoints hold only tensors, numbers, strings and plain containers, and are read with
PyTorch's weights-only unpickler (:func:`load_checkpoint`): a crafted file cannot run code.
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from ecoembed.io.atomic import atomic_path
from ecoembed.io.errors import InputDataError
from ecoembed.io.timeaxis import day_numbers
from ecoembed.models import ContextEncoder, NeighbourhoodDecoder, context_weights, mask_inputs
from ecoembed.models.losses import valid_weight, weighted_masked_mse
from ecoembed.train.distributed import Distributed, distributed, shard_scale
from ecoembed.train.sampling import Centres, extract_neighbourhoods, sample_centres

log = logging.getLogger(__name__)
HOLDOUT_EVERY = 5  # spatial block b (of 4 x 4 per tile) is held out when b % 5 == 0


@dataclass(frozen=True)
class PretrainConfig:
    size: int = 15
    frames: int = 11
    latent_dim: int = 7
    epochs: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    examples_per_tile: int = 2000
    p_frame: float = 0.15
    p_centre: float = 0.5
    seed: int = 42


@dataclass
class SensorSeries:
    """One tile of one sensor: values (T, C, H, W) with NaN where not usable, and days."""

    values: np.ndarray
    day_of: np.ndarray
    dates: pd.DatetimeIndex
    channels: tuple[str, ...] = ()

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.values).all(axis=1)


def sensor_series(cube, modality: str) -> SensorSeries:
    """The series of one sensor from an opened cube: S2 masked to clear views, S1 in dB."""
    if modality == "s2":
        values = np.where(cube["s2_valid"].values[:, None], cube["s2"].values, np.nan)
        times, names = pd.DatetimeIndex(cube["time"].values), cube["band"].values.tolist()
    elif modality == "s1":
        values, times = cube["s1"].values, pd.DatetimeIndex(cube["time_s1"].values)
        names = cube["pol"].values.tolist()
    else:
        raise ValueError(f"unknown modality {modality!r} (expected s1 or s2)")
    day_of = day_numbers(times.values).astype(np.float32)
    return SensorSeries(values.astype(np.float32), day_of, times.normalize(), tuple(names))


def held_out(centres: Centres, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    block = (centres.row * 4 // h) * 4 + centres.col * 4 // w
    return block % HOLDOUT_EVERY == 0


def split_examples(series: list[SensorSeries], cfg: PretrainConfig):
    """Per tile: training and held-out centres (held-out blocks never train)."""
    rng = np.random.default_rng(cfg.seed)
    train, val = [], []
    for k, s in enumerate(series):
        c = sample_centres(
            s.valid, s.dates, n=cfg.examples_per_tile, size=cfg.size, frames=cfg.frames, rng=rng
        )
        ho = held_out(c, s.values.shape[2:])
        train += [(k, t, r, q) for t, r, q in zip(c.t[~ho], c.row[~ho], c.col[~ho], strict=True)]
        val += [(k, t, r, q) for t, r, q in zip(c.t[ho], c.row[ho], c.col[ho], strict=True)]
    return np.array(train, np.int64), np.array(val, np.int64)


def cut(series: list[SensorSeries], idx: np.ndarray, cfg: PretrainConfig):
    """Neighbourhoods and time gaps of the examples ``idx`` (tile, t, row, col), grouped
    by tile (in tile order, each tile's examples in the order given)."""
    xs, dts = [], []
    for k in np.unique(idx[:, 0]):
        sel = idx[idx[:, 0] == k]
        x, dt = extract_neighbourhoods(
            series[k].values,
            series[k].day_of,
            Centres(sel[:, 1], sel[:, 2], sel[:, 3]),
            size=cfg.size,
            frames=cfg.frames,
        )
        xs.append(x)
        dts.append(dt)
    return np.concatenate(xs), np.concatenate(dts)


def band_statistics(series: list[SensorSeries], idx: np.ndarray, cfg: PretrainConfig):
    """Mean and standard deviation per band over the central pixels of training examples."""
    x, _ = cut(series, idx, cfg)
    centre = x[:, cfg.frames // 2, :, cfg.size // 2, cfg.size // 2]
    return centre.mean(axis=0), np.maximum(centre.std(axis=0), 1e-6)


def tile_order(idx: np.ndarray) -> np.ndarray:
    """The examples in the row order ``cut`` returns them in (stable sort by tile): a batch
    so ordered can be split into shards whose cuts, put together, are the batch's cut."""
    return idx[np.argsort(idx[:, 0], kind="stable")]


class Autoencoder(nn.Module):
    """Encoder and decoder as one module: what DistributedDataParallel wraps."""

    def __init__(self, enc: ContextEncoder, dec: NeighbourhoodDecoder) -> None:
        super().__init__()
        self.enc, self.dec = enc, dec

    def forward(self, inp: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(inp, dt), dt)


def build_models(channels: int, cfg: PretrainConfig) -> tuple[ContextEncoder, NeighbourhoodDecoder]:
    torch.manual_seed(cfg.seed)
    enc = ContextEncoder(channels, size=cfg.size, frames=cfg.frames, latent_dim=cfg.latent_dim)
    dec = NeighbourhoodDecoder(channels, size=cfg.size, latent_dim=cfg.latent_dim)
    return enc, dec


def centre_rmse(
    enc, dec, x: torch.Tensor, dt: torch.Tensor, cfg: PretrainConfig, hide_centre: bool
) -> np.ndarray:
    """RMSE per band (normalised units) of the decoded central pixel-date."""
    c, k = cfg.size // 2, cfg.frames // 2
    inp = x.clone()
    if hide_centre:
        inp[:, k, :, c, c] = float("nan")
    with torch.no_grad():
        pred = dec(enc(inp, dt), dt)[:, k, :, c, c]
    err = (pred - x[:, k, :, c, c]).cpu().numpy()
    return np.sqrt(np.nanmean(err**2, axis=0))


def write_training_tables(
    heldout: pd.DataFrame, heldout_path: str | Path, curves: list[dict], curves_path: str | Path
) -> None:
    """The held-out figures and the per-epoch curves of a training run, each atomically."""
    with atomic_path(heldout_path, replace="any") as tmp:
        heldout.to_csv(tmp, index=False)
    with atomic_path(curves_path, replace="any") as tmp:
        pd.DataFrame(curves).to_csv(tmp, index=False)


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` atomically. It must hold only what :func:`load_checkpoint` reads:
    tensors, numbers, strings, None and lists, tuples or dicts of them (no numpy arrays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, replace="any") as tmp:
        torch.save(state, tmp)


RETRAIN = "retrain it (`snakemake pretrained` or `snakemake train_fusion`)"
RESTART = "delete it to retrain from the start"  # what to do with an unusable resume checkpoint


def load_checkpoint(path: str | Path, what: str = "checkpoint", remedy: str = RETRAIN) -> dict:
    """A checkpoint this project wrote, read with PyTorch's weights-only unpickler.

    Nothing in the file can run: an object other than tensors and plain data (a crafted
    pickle, another program's checkpoint, one of an older ecoembed that stored numpy
    arrays) is refused unread, like a corrupt or truncated file, with an InputDataError
    that names the file, says what is wrong with it (``what``: the kind of checkpoint
    expected) and, for an older format, what to do (``remedy``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, f"{what} does not exist")
    if path.stat().st_size == 0:
        raise InputDataError(path, f"{what} is empty")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # zip, pickle-protocol and torch errors alike
        raise InputDataError(path, _unreadable(exc, what, remedy)) from None
    if not isinstance(state, dict):
        raise InputDataError(path, f"{what} holds a {type(state).__name__}, not a checkpoint")
    return state


def _unreadable(exc: Exception, what: str, remedy: str) -> str:
    """What a failed weights-only read of a ``what`` means, in one line."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "WeightsUnpickler error:" in text:
        # torch's message is long and suggests loading the file unsafely: keep its one fact
        after = text.split("WeightsUnpickler error:", 1)[1].strip()
        fact = after.splitlines()[0].split(" was not an allowed global")[0].strip(" .")
        if fact.startswith("Unsupported global: GLOBAL numpy"):
            return f"{what} of an older format (it stores numpy arrays); {remedy}"
        if fact.startswith("Unsupported global"):
            return (
                f"{what} refused unread: it holds Python objects other than tensors and plain "
                f"data ({fact}), which a checkpoint of this project never does; nothing in it "
                "was run"
            )
        return (
            f"{what} refused unread: not the kind of pickle this project writes ({fact}); "
            "nothing in it was run"
        )
    first = text.strip().splitlines()[0].split(". ")[0] if text.strip() else "no message"
    return f"{what} is not a readable PyTorch checkpoint ({type(exc).__name__}: {first})"


def series_sha256(series: list[SensorSeries]) -> str:
    """SHA-256 of the data a run trains on (each tile's values and days, in tile order):
    what tells a resume checkpoint made from other cubes from one made from these."""
    digest = hashlib.sha256()
    for s in series:
        for a in (s.values, s.day_of):
            a = np.ascontiguousarray(a)
            digest.update(f"{a.dtype.str}{a.shape}".encode())
            digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()


RESUME_KEYS = {  # what a resume checkpoint must share with the run, and its mismatch
    "config": "another config",
    "modality": "another sensor",
    "encoder_sha256": "other stage-1 encoders",
    "data_sha256": "other training data (cubes)",
}


def _shown(value: object) -> str:
    return f"sha256 {value[:12]}" if isinstance(value, str) and len(value) == 64 else repr(value)


def check_resume(path: Path, state: dict, run: dict) -> None:
    """Refuse (InputDataError) a resume checkpoint made from anything other than this run's
    ``run`` (keys of RESUME_KEYS): resuming it would give weights no clean run gives."""
    other = []
    for key, now in run.items():
        saved = state.get(key)
        if saved == now:
            continue
        what = RESUME_KEYS[key]
        if saved is None:
            other.append(f"{what} (it records none: written by an older ecoembed)")
        elif isinstance(now, dict) and isinstance(saved, dict):
            keys = sorted(k for k in now.keys() | saved.keys() if saved.get(k) != now.get(k))
            if key == "config":
                diff = ", ".join(f"{k} {saved.get(k)!r} there, {now.get(k)!r} now" for k in keys)
            else:
                diff = ", ".join(keys)
            other.append(f"{what} ({diff})")
        else:
            other.append(f"{what} ({_shown(saved)} there, {_shown(now)} now)")
    if other:
        raise InputDataError(
            path, "resume checkpoint made with " + "; ".join(other) + f"; {RESTART}"
        )


@dataclass(frozen=True)
class PretrainOutputs:
    encoder: Path  # final weights + config + normalisation
    curves: Path  # per-epoch losses (CSV)
    heldout: Path  # held-out central-pixel RMSE per band against the band-mean baseline
    checkpoint: Path  # last finished epoch, for resuming; removed when training completes

    @classmethod
    def in_dir(cls, folder: str | Path, modality: str) -> PretrainOutputs:
        d = Path(folder)
        return cls(
            d / f"encoder_{modality}.pt",
            d / f"pretrain_{modality}_curves.csv",
            d / f"pretrain_{modality}_heldout.csv",
            d / "checkpoints" / f"pretrain_{modality}.pt",
        )


def pretrain(
    series: list[SensorSeries],
    modality: str,
    outputs: PretrainOutputs,
    cfg: PretrainConfig,
    *,
    progress: bool = True,
    stop_after_epoch: int | None = None,
) -> dict:
    """Train (or resume from ``outputs.checkpoint``) and write the outputs.

    ``stop_after_epoch`` ends the run early after that epoch's checkpoint (used to test
    resuming). Returns the held-out figures. Launched by torchrun (``WORLD_SIZE`` > 1),
    the processes share the batches and only rank 0 logs and writes.
    """
    dp = distributed()
    return _pretrain(series, modality, outputs, cfg, dp, progress, stop_after_epoch)


def _pretrain(
    series: list[SensorSeries],
    modality: str,
    outputs: PretrainOutputs,
    cfg: PretrainConfig,
    dp: Distributed,
    progress: bool,
    stop_after_epoch: int | None,
) -> dict:
    ckpt_path = outputs.checkpoint
    channels = series[0].values.shape[1]
    run = {"config": asdict(cfg), "modality": modality, "data_sha256": series_sha256(series)}
    resume = None
    if ckpt_path.exists():
        resume = load_checkpoint(ckpt_path, "resume checkpoint", RESTART)
        check_resume(ckpt_path, resume, run)
    train_idx, val_idx = split_examples(series, cfg)
    mean, std = band_statistics(series, train_idx, cfg)
    norm = [
        SensorSeries(
            (s.values - mean[:, None, None]) / std[:, None, None], s.day_of, s.dates, s.channels
        )
        for s in series
    ]
    device = dp.device
    enc, dec = (m.to(device) for m in build_models(channels, cfg))
    model = dp.wrap(Autoencoder(enc, dec))
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    weights = context_weights(cfg.size, cfg.frames).to(device)
    curves: list[dict] = []
    start = 0
    if resume is not None:
        enc.load_state_dict(resume["encoder"])
        dec.load_state_dict(resume["decoder"])
        opt.load_state_dict(resume["optimizer"])
        start, curves = resume["epoch"] + 1, resume["curves"]
        dp.info(log, "resuming %s pretraining after epoch %d", modality, start)

    xv, dtv = (torch.from_numpy(a).to(device) for a in cut(norm, val_idx, cfg))
    n_batches = math.ceil(len(train_idx) / cfg.batch_size)
    for epoch in range(start, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        order = rng.permutation(len(train_idx))
        enc.train()
        dec.train()
        total = 0.0
        bar = tqdm(
            range(n_batches),
            desc=f"{modality} epoch {epoch + 1}/{cfg.epochs}",
            disable=not progress or not dp.is_main,
        )
        for b in bar:
            batch = tile_order(train_idx[order[b * cfg.batch_size : (b + 1) * cfg.batch_size]])
            part, n_local = dp.batch_part(len(batch))
            x, dt = (torch.from_numpy(a) for a in cut(norm, batch[part], cfg))
            # masks drawn on the CPU from the epoch's stream for the whole batch, this
            # process's rows kept, then moved: the same draws anywhere, in any process count
            inp = mask_inputs(
                x,
                p_frame=cfg.p_frame,
                p_centre=cfg.p_centre,
                generator=gen,
                rows=(part, len(batch)),
            )
            x, dt, inp = x.to(device), dt.to(device), inp.to(device)
            loss = weighted_masked_mse(model(inp, dt), x, weights)
            if dp.active:  # a weighted mean: each process's share is its part of the weight
                w_local = float(valid_weight(x, weights)) if n_local else 0.0
                loss = loss * shard_scale(w_local, dp.all_sum(w_local), dp.world_size)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += dp.all_sum(float(loss.detach())) / dp.world_size
        enc.eval()
        dec.eval()
        with torch.no_grad():
            val_loss = float(weighted_masked_mse(dec(enc(xv, dtv), dtv), xv, weights))
        curves.append(
            {"epoch": epoch + 1, "train_loss": total / n_batches, "heldout_loss": val_loss}
        )
        dp.info(
            log,
            "%s epoch %d: train loss %.4f, held-out loss %.4f",
            modality,
            epoch + 1,
            total / n_batches,
            val_loss,
        )
        if dp.is_main:
            save_checkpoint(
                ckpt_path,
                {
                    "epoch": epoch,
                    **run,
                    "encoder": enc.state_dict(),
                    "decoder": dec.state_dict(),
                    "optimizer": opt.state_dict(),
                    "curves": curves,
                    "norm_mean": torch.from_numpy(mean),
                    "norm_std": torch.from_numpy(std),
                },
            )
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            return {}

    visible = centre_rmse(enc, dec, xv, dtv, cfg, hide_centre=False)
    hidden = centre_rmse(enc, dec, xv, dtv, cfg, hide_centre=True)
    # predicting each band's training mean gives, in normalised units, the held-out std
    centre_values = xv[:, cfg.frames // 2, :, cfg.size // 2, cfg.size // 2].cpu().numpy()
    baseline = np.nanstd(centre_values, axis=0)
    figures = pd.DataFrame(
        {
            "band": list(series[0].channels or range(channels)),
            "rmse_centre_visible": visible,
            "rmse_centre_hidden": hidden,
            "rmse_band_mean": baseline,
        }
    )
    if dp.is_main:
        write_training_tables(figures, outputs.heldout, curves, outputs.curves)
        save_checkpoint(
            outputs.encoder,
            {
                "modality": modality,
                "config": asdict(cfg),
                "encoder": enc.state_dict(),
                "decoder": dec.state_dict(),
                "norm_mean": torch.from_numpy(mean),  # tensors: read without unpickling numpy
                "norm_std": torch.from_numpy(std),
                "channels": channels,
            },
        )
        ckpt_path.unlink()
    return {"visible": visible, "hidden": hidden, "baseline": baseline, "curves": curves}
