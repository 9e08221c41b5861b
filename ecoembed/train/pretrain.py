"""Stage 1: self-supervised pretraining of one sensor's context autoencoder.

Examples are neighbourhoods cut on the fly from the sensor's cubes (held in memory), at
centres from ``sampling.sample_centres``; every fifth spatial block is held out for
evaluation. Inputs are normalised with per-band statistics of the training examples only
(S1 in dB). The skeleton of the run (resume, epochs seeded by (seed, epoch), a checkpoint
per epoch, the final files) is ``ecoembed.train.loop``'s, the format of the files
``ecoembed.models.checkpoint``'s; this module holds what is particular to stage 1: the
examples, the autoencoder, its loss and its held-out figures.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ecoembed.models import ContextEncoder, NeighbourhoodDecoder, context_weights, mask_inputs
from ecoembed.models.checkpoint import encoder_checkpoint
from ecoembed.models.losses import valid_weight, weighted_masked_loss
from ecoembed.models.settings import PretrainConfig
from ecoembed.train.distributed import Distributed, distributed, shard_scale
from ecoembed.train.loop import RunFiles, Stage, fit
from ecoembed.train.sampling import Centres, extract_neighbourhoods, sample_centres
from ecoembed.train.series import SensorSeries, held_out, normalised, series_sha256

log = logging.getLogger(__name__)


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
    enc = ContextEncoder(
        channels,
        size=cfg.size,
        frames=cfg.frames,
        latent_dim=cfg.latent_dim,
        centre_skip=cfg.centre_skip,
    )
    dec = NeighbourhoodDecoder(channels, size=cfg.size, latent_dim=cfg.latent_dim)
    return enc, dec


def centre_errors(
    enc, dec, x: torch.Tensor, dt: torch.Tensor, cfg: PretrainConfig, hide_centre: bool
) -> np.ndarray:
    """Errors (N, C) of the decoded central pixel-date (normalised units, NaN where the
    value is missing)."""
    c, k = cfg.size // 2, cfg.frames // 2
    inp = x.clone()
    if hide_centre:
        inp[:, k, :, c, c] = float("nan")
    with torch.no_grad():
        pred = dec(enc(inp, dt), dt)[:, k, :, c, c]
    return (pred - x[:, k, :, c, c]).cpu().numpy()


def centre_rmse(
    enc, dec, x: torch.Tensor, dt: torch.Tensor, cfg: PretrainConfig, hide_centre: bool
) -> np.ndarray:
    """RMSE per band (normalised units) of the decoded central pixel-date."""
    err = centre_errors(enc, dec, x, dt, cfg, hide_centre)
    return np.sqrt(np.nanmean(err**2, axis=0))


@dataclass(frozen=True)
class PretrainOutputs:
    encoder: Path  # final weights + config + normalisation
    curves: Path  # per-epoch losses (CSV)
    heldout: Path  # held-out central-pixel RMSE per band (normalised) and MAE (sensor units)
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

    def files(self) -> RunFiles:
        return RunFiles(self.encoder, self.curves, self.heldout, self.checkpoint)


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
    run = {"config": asdict(cfg), "modality": modality, "data_sha256": series_sha256(series)}
    return fit(
        lambda: Pretraining(series, modality, cfg, dp),
        run,
        outputs.files(),
        seed=cfg.seed,
        epochs=cfg.epochs,
        dp=dp,
        progress=progress,
        stop_after_epoch=stop_after_epoch,
    )


class Pretraining(Stage):
    """Stage 1 of one sensor: the examples, the autoencoder and its optimiser."""

    def __init__(
        self, series: list[SensorSeries], modality: str, cfg: PretrainConfig, dp: Distributed
    ) -> None:
        self.modality, self.cfg, self.dp = modality, cfg, dp
        self.label, self.title = modality, f"{modality} pretraining"
        self.channels = series[0].values.shape[1]
        self.bands = list(series[0].channels or range(self.channels))
        self.train_idx, val_idx = split_examples(series, cfg)
        self.mean, self.std = band_statistics(series, self.train_idx, cfg)
        self.norm = [normalised(s, self.mean, self.std) for s in series]
        device = dp.device
        self.enc, self.dec = (m.to(device) for m in build_models(self.channels, cfg))
        self.model = dp.wrap(Autoencoder(self.enc, self.dec))
        params = list(self.enc.parameters()) + list(self.dec.parameters())
        self.opt = torch.optim.Adam(params, lr=cfg.lr)
        self.base_lr, self.schedule = cfg.lr, cfg.lr_schedule
        self.context = context_weights(cfg.size, cfg.frames).to(device)
        self.xv, self.dtv = (torch.from_numpy(a).to(device) for a in cut(self.norm, val_idx, cfg))
        self.n_batches = math.ceil(len(self.train_idx) / cfg.batch_size)

    def restore(self, resume: dict) -> None:
        self.enc.load_state_dict(resume["encoder"])
        self.dec.load_state_dict(resume["decoder"])
        self.opt.load_state_dict(resume["optimizer"])

    def begin_epoch(self, rng: np.random.Generator) -> None:
        self.gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        self.order = rng.permutation(len(self.train_idx))
        self.enc.train()
        self.dec.train()

    def batch_loss(self, b: int) -> torch.Tensor:
        cfg, dp, size = self.cfg, self.dp, self.cfg.batch_size
        batch = tile_order(self.train_idx[self.order[b * size : (b + 1) * size]])
        part, n_local = dp.batch_part(len(batch))
        x, dt = (torch.from_numpy(a) for a in cut(self.norm, batch[part], cfg))
        # masks drawn on the CPU from the epoch's stream for the whole batch, this
        # process's rows kept, then moved: the same draws anywhere, in any process count
        inp = mask_inputs(
            x,
            p_frame=cfg.p_frame,
            p_centre=cfg.p_centre,
            generator=self.gen,
            rows=(part, len(batch)),
        )
        x, dt, inp = x.to(dp.device), dt.to(dp.device), inp.to(dp.device)
        loss = weighted_masked_loss(self.model(inp, dt), x, self.context, cfg.loss, cfg.huber_delta)
        if dp.active:  # a weighted mean: each process's share is its part of the weight
            w_local = float(valid_weight(x, self.context)) if n_local else 0.0
            loss = loss * shard_scale(w_local, dp.all_sum(w_local), dp.world_size)
        return loss

    def end_epoch(self, epoch: int, train_loss: float) -> dict:
        self.enc.eval()
        self.dec.eval()
        with torch.no_grad():
            pred = self.dec(self.enc(self.xv, self.dtv), self.dtv)
            # squared error whatever the training loss, so that curves compare across losses
            val_loss = float(weighted_masked_loss(pred, self.xv, self.context))
        self.dp.info(
            log,
            "%s epoch %d: train loss %.4f, held-out loss %.4f",
            self.modality,
            epoch + 1,
            train_loss,
            val_loss,
        )
        return {"epoch": epoch + 1, "train_loss": train_loss, "heldout_loss": val_loss}

    def weights(self) -> dict:
        return {
            "encoder": self.enc.state_dict(),
            "decoder": self.dec.state_dict(),
            "optimizer": self.opt.state_dict(),
        }

    def resume_extra(self) -> dict:
        return {"norm_mean": torch.from_numpy(self.mean), "norm_std": torch.from_numpy(self.std)}

    def finish(self, curves: list[dict]) -> tuple[pd.DataFrame, dict]:
        cfg, xv, dtv = self.cfg, self.xv, self.dtv
        err_visible = centre_errors(self.enc, self.dec, xv, dtv, cfg, hide_centre=False)
        visible = np.sqrt(np.nanmean(err_visible**2, axis=0))
        hidden = centre_rmse(self.enc, self.dec, xv, dtv, cfg, hide_centre=True)
        # in the sensor's own units (S2 reflectance, S1 dB), as the paper reports it
        mae_visible = np.nanmean(np.abs(err_visible), axis=0) * self.std
        # predicting each band's training mean gives, in normalised units, the held-out std
        centre_values = xv[:, cfg.frames // 2, :, cfg.size // 2, cfg.size // 2].cpu().numpy()
        baseline = np.nanstd(centre_values, axis=0)
        figures = pd.DataFrame(
            {
                "band": self.bands,
                "rmse_centre_visible": visible,
                "rmse_centre_hidden": hidden,
                "rmse_band_mean": baseline,
                "mae_centre_visible": mae_visible,
            }
        )
        result = {"visible": visible, "hidden": hidden, "baseline": baseline, "curves": curves}
        return figures, result

    def final_checkpoint(self) -> dict:
        return encoder_checkpoint(
            self.modality, asdict(self.cfg), self.enc, self.dec, self.mean, self.std
        )
