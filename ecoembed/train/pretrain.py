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
from ecoembed.train.sampling import (
    Centres,
    Windows,
    extract_neighbourhoods,
    sample_centres,
    window_centres,
)
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


def held_out_masks(series: list[SensorSeries]) -> list[np.ndarray]:
    """Per tile, (H, W) True outside the held-out blocks: where training centres may lie."""
    masks = []
    for s in series:
        h, w = s.values.shape[2:]
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        grid = Centres(np.zeros(h * w, np.int64), rows.ravel(), cols.ravel())
        masks.append(~held_out(grid, (h, w)).reshape(h, w))
    return masks


def epoch_windows(
    series: list[SensorSeries],
    train_idx: np.ndarray,
    allowed: list[np.ndarray],
    n_windows: int,
    cfg: PretrainConfig,
    rng: np.random.Generator,
) -> Windows:
    """Dense training's windows of one epoch: ``n_windows`` training centres drawn anew
    each epoch (so that over the epochs many more places and dates train than one epoch
    holds), each with more centres of its date outside the held-out blocks
    (``window_centres``)."""
    anchors = train_idx[np.sort(rng.choice(len(train_idx), n_windows, replace=False))]
    return window_centres(
        anchors,
        [s.valid for s in series],
        allowed,
        size=cfg.size,
        px=cfg.window_px,
        per_window=cfg.centres_per_window,
        rng=rng,
    )


def cut_windows(series: list[SensorSeries], win: Windows, sel: np.ndarray, cfg: PretrainConfig):
    """The windows ``sel``: their frames (G, T, C, px + size - 1, ...), the gaps to their
    central dates (G, T), and, for their centres in window order, the window of each
    (index into ``sel``), its row and column in the stem's output grid and its
    neighbourhood (N, T, C, size, size), the reconstruction target."""
    half_s, half_t, side = cfg.size // 2, cfg.frames // 2, win.px
    frames, dts, group, rows, cols, targets = [], [], [], [], [], []
    for j, g in enumerate(sel):
        s, t, r0, c0 = series[win.tile[g]], win.t[g], win.row0[g], win.col0[g]
        x = s.values[
            t - half_t : t + half_t + 1,
            :,
            r0 - half_s : r0 + side + half_s,
            c0 - half_s : c0 + side + half_s,
        ]
        members = np.flatnonzero(win.group == g)
        r, c = win.row[members] - r0, win.col[members] - c0
        frames.append(x)
        dts.append(s.day_of[t - half_t : t + half_t + 1] - s.day_of[t])
        group.append(np.full(members.size, j))
        rows.append(r)
        cols.append(c)
        targets += [x[:, :, i : i + cfg.size, k : k + cfg.size] for i, k in zip(r, c, strict=True)]
    return (
        np.stack(frames),
        np.stack(dts).astype(np.float32),
        tuple(np.concatenate(a) for a in (group, rows, cols)),
        np.stack(targets),
    )


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


class WindowAutoencoder(Autoencoder):
    """The same autoencoder on dense training's windows (``ContextEncoder.window_codes``)."""

    def forward(self, windows, dt, at, drop) -> torch.Tensor:
        return self.dec(self.enc.window_codes(windows, dt, at, drop), dt[at[0]])


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
        self.dense = cfg.centres_per_window > 1
        if self.dense:
            if cfg.p_centre > 0:
                raise ValueError("dense training (centres_per_window > 1) needs p_centre 0")
            self.allowed = held_out_masks(series)
            self.model = dp.wrap(WindowAutoencoder(self.enc, self.dec))
        else:
            self.model = dp.wrap(Autoencoder(self.enc, self.dec))
        params = list(self.enc.parameters()) + list(self.dec.parameters())
        self.opt = torch.optim.Adam(params, lr=cfg.lr)
        self.base_lr, self.schedule = cfg.lr, cfg.lr_schedule
        self.context = context_weights(cfg.size, cfg.frames).to(device)
        self.xv, self.dtv = (torch.from_numpy(a).to(device) for a in cut(self.norm, val_idx, cfg))
        # an epoch: the training examples in batches of batch_size, or in dense training
        # as many centres in windows of centres_per_window (fewer where a window's
        # square has fewer valid pixels on its date)
        self.n_units, self.per_batch = len(self.train_idx), cfg.batch_size
        if self.dense:
            g = cfg.centres_per_window
            self.n_units = max(1, math.ceil(len(self.train_idx) / g))
            self.per_batch = max(1, round(cfg.batch_size / g))
        self.n_batches = math.ceil(self.n_units / self.per_batch)

    def restore(self, resume: dict) -> None:
        self.enc.load_state_dict(resume["encoder"])
        self.dec.load_state_dict(resume["decoder"])
        self.opt.load_state_dict(resume["optimizer"])

    def begin_epoch(self, rng: np.random.Generator) -> None:
        self.gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        if self.dense:
            self.windows = epoch_windows(
                self.norm, self.train_idx, self.allowed, self.n_units, self.cfg, rng
            )
        self.order = rng.permutation(self.n_units)
        self.enc.train()
        self.dec.train()

    def batch_loss(self, b: int) -> torch.Tensor:
        if self.dense:
            return self.window_batch_loss(b)
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

    def window_batch_loss(self, b: int) -> torch.Tensor:
        """Dense training: the batch's windows; each centre's frames are dropped as
        ``mask_inputs`` drops them, drawn for the whole batch in window order and this
        process's windows' part kept (the same draws in any process count)."""
        cfg, dp = self.cfg, self.dp
        sel = self.order[b * self.per_batch : (b + 1) * self.per_batch]
        ends = np.concatenate([[0], np.cumsum(np.bincount(self.windows.group)[sel])])
        drop = torch.rand(int(ends[-1]), cfg.frames, generator=self.gen) < cfg.p_frame
        part, n_local = dp.batch_part(len(sel))
        frames, dt, at, x = cut_windows(self.norm, self.windows, sel[part], cfg)
        drop = drop[ends[part.start] : ends[part.stop]]
        device = dp.device
        frames, dt, x = (torch.from_numpy(a).to(device) for a in (frames, dt, x))
        at = tuple(torch.from_numpy(a).to(device) for a in at)
        loss = weighted_masked_loss(
            self.model(frames, dt, at, drop.to(device)), x, self.context, cfg.loss, cfg.huber_delta
        )
        if dp.active:
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
