"""Fused embeddings of many pixels of one window, on any set of days, computed densely.

How the work is shared (what makes export cheap, docs/design.md, point 3):

* each encoder's convolutional stem runs once per acquisition over the whole window
  (plus a halo of half the context size), not once per pixel and per neighbourhood;
* each pixel-date's temporal token sequence is then a slice of those stem features, so
  the 11 frames around a date reuse the features computed for the neighbouring dates;
* S2 codes are computed only where the fusion network reads them (clear pixel-dates),
  S1 codes on the acquisitions nearest to the requested days.

A target day is either an S2 acquisition (the S2-date product) or any calendar day (the
daily product). The fusion inputs are those of training (ecoembed.train.fusion): the
day's own S2 code where the pixel has a clear view that day, otherwise the "missing"
token; the codes of the nearest clear S2 dates before and after; and the code of the
nearest S1 acquisition.

Edges: frames before the first and after the last acquisition are missing frames (NaN,
at the series' median revisit), and pixels beyond the tile edge are missing pixels
(unless the export reads them from the neighbouring tiles, ``ecoembed.embed.neighbours``),
both of which the encoders saw in training as clouds and gaps. Outputs exist everywhere;
near the edges they rest on less context.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ecoembed.embed.model import EmbeddingModel
from ecoembed.models.dense import (
    ClearRanks,
    clear_views,
    context_indices,
    core_values,
    nearest_acquisitions,
    sensor_codes,
    valid_pixels,
)


@dataclass(frozen=True)
class Targets:
    """The days to embed: day numbers, and the S2 acquisition of each day (-1: none)."""

    days: np.ndarray
    s2_index: np.ndarray

    def __len__(self) -> int:
        return int(self.days.size)


def concat_targets(*parts: Targets) -> Targets:
    return Targets(
        np.concatenate([p.days for p in parts]), np.concatenate([p.s2_index for p in parts])
    )


def s2_date_targets(s2_days: np.ndarray) -> Targets:
    return Targets(np.asarray(s2_days, np.float64), np.arange(len(s2_days)))


def daily_targets(s2_days: np.ndarray, first: int, last: int) -> Targets:
    """Every calendar day from ``first`` to ``last`` (day numbers, inclusive).

    A day with an S2 acquisition takes that acquisition's time (so the daily product
    equals the S2-date product on those days); other days are embedded at noon UTC.
    """
    days = np.arange(first, last + 1, dtype=np.float64)
    index = np.full(days.size, -1)
    acq_day = np.floor(np.asarray(s2_days)).astype(np.int64)
    for t in range(acq_day.size - 1, -1, -1):  # the first acquisition of a day wins
        k = acq_day[t] - first
        if 0 <= k < days.size:
            index[k] = t
    value = np.where(index >= 0, np.asarray(s2_days)[np.maximum(index, 0)], days + 0.5)
    return Targets(value, index)


@dataclass
class WindowSeries:
    """One window of both sensors, normalised, NaN where unusable, with a halo around it.

    s2: (T2, C2, H + 2 halo, W + 2 halo), NaN where the pixel has no clear view;
    s1: (T1, C1, H + 2 halo, W + 2 halo); *_days: acquisition day numbers.
    """

    s2: np.ndarray
    s2_days: np.ndarray
    s1: np.ndarray
    s1_days: np.ndarray


@dataclass
class WindowProduct:
    embedding: np.ndarray  # (D, E, P) float32
    observed: np.ndarray  # (D, P) bool: the day's own clear S2 view was an input
    s2: np.ndarray | None  # (D, C2, P) decoded reflectance (physical units) or None
    # with keep_codes: sensor -> (codes (T, P, latent), computed (T, P)); S1 on all valid
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None


def embed_window(
    model: EmbeddingModel,
    series: WindowSeries,
    targets: Targets,
    *,
    pixels: np.ndarray | None = None,
    decode: bool = True,
    keep_codes: bool = False,
    day_batch: int = 16,
    batch: int = 512,
    precision: str = "fp32",
) -> WindowProduct:
    """Fused embeddings (and decoded S2) of the window's pixels on the target days.

    pixels: flat indices into the H x W output (default: all of them); batch: pixel-dates
    per forward pass (small batches keep the transformer's activations in cache on a CPU;
    raise it on a GPU); precision: ``fp32``, or ``bf16`` (``inference_mode``).
    """
    with inference_mode(model.device, precision):
        return _embed_window(model, series, targets, pixels, decode, keep_codes, day_batch, batch)


PRECISIONS = ("fp32", "bf16")


@contextmanager
def inference_mode(device: str | torch.device = "cpu", precision: str = "fp32"):
    """No autograd, and PyTorch's fused transformer fast path off: on short sequences in
    small batches its native kernel is slower on a CPU than the plain modules.

    ``bf16``: mixed precision (autocast): matrix products and convolutions in bfloat16,
    what is sensitive to rounding (normalisations, softmax, sums of the reconstruction
    with its fp32 anchor) in float32, outputs stored as float32. Made for GPUs with
    bf16 tensor cores; on a CPU without bf16 instructions it is slower, not faster."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    kind = torch.device(device).type
    try:
        with (
            torch.no_grad(),
            torch.autocast(kind, dtype=torch.bfloat16, enabled=precision == "bf16"),
        ):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def _embed_window(
    model, series, targets, pixels, decode, keep_codes, day_batch, batch
) -> WindowProduct:
    halo = model.halo
    h = series.s2.shape[2] - 2 * halo
    w = series.s2.shape[3] - 2 * halo
    pixels = np.arange(h * w) if pixels is None else np.asarray(pixels, np.int64)
    n_pix, device = pixels.size, model.device
    enc2, enc1 = model.encoders["s2"], model.encoders["s1"]
    clear = valid_pixels(series.s2, halo)[:, pixels]  # (T2, P)
    valid1 = valid_pixels(series.s1, halo)[:, pixels]  # (T1, P)
    # S2 codes on clear pixel-dates (the only ones fusion reads), S1 codes on the
    # acquisitions nearest to some target day
    code2 = sensor_codes(enc2, series.s2, series.s2_days, pixels, clear, batch)
    ranks1 = ClearRanks.of(valid1)

    def s1_tokens(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return nearest_acquisitions(valid1, series.s1_days, days, model.other_tokens, ranks1)

    need = valid1.copy() if keep_codes else np.zeros_like(valid1)
    for d0 in range(0, len(targets), day_batch):
        idx, ok = s1_tokens(targets.days[d0 : d0 + day_batch])
        need[idx[ok], np.broadcast_to(np.arange(n_pix)[None, :, None], idx.shape)[ok]] = True
    code1 = sensor_codes(enc1, series.s1, series.s1_days, pixels, need, batch)

    # where each target sits among the S2 acquisitions
    has_s2 = targets.s2_index >= 0
    n_before = np.where(
        has_s2, targets.s2_index, np.searchsorted(series.s2_days, targets.days, "left")
    )
    first_after = np.where(
        has_s2, targets.s2_index + 1, np.searchsorted(series.s2_days, targets.days, "right")
    )
    ranks = ClearRanks.of(clear)
    n_days = len(targets)
    emb = np.empty((n_days, model.embedding_dim, n_pix), np.float32)
    observed = np.zeros((n_days, n_pix), bool)
    observed[has_s2] = clear[targets.s2_index[has_s2]]
    decoded = np.empty((n_days, len(model.channels["s2"]), n_pix), np.float32) if decode else None
    pix_t = torch.arange(n_pix, device=device)
    core2 = torch.from_numpy(core_values(series.s2, halo)[:, :, pixels]).to(device)  # (T2, C2, P)
    s2_days_t = torch.from_numpy(np.asarray(series.s2_days, np.float64)).float().to(device)
    s1_days_t = torch.from_numpy(np.asarray(series.s1_days, np.float64)).float().to(device)
    for d0 in range(0, n_days, day_batch):
        sl = slice(d0, min(d0 + day_batch, n_days))
        ctx, ctx_ok = context_indices(
            ranks, n_before[sl], first_after[sl], model.context_dates
        )  # (d, P, k)
        day_t = torch.from_numpy(targets.days[sl]).float().to(device)
        day_idx = torch.from_numpy(np.maximum(targets.s2_index[sl], 0)).to(device)
        ctx_t = torch.from_numpy(ctx).to(device)
        ctx_ok_t = torch.from_numpy(ctx_ok).to(device)
        # the anchored reconstruction's views: the nearest clear date before and after
        near, near_ok = context_indices(ranks, n_before[sl], first_after[sl], 2)
        near_t = torch.from_numpy(near).to(device)
        near_ok_t = torch.from_numpy(near_ok).to(device)
        s1_idx, s1_ok = s1_tokens(targets.days[sl])  # (d, P, tokens)
        s1_t = torch.from_numpy(s1_idx).to(device)
        s1_ok_t = torch.from_numpy(s1_ok).to(device)
        obs_t = torch.from_numpy(observed[sl]).to(device)
        nd = ctx.shape[0]
        flat = nd * n_pix
        dd = torch.arange(nd, device=device).repeat_interleave(n_pix)  # day of each row
        pp = pix_t.repeat(nd)
        out_e = torch.empty((flat, model.embedding_dim), device=device)
        out_s2 = torch.empty((flat, len(model.channels["s2"])), device=device)
        with torch.no_grad():
            for i in range(0, flat, batch):
                d_, p_ = dd[i : i + batch], pp[i : i + batch]
                ci = ctx_t[d_, p_]  # (b, k)
                si = s1_t[d_, p_]  # (b, tokens)
                e, dec = model.fusion(
                    code2[day_idx[d_], p_],
                    obs_t[d_, p_],
                    code2[ci, p_[:, None]],
                    s2_days_t[ci] - day_t[d_][:, None],
                    ctx_ok_t[d_, p_],
                    {
                        "s1": (
                            code1[si, p_[:, None]],
                            s1_days_t[si] - day_t[d_][:, None],
                            s1_ok_t[d_, p_],
                        )
                    },
                )
                out_e[i : i + batch] = e
                if decode:
                    views = clear_views(
                        core2,
                        s2_days_t,
                        day_t[d_],
                        p_,
                        obs_t[d_, p_],
                        day_idx[d_],
                        near_t[d_, p_],
                        near_ok_t[d_, p_],
                    )
                    out_s2[i : i + batch] = model.fusion.reconstruct(e, dec["s2"], *views)
        emb[sl] = out_e.reshape(nd, n_pix, -1).permute(0, 2, 1).cpu().numpy()
        if decoded is not None:
            dec_np = out_s2.reshape(nd, n_pix, -1).permute(0, 2, 1).cpu().numpy()
            decoded[sl] = model.denormalise("s2", dec_np, axis=1)
    codes = None
    if keep_codes:
        codes = {"s2": (code2.cpu().numpy(), clear), "s1": (code1.cpu().numpy(), valid1)}
    return WindowProduct(emb, observed, decoded, codes)
