"""Stage 2: training of the fusion network over the frozen per-sensor encoders.

An example is a pixel on a date with a clear S2 view (the target). Its inputs are those
export gives the network (``ecoembed.models.dense``, the same gathers): the frozen S2
code of that day, the S2 codes of the nearest clear dates before and after it (context),
and the S1 code of the nearest S1 acquisition, each with its gap in days; and, for the
anchored reconstruction, the pixel's nearest clear S2 values before and after the day.
Half of the days' own S2 codes are hidden on purpose (the "missing" token), so the same
network learns to produce the cloud-free embedding of a day it cannot see, and to decode
it into S2 reflectance and S1 backscatter.

Examples are drawn from windows of ``WINDOW_PX`` pixels at random places of each tile,
``EXAMPLES_PER_WINDOW`` clear pixel-dates per window (a quarter per season), and their
codes are computed densely per window, as export computes them: each encoder's stem runs
once per acquisition over the window, so examples cost a small fraction of what one
neighbourhood per example would. Dates near the ends of the series and pixels near the
tile edge take part with missing frames and pixels, as in export. Codes are computed once:
the encoders are frozen, loaded from their stage-1 checkpoints and never updated. A resume
checkpoint is used only when it was made with the same config, the same encoder files
(SHA-256) and the same data. The skeleton of the run (resume, epochs seeded by (seed,
epoch), a checkpoint per epoch, the final files) is ``ecoembed.train.loop``'s, the format
of the files ``ecoembed.models.checkpoint``'s; this module holds what is particular to
stage 2.
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
from ecoembed.models.dense import (
    ClearRanks,
    context_indices,
    core_values,
    nearest_acquisitions,
    sensor_codes,
    valid_pixels,
)
from ecoembed.models.fusion import interpolate_views, tokens_of
from ecoembed.models.settings import FusionConfig
from ecoembed.train.distributed import Distributed, distributed, shard_scale
from ecoembed.train.loop import RunFiles, Stage, fit
from ecoembed.train.sampling import Centres, season_of
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


WINDOW_PX = 32  # side of the windows a tile's examples are drawn from
EXAMPLES_PER_WINDOW = 256  # clear pixel-dates drawn per window (a quarter per season)


def padded_window(values: np.ndarray, row: int, col: int, size: int, halo: int) -> np.ndarray:
    """values[..., row - halo : row + size + halo, col - halo : ...], NaN beyond the tile
    (as export reads its windows: pixels beyond the tile edge are missing pixels)."""
    h, w = values.shape[-2:]
    r0, r1 = row - halo, row + size + halo
    c0, c1 = col - halo, col + size + halo
    part = values[..., max(r0, 0) : min(r1, h), max(c0, 0) : min(c1, w)]
    pad = [(0, 0)] * (values.ndim - 2) + [
        (max(-r0, 0), max(r1 - h, 0)),
        (max(-c0, 0), max(c1 - w, 0)),
    ]
    return np.pad(part, pad, constant_values=np.nan)


def window_picks(
    clear: np.ndarray, dates: pd.DatetimeIndex, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` clear pixel-dates (t, p) of a window, a quarter from each season (a
    season with fewer gives what it has). clear: (T, P)."""
    t, p = np.nonzero(clear)
    season = season_of(dates)[t]
    picks = []
    for s in range(4):
        members = np.flatnonzero(season == s)
        picks.append(rng.choice(members, size=min(n // 4, members.size), replace=False))
    chosen = np.sort(np.concatenate(picks))
    return t[chosen], p[chosen]


def nearest_per_example(ranks: ClearRanks, t: np.ndarray, p: np.ndarray, k: int) -> tuple:
    """``context_indices`` of the examples (t, p) of a window: up to k // 2 clear dates
    before t and k - k // 2 after, nearest first, as export gathers them."""
    idx, ok = context_indices(
        ranks, np.arange(ranks.order.shape[0]), np.arange(1, ranks.order.shape[0] + 1), k
    )
    return idx[t, p], ok[t, p]


def window_examples(
    s2: SensorSeries,
    s1: SensorSeries,
    enc2: ContextEncoder,
    enc1: ContextEncoder,
    cfg: FusionConfig,
    row: int,
    col: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray] | None:
    """The examples of one window (module docstring), their codes computed densely."""
    halo = enc2.size // 2
    win2 = padded_window(s2.values, row, col, WINDOW_PX, halo)
    win1 = padded_window(s1.values, row, col, WINDOW_PX, enc1.size // 2)
    clear = valid_pixels(win2, halo)  # (T2, P) over the window's pixels
    t, p = window_picks(clear, s2.dates, EXAMPLES_PER_WINDOW, rng)
    if t.size == 0:
        return None
    pixels, p = np.unique(p, return_inverse=True)  # codes only at the pixels drawn
    clear = clear[:, pixels]
    ranks = ClearRanks.of(clear)
    k = cfg.context_dates
    ctx, ctx_ok = nearest_per_example(ranks, t, p, k)
    near, near_ok = nearest_per_example(ranks, t, p, 2)
    need2 = np.zeros_like(clear)
    need2[t, p] = True
    need2[ctx[ctx_ok], np.broadcast_to(p[:, None], ctx.shape)[ctx_ok]] = True
    code2 = sensor_codes(enc2, win2, s2.day_of, pixels, need2).cpu().numpy()
    valid1 = valid_pixels(win1, enc1.size // 2)[:, pixels]
    s1_idx, s1_ok = nearest_acquisitions(valid1, s1.day_of, s2.day_of[t], cfg.other_tokens)
    t1, ok1 = s1_idx[np.arange(t.size), p], s1_ok[np.arange(t.size), p]  # (n, tokens)
    keep = ok1[:, 0]  # a pixel without any S1 view gives no example
    t, p, ctx, ctx_ok, near, near_ok, t1, ok1 = (
        a[keep] for a in (t, p, ctx, ctx_ok, near, near_ok, t1, ok1)
    )
    need1 = np.zeros_like(valid1)
    need1[t1[ok1], np.broadcast_to(p[:, None], t1.shape)[ok1]] = True
    code1 = sensor_codes(enc1, win1, s1.day_of, pixels, need1).cpu().numpy()
    core2 = core_values(win2, halo)[:, :, pixels]
    core1 = core_values(win1, enc1.size // 2)[:, :, pixels]
    rows, cols = row + pixels[p] // WINDOW_PX, col + pixels[p] % WINDOW_PX
    ex = {
        "day_code": code2[t, p],
        "ctx_code": np.where(ctx_ok[..., None], code2[ctx, p[:, None]], 0.0),
        "ctx_dt": np.where(ctx_ok, s2.day_of[ctx] - s2.day_of[t][:, None], 0.0),
        "ctx_ok": ctx_ok,
        "s1_code": code1[t1[:, 0], p],  # the nearest acquisition's (the code loss's)
        "s1_codes": np.where(ok1[..., None], code1[t1, p[:, None]], 0.0),
        "s1_dt": np.where(ok1, s1.day_of[t1] - s2.day_of[t][:, None], 0.0),
        "s1_ok": ok1,
        "s2_target": core2[t, :, p],
        "s1_target": core1[t1[:, 0], :, p],
        "held_out": held_out(Centres(t, rows, cols), s2.values.shape[2:]),
    }
    for side, name in ((0, "before"), (1, "after")):
        ok = near_ok[:, side]
        j = near[:, side]
        ex[f"{name}_value"] = np.where(ok[:, None], core2[j, :, p], np.nan)
        ex[f"{name}_dt"] = np.where(ok, s2.day_of[j] - s2.day_of[t], 0.0)
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in ex.items()}


def tile_examples(
    s2: SensorSeries, s1: SensorSeries, enc2, enc1, cfg: FusionConfig, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """About ``cfg.examples_per_tile`` examples of one tile, from windows at random places
    (``window_examples``)."""
    h, w = s2.values.shape[2:]
    parts = []
    for _ in range(math.ceil(cfg.examples_per_tile / EXAMPLES_PER_WINDOW)):
        row = int(rng.integers(0, max(h - WINDOW_PX, 0) + 1))
        col = int(rng.integers(0, max(w - WINDOW_PX, 0) + 1))
        part = window_examples(s2, s1, enc2, enc1, cfg, row, col, rng)
        if part is not None:
            parts.append(part)
    if not parts:
        raise ValueError("no clear S2 pixel-date with an S1 view in the tile's windows")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _batch(ex: dict, idx: np.ndarray, hide: np.ndarray, device: torch.device) -> tuple:
    """(fusion inputs, S2 target, S1 target, views): ``views`` are the arguments of
    ``FusionNetwork.reconstruct`` after the embedding and decode: the nearest clear views
    around the day and their gaps, the day's own view (gap 0) where it is visible."""
    f = {k: torch.from_numpy(np.ascontiguousarray(v[idx])).to(device) for k, v in ex.items()}
    shown = torch.from_numpy(~hide).to(device)
    zero = torch.zeros_like(f["before_dt"])
    views = (
        torch.where(shown[:, None], f["s2_target"], f["before_value"]),
        torch.where(shown[:, None], f["s2_target"], f["after_value"]),
        torch.where(shown, zero, f["before_dt"]),
        torch.where(shown, zero, f["after_dt"]),
    )
    return (
        (
            f["day_code"],
            torch.from_numpy(~hide).to(device),
            f["ctx_code"],
            f["ctx_dt"],
            f["ctx_ok"],
            {"s1": (f["s1_codes"], f["s1_dt"], f["s1_ok"])},
        ),
        f["s2_target"],
        f["s1_target"],
        views,
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
    codes = {"s2": inputs[0], "s1": tokens_of(inputs[5]["s1"])[0][:, 0]}  # nearest first
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
        views: tuple,
        row_scale: float = 1.0,
        visible_scale: float = 1.0,
    ) -> torch.Tensor:
        z, dec = self.net(*inputs)
        loss = (((dec["s2"] - y2) ** 2).mean() + ((dec["s1"] - y1) ** 2).mean()) * row_scale
        # the anchored reconstruction reads z detached: it adds its own loss, not z's
        loss = loss + ((self.net.reconstruct(z, dec["s2"], *views) - y2) ** 2).mean() * row_scale
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
    inputs, *_ = _batch(ex, idx, np.zeros(idx.size, bool), device)
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


@dataclass(frozen=True)
class HeldoutErrors:
    """Per-band RMSE on the held-out examples (normalised units): each sensor's decode of
    the embedding, the anchored S2 reconstruction, and the linear interpolation of the
    clear views around the day that it starts from (the gap-filling baseline)."""

    s2: np.ndarray
    s1: np.ndarray
    s2_anchored: np.ndarray
    s2_linear: np.ndarray


def heldout_rmse(net: FusionNetwork, ex: dict, hide: bool) -> HeldoutErrors:
    idx = np.flatnonzero(ex["held_out"])
    device = next(net.parameters()).device
    inputs, y2, y1, views = _batch(ex, idx, np.full(idx.size, hide), device)
    with torch.no_grad():
        z, dec = net(*inputs)
        anchored = net.reconstruct(z, dec["s2"], *views)
        linear, has_view = interpolate_views(*views)
        linear = torch.where(has_view[:, None], linear, dec["s2"])

    def rmse(pred: torch.Tensor, target: torch.Tensor) -> np.ndarray:
        return np.sqrt(((pred - target) ** 2).mean(0).cpu().numpy())

    return HeldoutErrors(
        rmse(dec["s2"], y2), rmse(dec["s1"], y1), rmse(anchored, y2), rmse(linear, y2)
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
    sensor: str,
    bands: tuple[str, ...],
    visible: np.ndarray,
    hidden: np.ndarray,
    band_mean: np.ndarray,
    anchored: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> list[dict]:
    """One sensor's rows of the held-out figures; ``anchored`` (the primary sensor's):
    the anchored reconstruction with the day visible and hidden, and linear interpolation
    of the views around the day."""
    nan = np.full(len(bands), np.nan)
    a_vis, a_hid, lin = anchored if anchored is not None else (nan, nan, nan)
    return [
        {
            "sensor": sensor,
            "band": b,
            "rmse_day_visible": v,
            "rmse_day_hidden": h,
            "rmse_band_mean": m,
            "rmse_anchored_visible": av,
            "rmse_anchored_hidden": ah,
            "rmse_linear_hidden": li,
        }
        for b, v, h, m, av, ah, li in zip(
            bands, visible, hidden, band_mean, a_vis, a_hid, lin, strict=True
        )
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
        self.base_lr, self.schedule = cfg.lr, cfg.lr_schedule
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
        inputs, y2, y1, views = _batch(self.ex, rows[part], hidden[part], dp.device)
        # every process knows the whole batch: the counts need no communication
        visible = int((~hidden[part]).sum()) if n_local else 0
        return self.objective(
            inputs,
            y2,
            y1,
            views,
            shard_scale(n_local, rows.size, dp.world_size),
            shard_scale(visible, int((~hidden).sum()), dp.world_size),
        )

    def end_epoch(self, epoch: int, train_loss: float) -> dict:
        self.net.eval()
        hidden = heldout_rmse(self.net, self.ex, hide=True)
        z_vis, z_hid = heldout_embeddings(self.net, self.ex)
        gap, offset = heldout_consistency(z_vis, z_hid)
        kept = heldout_code_r2(z_vis, self.ex)
        self.dp.info(
            log,
            "fusion epoch %d: train loss %.4f, held-out S2 RMSE (day hidden) %.4f, anchored "
            "%.4f (linear %.4f), embedding hidden - visible: RMS %.4f, offset %.4f",
            epoch + 1,
            train_loss,
            hidden.s2.mean(),
            hidden.s2_anchored.mean(),
            hidden.s2_linear.mean(),
            gap,
            offset,
        )
        return {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "heldout_s2_rmse_hidden": float(hidden.s2.mean()),
            "heldout_s2_rmse_anchored_hidden": float(hidden.s2_anchored.mean()),
            "heldout_s2_rmse_linear_hidden": float(hidden.s2_linear.mean()),
            "heldout_embedding_gap": gap,
            "heldout_embedding_offset": offset,
            "heldout_s2_code_r2": kept["s2"],
            "heldout_s1_code_r2": kept["s1"],
        }

    def weights(self) -> dict:
        return {"fusion": self.net.state_dict(), "optimizer": self.opt.state_dict()}

    def finish(self, curves: list[dict]) -> tuple[pd.DataFrame, dict]:
        ex, ho = self.ex, self.ex["held_out"]
        vis = heldout_rmse(self.net, ex, hide=False)
        hid = heldout_rmse(self.net, ex, hide=True)
        bands = {m: self.series[m][0].channels for m in SENSOR_NAMES}
        rows = figure_rows(
            "s2",
            bands["s2"],
            vis.s2,
            hid.s2,
            ex["s2_target"][ho].std(0),
            (vis.s2_anchored, hid.s2_anchored, hid.s2_linear),
        )
        rows += figure_rows("s1", bands["s1"], vis.s1, hid.s1, np.nanstd(ex["s1_target"][ho], 0))
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
