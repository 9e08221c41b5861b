"""Stage 2: training of the fusion network over the frozen per-sensor encoders.

An example is a pixel on a date with a clear S2 view (the target). Its inputs are the
frozen S2 code of that day, the S2 codes of the nearest clear dates before and after it
(context), and the S1 code of the nearest S1 acquisition, each with its gap in days.
Half of the days' own S2 codes are hidden on purpose (the "missing" token), so the same
network learns to produce the cloud-free embedding of a day it cannot see, and to decode
it into S2 reflectance and S1 backscatter. Codes are computed once: the encoders are
frozen, loaded from their stage-1 checkpoints and never updated. A resume checkpoint is
used only when it was made with the same config, the same encoder files (SHA-256) and the
same data. Under torchrun the batches are split over the processes
(ecoembed.train.distributed), with the same optimiser steps as one process.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from ecoembed.io.errors import InputDataError
from ecoembed.models import ContextEncoder, FusionNetwork, freeze
from ecoembed.train.distributed import Distributed, distributed, shard_scale
from ecoembed.train.pretrain import (
    RESTART,
    RETRAIN,
    SensorSeries,
    check_resume,
    held_out,
    load_checkpoint,
    save_checkpoint,
    series_sha256,
    write_training_tables,
)
from ecoembed.train.sampling import Centres, extract_neighbourhoods, sample_centres

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusionConfig:
    embedding_dim: int = 7
    epochs: int = 8
    batch_size: int = 256
    lr: float = 2e-3
    examples_per_tile: int = 2000
    context_dates: int = 4  # clear S2 dates, half before and half after the day
    p_hide: float = 0.5
    consistency: float = 1.0  # weight of ||z(day hidden) - z(day visible)||^2 on visible days
    code_weight: float = 3.0  # weight of decoding each sensor's standardised code from z
    seed: int = 42


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


ENCODER_KEYS = ("modality", "config", "encoder", "channels", "norm_mean", "norm_std")


def load_encoder(path: str | Path) -> tuple[ContextEncoder, dict]:
    """A frozen stage-1 encoder and its checkpoint (config, normalisation); a file that is
    not a stage-1 encoder checkpoint of this format is refused (InputDataError)."""
    state = load_checkpoint(path, "stage-1 encoder checkpoint")
    missing = [k for k in ENCODER_KEYS if k not in state]
    if missing:
        raise InputDataError(
            path, f"not a stage-1 encoder checkpoint (missing {missing}); {RETRAIN}"
        )
    try:
        return encoder_from_state(state), state
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputDataError(
            path, f"stage-1 encoder checkpoint does not fit its model ({exc})"
        ) from None


def encoder_record(state: dict) -> dict:
    """What of a stage-1 checkpoint the encoder needs at inference (not its decoder)."""
    return {k: state[k] for k in ENCODER_KEYS}


def encoder_norm(state: dict) -> tuple[np.ndarray, np.ndarray]:
    """An encoder's per-band mean and standard deviation (stored as tensors) as arrays."""
    return (
        np.asarray(state["norm_mean"], dtype=np.float32),
        np.asarray(state["norm_std"], dtype=np.float32),
    )


def export_checkpoint(
    config: dict,
    fusion: FusionNetwork,
    encoder_states: dict[str, dict],
    channels: dict[str, list[str]],
    encoder_paths: dict[str, str | Path] | None = None,
    encoder_sha256: dict[str, str] | None = None,
) -> dict:
    """The final fusion checkpoint: self-contained, the frozen encoders travel inside, so
    this file alone embeds new data (ecoembed.embed.model.load_embedding_model).
    ``encoder_sha256`` (the encoder files' hashes when they were loaded) defaults to the
    hashes of ``encoder_paths`` now."""
    paths = encoder_paths or {}
    if encoder_sha256 is None:
        encoder_sha256 = {m: file_sha256(p) for m, p in paths.items()}
    return {
        "config": config,
        "fusion": fusion.state_dict(),
        "encoders": {m: str(p) for m, p in paths.items()},
        "encoder_states": {m: encoder_record(st) for m, st in encoder_states.items()},
        "encoder_sha256": dict(encoder_sha256),
        "channels": channels,
    }


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encoder_from_state(state: dict) -> ContextEncoder:
    cfg = state["config"]
    enc = ContextEncoder(
        state["channels"], size=cfg["size"], frames=cfg["frames"], latent_dim=cfg["latent_dim"]
    )
    enc.load_state_dict(state["encoder"])
    return freeze(enc)


def normalised(s: SensorSeries, state: dict) -> SensorSeries:
    mean, std = encoder_norm(state)
    m, sd = mean[:, None, None], std[:, None, None]
    return SensorSeries((s.values - m) / sd, s.day_of, s.dates, s.channels)


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
    return _train_fusion(
        s2_series, s1_series, encoder_paths, outputs, cfg, dp, progress, stop_after_epoch
    )


def _train_fusion(
    s2_series: list[SensorSeries],
    s1_series: list[SensorSeries],
    encoder_paths: dict,
    outputs: FusionOutputs,
    cfg: FusionConfig,
    dp: Distributed,
    progress: bool,
    stop_after_epoch: int | None,
) -> dict:
    device = dp.device
    enc2, st2 = load_encoder(encoder_paths["s2"])
    enc1, st1 = load_encoder(encoder_paths["s1"])
    # what a resume checkpoint must have been made from (the final checkpoint records it too)
    run = {
        "config": asdict(cfg),
        "encoder_sha256": {m: file_sha256(encoder_paths[m]) for m in ("s2", "s1")},
        "data_sha256": series_sha256([*s2_series, *s1_series]),
    }
    resume = None
    if outputs.checkpoint.exists():  # checked before the costly frozen codes
        resume = load_checkpoint(outputs.checkpoint, "resume checkpoint", RESTART)
        check_resume(outputs.checkpoint, resume, run)
    enc2, enc1 = enc2.to(device), enc1.to(device)
    rng = np.random.default_rng(cfg.seed)
    dp.info(log, "computing the frozen codes of %d tiles' examples", len(s2_series))
    parts = [
        tile_examples(normalised(a, st2), normalised(b, st1), enc2, enc1, cfg, rng)
        for a, b in tqdm(
            list(zip(s2_series, s1_series, strict=True)),
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
    ex = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    train_idx = np.flatnonzero(~ex["held_out"])
    torch.manual_seed(cfg.seed)
    net = FusionNetwork(
        {"s2": len(st2["norm_mean"]), "s1": len(st1["norm_mean"])},
        latent_dim=enc2.temporal.out.out_features,
        embedding_dim=cfg.embedding_dim,
    ).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    curves: list[dict] = []
    start = 0
    if resume is not None:
        net.load_state_dict(resume["fusion"])
        opt.load_state_dict(resume["optimizer"])
        start, curves = resume["epoch"] + 1, resume["curves"]
        dp.info(log, "resuming fusion training after epoch %d", start)
    n_batches = math.ceil(train_idx.size / cfg.batch_size)
    scales = code_scales(ex, train_idx, device)
    # the code heads take part only with a code loss: DDP must then look for unused ones
    objective = dp.wrap(
        FusionObjective(net, cfg, scales), find_unused_parameters=cfg.code_weight == 0
    )
    for epoch in range(start, cfg.epochs):
        erng = np.random.default_rng([cfg.seed, epoch])
        order = train_idx[erng.permutation(train_idx.size)]
        hide = erng.random(order.size) < cfg.p_hide
        net.train()
        total = 0.0
        for b in tqdm(
            range(n_batches),
            desc=f"fusion epoch {epoch + 1}/{cfg.epochs}",
            disable=not progress or not dp.is_main,
        ):
            sl = slice(b * cfg.batch_size, (b + 1) * cfg.batch_size)
            rows, hidden = order[sl], hide[sl]
            part, n_local = dp.batch_part(rows.size)
            inputs, y2, y1 = _batch(ex, rows[part], hidden[part], device)
            # every process knows the whole batch: the counts need no communication
            visible = int((~hidden[part]).sum()) if n_local else 0
            loss = objective(
                inputs,
                y2,
                y1,
                shard_scale(n_local, rows.size, dp.world_size),
                shard_scale(visible, int((~hidden).sum()), dp.world_size),
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += dp.all_sum(float(loss.detach())) / dp.world_size
        net.eval()
        s2_hidden, _ = heldout_rmse(net, ex, hide=True)
        z_vis, z_hid = heldout_embeddings(net, ex)
        gap, offset = heldout_consistency(z_vis, z_hid)
        kept = heldout_code_r2(z_vis, ex)
        curves.append(
            {
                "epoch": epoch + 1,
                "train_loss": total / n_batches,
                "heldout_s2_rmse_hidden": float(s2_hidden.mean()),
                "heldout_embedding_gap": gap,
                "heldout_embedding_offset": offset,
                "heldout_s2_code_r2": kept["s2"],
                "heldout_s1_code_r2": kept["s1"],
            }
        )
        dp.info(
            log,
            "fusion epoch %d: train loss %.4f, held-out S2 RMSE (day hidden) %.4f, "
            "embedding hidden - visible: RMS %.4f, offset %.4f",
            epoch + 1,
            total / n_batches,
            s2_hidden.mean(),
            gap,
            offset,
        )
        if dp.is_main:
            save_checkpoint(
                outputs.checkpoint,
                {
                    "epoch": epoch,
                    **run,
                    "fusion": net.state_dict(),
                    "optimizer": opt.state_dict(),
                    "curves": curves,
                },
            )
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            return {}

    s2_vis, s1_vis = heldout_rmse(net, ex, hide=False)
    s2_hid, s1_hid = heldout_rmse(net, ex, hide=True)
    ho = ex["held_out"]
    rows = [
        {
            "sensor": "s2",
            "band": b,
            "rmse_day_visible": v,
            "rmse_day_hidden": h,
            "rmse_band_mean": m,
        }
        for b, v, h, m in zip(
            s2_series[0].channels, s2_vis, s2_hid, ex["s2_target"][ho].std(0), strict=True
        )
    ]
    rows += [
        {
            "sensor": "s1",
            "band": b,
            "rmse_day_visible": v,
            "rmse_day_hidden": h,
            "rmse_band_mean": m,
        }
        for b, v, h, m in zip(
            s1_series[0].channels, s1_vis, s1_hid, np.nanstd(ex["s1_target"][ho], 0), strict=True
        )
    ]
    figures = pd.DataFrame(rows)
    if dp.is_main:
        write_training_tables(figures, outputs.heldout, curves, outputs.curves)
        save_checkpoint(
            outputs.model,
            export_checkpoint(
                asdict(cfg),
                net,
                {"s2": st2, "s1": st1},
                {"s2": list(s2_series[0].channels), "s1": list(s1_series[0].channels)},
                encoder_paths,
                run["encoder_sha256"],
            ),
        )
        outputs.checkpoint.unlink()
    return {"figures": figures, "curves": curves}
