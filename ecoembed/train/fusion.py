"""Stage 2: training of the fusion network over the frozen per-sensor encoders.

An example is a pixel on a date with a clear S2 view (the target). Its inputs are the
frozen S2 code of that day, the S2 codes of the nearest clear dates before and after it
(context), and the S1 code of the nearest S1 acquisition, each with its gap in days.
Half of the days' own S2 codes are hidden on purpose (the "missing" token), so the same
network learns to produce the cloud-free embedding of a day it cannot see, and to decode
it into S2 reflectance and S1 backscatter. Codes are computed once: the encoders are
frozen, loaded from their stage-1 checkpoints and never updated. A resume checkpoint is
used only when it was made with the same config, the same encoder files (SHA-256) and the
same data. The skeleton of the run (resume, epochs seeded by (seed, epoch), a checkpoint
per epoch, the final files) is ``ecoembed.train.loop``'s, the format of the files
``ecoembed.models.checkpoint``'s; this module holds what is particular to stage 2.
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
from tqdm import tqdm

from ecoembed.io.sensors import SENSOR_NAMES
from ecoembed.models import ContextEncoder, FusionNetwork
from ecoembed.models.checkpoint import encoder_norm, file_sha256, fusion_checkpoint, load_encoder
from ecoembed.models.settings import FusionConfig
from ecoembed.train.distributed import Distributed, distributed, shard_scale
from ecoembed.train.loop import RunFiles, Stage, fit
from ecoembed.train.sampling import Centres, extract_neighbourhoods, sample_centres
from ecoembed.train.series import SensorSeries, held_out, normalised, series_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusionOutputs:
    model: Path
    curves: Path
    heldout: Path
    checkpoint: Path

    @classmethod
    def in_dir(cls, folder: str | Path) -> FusionOutputs:
        d = Path(folder)
        return cls(
            d / "fusion.pt",
            d / "fusion_curves.csv",
            d / "fusion_heldout.csv",
            d / "checkpoints" / "fusion.pt",
        )

    def files(self) -> RunFiles:
        return RunFiles(self.model, self.curves, self.heldout, self.checkpoint)


@torch.no_grad()
def encode_at(
    enc: ContextEncoder,
    s: SensorSeries,
    t: np.ndarray,
    r: np.ndarray,
    c: np.ndarray,
    batch: int = 1024,
) -> np.ndarray:
    out = []
    for i in range(0, t.size, batch):
        x, dt = extract_neighbourhoods(
            s.values,
            s.day_of,
            Centres(t[i : i + batch], r[i : i + batch], c[i : i + batch]),
            size=enc.size,
            frames=enc.frames,
        )
        device = next(enc.parameters()).device
        codes = enc(torch.from_numpy(x).to(device), torch.from_numpy(dt).to(device))
        out.append(codes.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, enc.temporal.out.out_features))


def _nearest_clear(valid_px: np.ndarray, t: int, k: int, lo: int, hi: int) -> list[int]:
    """Up to k // 2 clear dates before and after t (within the encodable range lo..hi)."""
    before = [u for u in range(t - 1, lo - 1, -1) if valid_px[u]][: k // 2]
    after = [u for u in range(t + 1, hi + 1) if valid_px[u]][: k - k // 2]
    return before + after


def tile_examples(
    s2: SensorSeries, s1: SensorSeries, enc2, enc1, cfg: FusionConfig, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Codes, gaps and targets of one tile's examples (see the module docstring)."""
    half_t2, half_t1 = enc2.frames // 2, enc1.frames // 2
    s2_valid, s1_valid = s2.valid, s1.valid  # once: each is a pass over the tile
    centres = sample_centres(
        s2_valid, s2.dates, n=cfg.examples_per_tile, size=enc2.size, frames=enc2.frames, rng=rng
    )
    t, r, c = centres.t, centres.row, centres.col
    n, k = t.size, cfg.context_dates
    ctx_t = np.repeat(t[:, None], k, axis=1)  # absent slots: the day (masked out anyway)
    ctx_ok = np.zeros((n, k), bool)
    for i in range(n):
        near = _nearest_clear(
            s2_valid[:, r[i], c[i]], int(t[i]), k, half_t2, s2.values.shape[0] - 1 - half_t2
        )
        ctx_t[i, : len(near)], ctx_ok[i, : len(near)] = near, True
    s1_ok = s1_valid[:, r, c].T  # (n, T1)
    s1_ok[:, :half_t1] = s1_ok[:, s1.values.shape[0] - half_t1 :] = False
    gap = np.abs(s1.day_of[None, :] - s2.day_of[t][:, None])
    t1 = np.argmin(np.where(s1_ok, gap, np.inf), axis=1)
    ctx_flat = ctx_t.ravel()
    rr, cc = np.repeat(r, k), np.repeat(c, k)
    ctx_codes = encode_at(enc2, s2, ctx_flat, rr, cc).reshape(n, k, -1)
    return {
        "day_code": encode_at(enc2, s2, t, r, c),
        "ctx_code": ctx_codes,
        "ctx_dt": (s2.day_of[ctx_t] - s2.day_of[t][:, None]).astype(np.float32),
        "ctx_ok": ctx_ok,
        "s1_code": encode_at(enc1, s1, t1, r, c),
        "s1_dt": (s1.day_of[t1] - s2.day_of[t]).astype(np.float32),
        "s2_target": s2.values[t, :, r, c],
        "s1_target": s1.values[t1, :, r, c],
        "held_out": held_out(centres, s2.values.shape[2:]),
    }


def _batch(ex: dict, idx: np.ndarray, hide: np.ndarray, device: torch.device) -> tuple:
    f = {k: torch.from_numpy(np.ascontiguousarray(v[idx])).to(device) for k, v in ex.items()}
    return (
        (
            f["day_code"],
            torch.from_numpy(~hide).to(device),
            f["ctx_code"],
            f["ctx_dt"],
            f["ctx_ok"],
            {"s1": (f["s1_code"], f["s1_dt"])},
        ),
        f["s2_target"],
        f["s1_target"],
    )


def hidden_day(inputs: tuple) -> tuple:
    """The same inputs with every example's own S2 code hidden."""
    day_code, present, *rest = inputs
    return (day_code, torch.zeros_like(present), *rest)


def consistency_loss(net: FusionNetwork, inputs: tuple, z: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between the embedding of each visible day computed without
    its own S2 view and the embedding with it (held fixed): the reconstructed embedding
    of a cloudy day should land where a clear view would have put it, so that the daily
    product has no jump between observed and reconstructed days."""
    visible = inputs[1]
    if not bool(visible.any()):
        return z.new_zeros(())
    z_hidden, _ = net(*hidden_day(inputs))
    return ((z_hidden[visible] - z[visible].detach()) ** 2).mean()


CODE_KEYS = {"s2": "day_code", "s1": "s1_code"}  # each sensor's frozen code in the examples


def code_scales(
    ex: dict, idx: np.ndarray, device: torch.device
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Mean and standard deviation of each sensor's code over the training examples."""
    return {
        m: (
            torch.from_numpy(ex[k][idx].mean(0)).to(device),
            torch.from_numpy(np.maximum(ex[k][idx].std(0), 1e-6)).to(device),
        )
        for m, k in CODE_KEYS.items()
    }


def code_loss(net: FusionNetwork, inputs: tuple, z: torch.Tensor, scales: dict) -> torch.Tensor:
    """Mean squared error of each sensor's standardised frozen code decoded from the
    embedding: asks the embedding to keep what each encoder saw (its spatio-temporal
    context included), not only what predicts the day's values of the centre pixel."""
    codes = {"s2": inputs[0], "s1": inputs[5]["s1"][0]}
    total = z.new_zeros(())
    for m, code in codes.items():
        mean, std = scales[m]
        total = total + ((net.code_heads[m](z) - (code - mean) / std) ** 2).mean()
    return total


class FusionObjective(nn.Module):
    """The training loss of one (part of a) batch as a module's forward, so that every
    pass through the network, the consistency pass and the code heads included, happens
    inside the one forward that DistributedDataParallel wraps.

    ``row_scale`` and ``visible_scale`` weigh the means over rows and over visible rows
    (``distributed.shard_scale``); both are 1.0 in one process.
    """

    def __init__(self, net: FusionNetwork, cfg: FusionConfig, scales: dict) -> None:
        super().__init__()
        self.net, self.cfg, self.scales = net, cfg, scales

    def forward(
        self,
        inputs: tuple,
        y2: torch.Tensor,
        y1: torch.Tensor,
        row_scale: float = 1.0,
        visible_scale: float = 1.0,
    ) -> torch.Tensor:
        z, dec = self.net(*inputs)
        loss = (((dec["s2"] - y2) ** 2).mean() + ((dec["s1"] - y1) ** 2).mean()) * row_scale
        if self.cfg.consistency > 0:
            loss = loss + self.cfg.consistency * (
                consistency_loss(self.net, inputs, z) * visible_scale
            )
        if self.cfg.code_weight > 0:
            loss = loss + self.cfg.code_weight * (
                code_loss(self.net, inputs, z, self.scales) * row_scale
            )
        return loss


def heldout_embeddings(net: FusionNetwork, ex: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out embeddings with each day's own S2 view visible and with it hidden."""
    idx = np.flatnonzero(ex["held_out"])
    device = next(net.parameters()).device
    inputs, _, _ = _batch(ex, idx, np.zeros(idx.size, bool), device)
    with torch.no_grad():
        z_vis, _ = net(*inputs)
        z_hid, _ = net(*hidden_day(inputs))
    return z_vis, z_hid


def heldout_code_r2(z_visible: torch.Tensor, ex: dict) -> dict[str, float]:
    """How much of each sensor's code the held-out embeddings (day visible) keep: R² of
    the best linear map from the embedding to the code, pooled over the code's dims."""
    idx = np.flatnonzero(ex["held_out"])
    design = np.column_stack([z_visible.cpu().numpy().astype(np.float64), np.ones(idx.size)])
    out = {}
    for m, k in CODE_KEYS.items():
        code = ex[k][idx].astype(np.float64)
        coef = np.linalg.lstsq(design, code, rcond=None)[0]
        resid = ((code - design @ coef) ** 2).sum()
        out[m] = float(1.0 - resid / ((code - code.mean(0)) ** 2).sum())
    return out


def heldout_consistency(z_vis: torch.Tensor, z_hid: torch.Tensor) -> tuple[float, float]:
    """Held-out embeddings with the day hidden minus with it visible: the RMS distance
    (what context and S1 cannot know about the day, plus any offset) and the RMS over
    dimensions of the mean difference (the systematic offset alone)."""
    diff = z_hid - z_vis
    return float(torch.sqrt((diff**2).mean())), float(torch.sqrt((diff.mean(0) ** 2).mean()))


def heldout_rmse(net: FusionNetwork, ex: dict, hide: bool) -> tuple[np.ndarray, np.ndarray]:
    idx = np.flatnonzero(ex["held_out"])
    device = next(net.parameters()).device
    inputs, y2, y1 = _batch(ex, idx, np.full(idx.size, hide), device)
    with torch.no_grad():
        _, dec = net(*inputs)
    return (
        np.sqrt(((dec["s2"] - y2) ** 2).mean(0).cpu().numpy()),
        np.sqrt(((dec["s1"] - y1) ** 2).mean(0).cpu().numpy()),
    )


def train_fusion(
    s2_series: list[SensorSeries],
    s1_series: list[SensorSeries],
    encoder_paths: dict,
    outputs: FusionOutputs,
    cfg: FusionConfig,
    *,
    progress: bool = True,
    stop_after_epoch: int | None = None,
) -> dict:
    """Train (or resume) the fusion network; write the model, curves and held-out figures.

    Launched by torchrun (``WORLD_SIZE`` > 1), the processes share the batches and only
    rank 0 logs and writes.
    """
    dp = distributed()
    series = {"s2": s2_series, "s1": s1_series}
    encoders = {m: load_encoder(encoder_paths[m]) for m in SENSOR_NAMES}
    # what a resume checkpoint must have been made from (the final checkpoint records it too)
    run = {
        "config": asdict(cfg),
        "encoder_sha256": {m: file_sha256(encoder_paths[m]) for m in SENSOR_NAMES},
        "data_sha256": series_sha256([s for m in SENSOR_NAMES for s in series[m]]),
    }
    sources = {"encoders": encoder_paths, "encoder_sha256": run["encoder_sha256"]}
    return fit(
        lambda: FusionTraining(series, encoders, sources, cfg, dp, progress),
        run,
        outputs.files(),
        seed=cfg.seed,
        epochs=cfg.epochs,
        dp=dp,
        progress=progress,
        stop_after_epoch=stop_after_epoch,
    )


def frozen_examples(
    series: dict[str, list[SensorSeries]],
    encoders: dict[str, tuple[ContextEncoder, dict]],
    cfg: FusionConfig,
    dp: Distributed,
    progress: bool,
) -> dict[str, np.ndarray]:
    """The examples of every tile (``tile_examples``), their frozen codes computed once."""
    (enc2, st2), (enc1, st1) = encoders["s2"], encoders["s1"]
    rng = np.random.default_rng(cfg.seed)
    dp.info(log, "computing the frozen codes of %d tiles' examples", len(series["s2"]))
    parts = [
        tile_examples(
            normalised(a, *encoder_norm(st2)),
            normalised(b, *encoder_norm(st1)),
            enc2,
            enc1,
            cfg,
            rng,
        )
        for a, b in tqdm(
            list(zip(series["s2"], series["s1"], strict=True)),
            desc="fusion examples",
            unit="tile",
            disable=not progress or not dp.is_main,
        )
    ]
    dp.info(
        log,
        "%d examples (%d held out)",
        sum(len(p["held_out"]) for p in parts),
        sum(int(p["held_out"].sum()) for p in parts),
    )
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def figure_rows(
    sensor: str, bands: tuple[str, ...], visible: np.ndarray, hidden: np.ndarray, band_mean
) -> list[dict]:
    """One sensor's rows of the held-out figures."""
    return [
        {
            "sensor": sensor,
            "band": b,
            "rmse_day_visible": v,
            "rmse_day_hidden": h,
            "rmse_band_mean": m,
        }
        for b, v, h, m in zip(bands, visible, hidden, band_mean, strict=True)
    ]


class FusionTraining(Stage):
    """Stage 2: the frozen codes of the examples, the fusion network and its optimiser.

    ``encoders`` maps each sensor to its frozen encoder and stage-1 checkpoint; ``sources``
    holds the encoder files and their SHA-256 as the final checkpoint records them.
    """

    label, title = "fusion", "fusion training"

    def __init__(
        self,
        series: dict[str, list[SensorSeries]],
        encoders: dict[str, tuple[ContextEncoder, dict]],
        sources: dict[str, dict],
        cfg: FusionConfig,
        dp: Distributed,
        progress: bool,
    ) -> None:
        self.series, self.sources, self.cfg, self.dp = series, sources, cfg, dp
        self.encoders = {m: (enc.to(dp.device), st) for m, (enc, st) in encoders.items()}
        self.ex = frozen_examples(series, self.encoders, cfg, dp, progress)
        self.train_idx = np.flatnonzero(~self.ex["held_out"])
        torch.manual_seed(cfg.seed)
        self.net = FusionNetwork(
            {m: len(st["norm_mean"]) for m, (_, st) in self.encoders.items()},
            latent_dim=self.encoders["s2"][0].temporal.out.out_features,
            embedding_dim=cfg.embedding_dim,
        ).to(dp.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.n_batches = math.ceil(self.train_idx.size / cfg.batch_size)
        scales = code_scales(self.ex, self.train_idx, dp.device)
        # the code heads take part only with a code loss: DDP must then look for unused ones
        self.objective = dp.wrap(
            FusionObjective(self.net, cfg, scales), find_unused_parameters=cfg.code_weight == 0
        )

    def restore(self, resume: dict) -> None:
        self.net.load_state_dict(resume["fusion"])
        self.opt.load_state_dict(resume["optimizer"])

    def begin_epoch(self, rng: np.random.Generator) -> None:
        self.order = self.train_idx[rng.permutation(self.train_idx.size)]
        self.hide = rng.random(self.order.size) < self.cfg.p_hide
        self.net.train()

    def batch_loss(self, b: int) -> torch.Tensor:
        dp, sl = self.dp, slice(b * self.cfg.batch_size, (b + 1) * self.cfg.batch_size)
        rows, hidden = self.order[sl], self.hide[sl]
        part, n_local = dp.batch_part(rows.size)
        inputs, y2, y1 = _batch(self.ex, rows[part], hidden[part], dp.device)
        # every process knows the whole batch: the counts need no communication
        visible = int((~hidden[part]).sum()) if n_local else 0
        return self.objective(
            inputs,
            y2,
            y1,
            shard_scale(n_local, rows.size, dp.world_size),
            shard_scale(visible, int((~hidden).sum()), dp.world_size),
        )

    def end_epoch(self, epoch: int, train_loss: float) -> dict:
        self.net.eval()
        s2_hidden, _ = heldout_rmse(self.net, self.ex, hide=True)
        z_vis, z_hid = heldout_embeddings(self.net, self.ex)
        gap, offset = heldout_consistency(z_vis, z_hid)
        kept = heldout_code_r2(z_vis, self.ex)
        self.dp.info(
            log,
            "fusion epoch %d: train loss %.4f, held-out S2 RMSE (day hidden) %.4f, "
            "embedding hidden - visible: RMS %.4f, offset %.4f",
            epoch + 1,
            train_loss,
            s2_hidden.mean(),
            gap,
            offset,
        )
        return {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "heldout_s2_rmse_hidden": float(s2_hidden.mean()),
            "heldout_embedding_gap": gap,
            "heldout_embedding_offset": offset,
            "heldout_s2_code_r2": kept["s2"],
            "heldout_s1_code_r2": kept["s1"],
        }

    def weights(self) -> dict:
        return {"fusion": self.net.state_dict(), "optimizer": self.opt.state_dict()}

    def finish(self, curves: list[dict]) -> tuple[pd.DataFrame, dict]:
        ex, ho = self.ex, self.ex["held_out"]
        s2_vis, s1_vis = heldout_rmse(self.net, ex, hide=False)
        s2_hid, s1_hid = heldout_rmse(self.net, ex, hide=True)
        bands = {m: self.series[m][0].channels for m in SENSOR_NAMES}
        rows = figure_rows("s2", bands["s2"], s2_vis, s2_hid, ex["s2_target"][ho].std(0))
        rows += figure_rows("s1", bands["s1"], s1_vis, s1_hid, np.nanstd(ex["s1_target"][ho], 0))
        figures = pd.DataFrame(rows)
        return figures, {"figures": figures, "curves": curves}

    def final_checkpoint(self) -> dict:
        return fusion_checkpoint(
            asdict(self.cfg),
            self.net,
            {m: st for m, (_, st) in self.encoders.items()},
            {m: list(self.series[m][0].channels) for m in SENSOR_NAMES},
            self.sources["encoders"],
            self.sources["encoder_sha256"],
        )
