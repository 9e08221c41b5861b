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
at the series' median revisit), and pixels beyond the tile edge are missing pixels, both
of which the encoders saw in training as clouds and gaps. Outputs exist everywhere; near
the edges they rest on less context.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ecoembed.embed.model import EmbeddingModel
from ecoembed.models import ContextEncoder


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


def padded_days(days: np.ndarray, half: int) -> np.ndarray:
    """Acquisition days with ``half`` missing frames on each side, at the median revisit."""
    step = float(np.median(np.diff(days))) if days.size > 1 else 1.0
    before = days[0] - step * np.arange(half, 0, -1)
    after = days[-1] + step * np.arange(1, half + 1)
    return np.concatenate([before, days, after])


def stem_features(
    enc: ContextEncoder, values: np.ndarray, pixels: np.ndarray, frame_batch: int = 8
) -> torch.Tensor:
    """Stem features (P, T + 2 half, F) of the selected output pixels on every frame.

    values: (T, C, H + 2 halo, W + 2 halo); pixels: flat indices into the H x W output.
    The T frames are padded with ``frames // 2`` missing frames on each side.
    """
    half = enc.frames // 2
    device = next(enc.parameters()).device
    t_len, c, hh, ww = values.shape
    n_frames = t_len + 2 * half
    f = enc.stem.net[-1].out_channels
    out = torch.empty((pixels.size, n_frames, f), device=device)
    pix = torch.from_numpy(pixels).to(device)
    missing = torch.full((1, c, hh, ww), float("nan"), device=device)
    with torch.no_grad():
        # a missing frame's features do not depend on where it is: compute them once
        blank = enc.stem(missing).flatten(2)[0][:, pix].T
        out[:, :half] = blank[:, None]
        out[:, half + t_len :] = blank[:, None]
        for t0 in range(0, t_len, frame_batch):
            x = torch.from_numpy(values[t0 : t0 + frame_batch]).to(device)
            feats = enc.stem(x).flatten(2)[:, :, pix]  # (b, F, P)
            out[:, half + t0 : half + t0 + x.shape[0]] = feats.permute(2, 0, 1)
    return out


def codes_at(
    enc: ContextEncoder,
    feats: torch.Tensor,
    days_padded: torch.Tensor,
    t_idx: np.ndarray,
    p_idx: np.ndarray,
    batch: int = 512,
) -> torch.Tensor:
    """Codes (N, latent) of the pixel-dates (t_idx, p_idx): slices of the stem features."""
    device = feats.device
    span = torch.arange(enc.frames, device=device)
    half = enc.frames // 2
    out = torch.empty((t_idx.size, enc.temporal.out.out_features), device=device)
    with torch.no_grad():
        for i in range(0, t_idx.size, batch):
            t = torch.from_numpy(t_idx[i : i + batch]).to(device)
            p = torch.from_numpy(p_idx[i : i + batch]).to(device)
            frames = t[:, None] + span  # padded frame index; the centre is t + half
            tokens = feats[p[:, None], frames]
            dt = days_padded[frames] - days_padded[t + half][:, None]
            out[i : i + batch] = enc.temporal(tokens, dt)
    return out


def sensor_codes(
    enc: ContextEncoder,
    values: np.ndarray,
    days: np.ndarray,
    pixels: np.ndarray,
    where: np.ndarray,
    batch: int = 512,
) -> torch.Tensor:
    """One sensor's codes (T, P, latent) of the selected pixels, computed where ``where``
    (T, P) is True and zero elsewhere."""
    device = next(enc.parameters()).device
    feats = stem_features(enc, values, pixels)
    days_p = torch.from_numpy(padded_days(np.asarray(days, np.float64), enc.frames // 2))
    t, p = np.nonzero(where)
    codes = torch.zeros((where.shape[0], pixels.size, enc.temporal.out.out_features), device=device)
    codes[torch.from_numpy(t).to(device), torch.from_numpy(p).to(device)] = codes_at(
        enc, feats, days_p.float().to(device), t, p, batch
    )
    return codes


@dataclass(frozen=True)
class ClearRanks:
    """Each pixel's clear dates in time order, computed once per window.

    order[i, p]: index of pixel p's i-th clear date (valid for i < cum[-1, p]);
    cum[t, p]: number of clear dates of pixel p before acquisition t.
    """

    order: np.ndarray  # (T, P)
    cum: np.ndarray  # (T + 1, P)

    @classmethod
    def of(cls, clear: np.ndarray) -> ClearRanks:
        cum = np.zeros((clear.shape[0] + 1, clear.shape[1]), np.int64)
        np.cumsum(clear, axis=0, out=cum[1:])
        return cls(np.argsort(~clear, axis=0, kind="stable"), cum)


def context_indices(
    ranks: ClearRanks, first_after_before: np.ndarray, first_after: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each target and pixel, up to k // 2 clear dates before and k - k // 2 after.

    first_after_before[d]: number of acquisitions strictly before target d;
    first_after[d]: index of the first acquisition strictly after it. Returns indices
    (D, P, k) and presence (D, P, k), nearest first, as in training.
    """
    t_len, n_pix = ranks.order.shape
    cum = ranks.cum
    kb, ka = k // 2, k - k // 2
    before = cum[first_after_before][:, :, None] - np.arange(1, kb + 1)  # rank in the clear list
    after = cum[first_after][:, :, None] + np.arange(ka)
    rank = np.concatenate([before, after], axis=2)
    ok = (rank >= 0) & (rank < cum[-1][None, :, None])
    idx = ranks.order[np.clip(rank, 0, t_len - 1), np.arange(n_pix)[None, :, None]]
    return np.where(ok, idx, 0), ok


def nearest_acquisition(
    valid: np.ndarray, days: np.ndarray, target_days: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Index (D, P) of each pixel's valid acquisition nearest to each target day."""
    out = np.zeros((target_days.size, valid.shape[1]), np.int64)
    for d, day in enumerate(target_days):
        gap = np.where(valid, np.abs(days - day)[:, None], np.inf)
        out[d] = np.argmin(gap, axis=0)
    return out, valid.any(axis=0)[None].repeat(target_days.size, 0)


def valid_pixels(values: np.ndarray, halo: int) -> np.ndarray:
    """(T, C, H + 2 halo, W + 2 halo) -> (T, H * W): every band present at the pixel."""
    core = values[:, :, halo : values.shape[2] - halo, halo : values.shape[3] - halo]
    return np.isfinite(core).all(axis=1).reshape(values.shape[0], -1)


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
) -> WindowProduct:
    """Fused embeddings (and decoded S2) of the window's pixels on the target days.

    pixels: flat indices into the H x W output (default: all of them); batch: pixel-dates
    per forward pass (small batches keep the transformer's activations in cache on a CPU;
    raise it on a GPU).
    """
    with inference_mode():
        return _embed_window(model, series, targets, pixels, decode, keep_codes, day_batch, batch)


@contextmanager
def inference_mode():
    """No autograd, and PyTorch's fused transformer fast path off: on short sequences in
    small batches its native kernel is slower on a CPU than the plain modules."""
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad():
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
    s1_idx, s1_ok = nearest_acquisition(valid1, series.s1_days, targets.days)
    need = np.zeros_like(valid1)
    need[s1_idx[s1_ok], np.broadcast_to(np.arange(n_pix), s1_idx.shape)[s1_ok]] = True
    if keep_codes:
        need = valid1
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
        s1_t = torch.from_numpy(s1_idx[sl]).to(device)
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
                si = s1_t[d_, p_]
                e, dec = model.fusion(
                    code2[day_idx[d_], p_],
                    obs_t[d_, p_],
                    code2[ci, p_[:, None]],
                    s2_days_t[ci] - day_t[d_][:, None],
                    ctx_ok_t[d_, p_],
                    {"s1": (code1[si, p_], s1_days_t[si] - day_t[d_])},
                )
                out_e[i : i + batch] = e
                out_s2[i : i + batch] = dec["s2"]
        emb[sl] = out_e.reshape(nd, n_pix, -1).permute(0, 2, 1).cpu().numpy()
        if decoded is not None:
            dec_np = out_s2.reshape(nd, n_pix, -1).permute(0, 2, 1).cpu().numpy()
            decoded[sl] = model.denormalise("s2", dec_np, axis=1)
    codes = None
    if keep_codes:
        codes = {"s2": (code2.cpu().numpy(), clear), "s1": (code1.cpu().numpy(), valid1)}
    return WindowProduct(emb, observed, decoded, codes)
