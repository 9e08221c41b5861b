"""Stage 2: training of the fusion network over the frozen per-sensor encoders.

An example is a pixel on a date with a clear S2 view (the target). Its inputs are those
export gives the network (``ecoembed.models.dense``, the same gathers): the frozen S2
code of that day, the S2 codes of the nearest clear dates before and after it (context),
and the S1 code of the nearest S1 acquisition, each with its gap in days; and, for the
anchored reconstruction, the pixel's nearest clear S2 values before and after the day.
Half of the days' own S2 codes are hidden on purpose (the "missing" token), so the same
network learns to produce the cloud-free embedding of a day it cannot see, and to decode
it into S2 reflectance and S1 backscatter. A hidden day is hidden as a cloud hides it in
export: a run of acquisitions around it is missing over the whole window, so the context
dates lie outside the run and their codes are computed from frames in which the run is
missing. (Hiding only the day's own code would leave its values in the context codes,
whose frames span the day: a training task easier than the cloudy days of export.)

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
    codes_at,
    context_indices,
    core_values,
    grid_codes,
    nearest_acquisitions,
    padded_days_tensor,
    sensor_codes,
    stem_features,
    valid_pixels,
)
from ecoembed.models.fusion import interpolate_views, tokens_of
from ecoembed.models.losses import pointwise_loss
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


def outside_runs(
    ranks: ClearRanks, lo: np.ndarray, hi: np.ndarray, p: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``context_indices`` of examples at pixels p (n,) around runs of acquisitions
    lo..hi (inclusive, (n,)): up to k // 2 clear dates before the run and k - k // 2 after
    it, nearest first, as export gathers them around a day (a run of one: the day)."""
    idx, ok = context_indices(ranks, lo, hi + 1, k)
    n = np.arange(p.size)
    return idx[n, p], ok[n, p]


def cloud_runs(clear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every cloudy pixel-date of a window (T, P) as its place in its run of consecutive
    cloudy acquisitions and that run's length, pixels that are never clear (beyond the
    tile edge) left out: the cloud gaps export fills, one entry per cloudy date."""
    t_len = clear.shape[0]
    steps = np.arange(t_len)[:, None]
    last_clear = np.maximum.accumulate(np.where(clear, steps, -1), axis=0)
    next_clear = np.minimum.accumulate(np.where(clear, steps, t_len)[::-1], axis=0)[::-1]
    cloudy = ~clear & clear.any(axis=0)
    place = (steps - last_clear - 1)[cloudy]
    length = (next_clear - last_clear - 1)[cloudy]
    return place, length


def hidden_runs(
    t: np.ndarray, clear: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """For each example's day t, the run of acquisitions (first, last) a cloud hides when
    the day is hidden: the place and length of a cloudy pixel-date of the window drawn at
    random (``cloud_runs``), so hidden days meet gaps as long and as often as the cloudy
    days export fills; a window without clouds hides the day alone. Cut at the series'
    ends."""
    place, length = cloud_runs(clear)
    if place.size == 0:
        return t.copy(), t.copy()
    pick = rng.integers(0, place.size, t.size)
    lo = t - place[pick]
    return np.maximum(lo, 0), np.minimum(lo + length[pick] - 1, clear.shape[0] - 1)


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
    """The examples of one window (module docstring), their codes computed densely.

    Each example comes twice: as export sees a clear day (its own code, the clear dates
    around it) and as export sees a cloudy one (the ``hid_`` inputs): a run of
    acquisitions around the day, as long as one of the window's own cloud gaps
    (``hidden_runs``), is missing over the whole window, so neither the context dates'
    codes, whose frames span the day, nor the anchored views can see the day's values or
    the run's.
    """
    halo = enc2.size // 2
    win2 = padded_window(s2.values, row, col, WINDOW_PX, halo)
    win1 = padded_window(s1.values, row, col, WINDOW_PX, enc1.size // 2)
    clear = valid_pixels(win2, halo)  # (T2, P) over the window's pixels
    t, p = window_picks(clear, s2.dates, EXAMPLES_PER_WINDOW, rng)
    if t.size == 0:
        return None
    run_lo, run_hi = hidden_runs(t, clear, rng)
    pixels, p = np.unique(p, return_inverse=True)  # codes only at the pixels drawn
    clear = clear[:, pixels]
    valid1 = valid_pixels(win1, enc1.size // 2)[:, pixels]
    s1_idx, s1_ok = nearest_acquisitions(valid1, s1.day_of, s2.day_of[t], cfg.other_tokens)
    t1, ok1 = s1_idx[np.arange(t.size), p], s1_ok[np.arange(t.size), p]  # (n, tokens)
    keep = ok1[:, 0]  # a pixel without any S1 view gives no example
    t, p, t1, ok1, run_lo, run_hi = (a[keep] for a in (t, p, t1, ok1, run_lo, run_hi))
    rows, cols = row + pixels[p] // WINDOW_PX, col + pixels[p] % WINDOW_PX
    heldout = held_out(Centres(t, rows, cols), s2.values.shape[2:])
    ranks = ClearRanks.of(clear)
    k = cfg.context_dates
    ctx, ctx_ok = outside_runs(ranks, t, t, p, k)
    near, near_ok = outside_runs(ranks, t, t, p, 2)
    hctx, hctx_ok = outside_runs(ranks, run_lo, run_hi, p, k)
    hnear, hnear_ok = outside_runs(ranks, run_lo, run_hi, p, 2)
    need2 = np.zeros_like(clear)
    need2[t, p] = True
    need2[ctx[ctx_ok], np.broadcast_to(p[:, None], ctx.shape)[ctx_ok]] = True
    feats2 = stem_features(enc2, win2, pixels)
    code2 = grid_codes(enc2, feats2, s2.day_of, need2).cpu().numpy()
    hp = np.broadcast_to(p[:, None], hctx.shape)
    hrun = (
        np.broadcast_to(run_lo[:, None], hctx.shape),
        np.broadcast_to(run_hi[:, None], hctx.shape),
    )
    hcode = np.zeros((*hctx.shape, code2.shape[-1]), np.float32)
    hcode[hctx_ok] = (
        codes_at(
            enc2,
            feats2,
            padded_days_tensor(enc2, s2.day_of, feats2.device),
            hctx[hctx_ok],
            hp[hctx_ok],
            blank=(hrun[0][hctx_ok], hrun[1][hctx_ok]),
        )
        .cpu()
        .numpy()
    )
    need1 = np.zeros_like(valid1)
    need1[t1[ok1], np.broadcast_to(p[:, None], t1.shape)[ok1]] = True
    code1 = sensor_codes(enc1, win1, s1.day_of, pixels, need1).cpu().numpy()
    core2 = core_values(win2, halo)[:, :, pixels]
    core1 = core_values(win1, enc1.size // 2)[:, :, pixels]
    day = s2.day_of[t]
    ex = {
        "day_code": code2[t, p],
        "ctx_code": np.where(ctx_ok[..., None], code2[ctx, p[:, None]], 0.0),
        "ctx_dt": np.where(ctx_ok, s2.day_of[ctx] - day[:, None], 0.0),
        "ctx_ok": ctx_ok,
        "hid_ctx_code": hcode,
        "hid_ctx_dt": np.where(hctx_ok, s2.day_of[hctx] - day[:, None], 0.0),
        "hid_ctx_ok": hctx_ok,
        "run_lo": run_lo,
        "run_hi": run_hi,
        "s1_code": code1[t1[:, 0], p],  # the nearest acquisition's (the code loss's)
        "s1_codes": np.where(ok1[..., None], code1[t1, p[:, None]], 0.0),
        "s1_dt": np.where(ok1, s1.day_of[t1] - day[:, None], 0.0),
        "s1_ok": ok1,
        "s2_target": core2[t, :, p],
        "s1_target": core1[t1[:, 0], :, p],
        "held_out": heldout,
    }
    for prefix, (nb, nb_ok) in (("", (near, near_ok)), ("hid_", (hnear, hnear_ok))):
        for side, name in ((0, "before"), (1, "after")):
            ok = nb_ok[:, side]
            j = nb[:, side]
            ex[f"{prefix}{name}_value"] = np.where(ok[:, None], core2[j, :, p], np.nan)
            ex[f"{prefix}{name}_dt"] = np.where(ok, s2.day_of[j] - day, 0.0)
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
    """(fusion inputs, S2 target, S1 target, views, hidden inputs) of the rows ``idx``:
    rows with ``hide`` get their cloudy-day inputs (``hid_``, the day's code missing).
    ``views`` are the arguments of ``FusionNetwork.reconstruct`` after the embedding and
    decode: the nearest clear views around the day and their gaps, the day's own view
    (gap 0) where it is visible. ``hidden inputs``: every row's cloudy-day inputs (the
    consistency loss's)."""
    f = {k: torch.from_numpy(np.ascontiguousarray(v[idx])).to(device) for k, v in ex.items()}
    hidden = torch.from_numpy(hide).to(device)
    zero = torch.zeros_like(f["before_dt"])

    def pick(name: str) -> torch.Tensor:
        visible, cloudy = f[name], f[f"hid_{name}"]
        return torch.where(hidden.view(-1, *[1] * (visible.ndim - 1)), cloudy, visible)

    views = (
        torch.where(hidden[:, None], f["hid_before_value"], f["s2_target"]),
        torch.where(hidden[:, None], f["hid_after_value"], f["s2_target"]),
        torch.where(hidden, f["hid_before_dt"], zero),
        torch.where(hidden, f["hid_after_dt"], zero),
    )
    others = {"s1": (f["s1_codes"], f["s1_dt"], f["s1_ok"])}
    inputs = (
        f["day_code"],
        ~hidden,
        pick("ctx_code"),
        pick("ctx_dt"),
        pick("ctx_ok"),
        others,
    )
    hidden_inputs = (
        f["day_code"],
        torch.zeros_like(hidden),
        f["hid_ctx_code"],
        f["hid_ctx_dt"],
        f["hid_ctx_ok"],
        others,
    )
    return inputs, f["s2_target"], f["s1_target"], views, hidden_inputs


def consistency_loss(
    net: FusionNetwork, inputs: tuple, hidden_inputs: tuple, z: torch.Tensor
) -> torch.Tensor:
    """Mean squared distance between the embedding of each visible day computed as on a
    cloudy day (``hidden_inputs``) and the embedding with its view (held fixed): the
    reconstructed embedding of a cloudy day should land where a clear view would have put
    it, so that the daily product has no jump between observed and reconstructed days."""
    visible = inputs[1]
    if not bool(visible.any()):
        return z.new_zeros(())
    z_hidden, _ = net(*hidden_inputs)
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

    def penalty(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of a reconstruction (``cfg.loss``; the consistency and code losses
        stay squared: they compare embeddings and codes, not values with outliers)."""
        return pointwise_loss(pred - target, self.cfg.loss, self.cfg.huber_delta).mean()

    def forward(
        self,
        inputs: tuple,
        y2: torch.Tensor,
        y1: torch.Tensor,
        views: tuple,
        hidden_inputs: tuple,
        row_scale: float = 1.0,
        visible_scale: float = 1.0,
    ) -> torch.Tensor:
        z, dec = self.net(*inputs)
        anchored = self.net.reconstruct(z, dec["s2"], *views)
        # the anchored reconstruction reads z detached: it adds its own loss, not z's
        loss = (self.penalty(dec["s2"], y2) + self.penalty(dec["s1"], y1)) * row_scale
        loss = loss + self.penalty(anchored, y2) * row_scale
        if self.cfg.consistency > 0:
            loss = loss + self.cfg.consistency * (
                consistency_loss(self.net, inputs, hidden_inputs, z) * visible_scale
            )
        if self.cfg.code_weight > 0:
            loss = loss + self.cfg.code_weight * (
                code_loss(self.net, inputs, z, self.scales) * row_scale
            )
        return loss


def heldout_embeddings(net: FusionNetwork, ex: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out embeddings with each day's own S2 view visible and as on a cloudy day."""
    idx = np.flatnonzero(ex["held_out"])
    device = next(net.parameters()).device
    inputs, *_, hidden_inputs = _batch(ex, idx, np.zeros(idx.size, bool), device)
    with torch.no_grad():
        z_vis, _ = net(*inputs)
        z_hid, _ = net(*hidden_inputs)
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
    inputs, y2, y1, views, _ = _batch(ex, idx, np.full(idx.size, hide), device)
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
        inputs, y2, y1, views, hidden_inputs = _batch(self.ex, rows[part], hidden[part], dp.device)
        # every process knows the whole batch: the counts need no communication
        visible = int((~hidden[part]).sum()) if n_local else 0
        return self.objective(
            inputs,
            y2,
            y1,
            views,
            hidden_inputs,
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
