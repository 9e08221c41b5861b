"""One encoder's codes on many pixel-dates of a window at once, and the gathers that find
each pixel-date's fusion inputs: shared by export (``ecoembed.embed.dense``) and by the
fusion training's examples (``ecoembed.train.fusion``), so that the network sees in
training exactly the inputs it gets in export.

How the work is shared: each encoder's convolutional stem runs once per acquisition over
the whole window (plus a halo of half the context size), not once per pixel and per
neighbourhood; each pixel-date's temporal token sequence is then a slice of those stem
features, so the frames around a date reuse the features computed for its neighbours.
Frames before the first and after the last acquisition are missing frames (NaN, at the
series' median revisit), as the encoders saw clouds and gaps in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ecoembed.models.encoder import ContextEncoder


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
    f = enc.feature_channels
    out = torch.empty((pixels.size, n_frames, f), device=device)
    pix = torch.from_numpy(pixels).to(device)
    missing = torch.full((1, c, hh, ww), float("nan"), device=device)
    with torch.no_grad():
        # a missing frame's features do not depend on where it is: compute them once
        blank = enc.frame_features(missing).flatten(2)[0][:, pix].T
        out[:, :half] = blank[:, None]
        out[:, half + t_len :] = blank[:, None]
        for t0 in range(0, t_len, frame_batch):
            x = torch.from_numpy(values[t0 : t0 + frame_batch]).to(device)
            feats = enc.frame_features(x).flatten(2)[:, :, pix]  # (b, F, P)
            out[:, half + t0 : half + t0 + x.shape[0]] = feats.permute(2, 0, 1)
    return out


def codes_at(
    enc: ContextEncoder,
    feats: torch.Tensor,
    days_padded: torch.Tensor,
    t_idx: np.ndarray,
    p_idx: np.ndarray,
    batch: int = 512,
    blank: tuple[np.ndarray, np.ndarray] | None = None,
) -> torch.Tensor:
    """Codes (N, latent) of the pixel-dates (t_idx, p_idx): slices of the stem features.

    ``blank``: per code, a run of acquisitions (first, last; inclusive) seen as missing
    frames over the whole neighbourhood, as if a cloud had covered the window on those
    dates (the fusion training's hidden days). A missing frame's features are those of the
    padding frames (``stem_features``), so this equals encoding the series with the run's
    values set to NaN.
    """
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
            if blank is not None:
                lo = torch.from_numpy(blank[0][i : i + batch]).to(device)[:, None] + half
                hi = torch.from_numpy(blank[1][i : i + batch]).to(device)[:, None] + half
                run = (frames >= lo) & (frames <= hi)
                tokens = torch.where(run[..., None], feats[p, 0][:, None], tokens)
            dt = days_padded[frames] - days_padded[t + half][:, None]
            out[i : i + batch] = enc.temporal(tokens, dt)
    return out


def padded_days_tensor(enc: ContextEncoder, days: np.ndarray, device) -> torch.Tensor:
    """``padded_days`` for ``codes_at``, on the encoder's device."""
    days_p = padded_days(np.asarray(days, np.float64), enc.frames // 2)
    return torch.from_numpy(days_p).float().to(device)


def grid_codes(
    enc: ContextEncoder,
    feats: torch.Tensor,
    days: np.ndarray,
    where: np.ndarray,
    batch: int = 512,
) -> torch.Tensor:
    """Codes (T, P, latent) from the stem features ``feats`` (``stem_features``) where
    ``where`` (T, P) is True, zero elsewhere."""
    device = feats.device
    t, p = np.nonzero(where)
    codes = torch.zeros(
        (where.shape[0], where.shape[1], enc.temporal.out.out_features), device=device
    )
    codes[torch.from_numpy(t).to(device), torch.from_numpy(p).to(device)] = codes_at(
        enc, feats, padded_days_tensor(enc, days, device), t, p, batch
    )
    return codes


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
    return grid_codes(enc, stem_features(enc, values, pixels), days, where, batch)


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


def nearest_acquisitions(
    valid: np.ndarray,
    days: np.ndarray,
    target_days: np.ndarray,
    k: int,
    ranks: ClearRanks | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (D, P, k) of each pixel's k valid acquisitions nearest to each target day,
    nearest first (ties: the earlier first), and whether each exists (D, P, k).

    The k nearest lie among the k nearest before and the k nearest at or after the day,
    which ``context_indices`` finds from the ranks of the valid acquisitions; k = 1 is
    ``nearest_acquisition``. ``ranks``: ``ClearRanks.of(valid)``, when already known.
    """
    days = np.asarray(days, np.float64)
    target_days = np.asarray(target_days, np.float64)
    split = np.searchsorted(days, target_days, "left")  # acquisitions strictly before
    ranks = ClearRanks.of(valid) if ranks is None else ranks
    idx, ok = context_indices(ranks, split, split, 2 * k)
    gap = np.where(ok, np.abs(days[idx] - target_days[:, None, None]), np.inf)
    order = np.argsort(gap, axis=2, kind="stable")[:, :, :k]
    return np.take_along_axis(idx, order, 2), np.take_along_axis(ok, order, 2)


def core_values(values: np.ndarray, halo: int) -> np.ndarray:
    """(T, C, H + 2 halo, W + 2 halo) -> (T, C, H * W): the window without its halo."""
    core = values[:, :, halo : values.shape[2] - halo, halo : values.shape[3] - halo]
    return np.ascontiguousarray(core).reshape(values.shape[0], values.shape[1], -1)


def clear_views(
    core: torch.Tensor,
    days: torch.Tensor,
    day: torch.Tensor,
    pix: torch.Tensor,
    observed: torch.Tensor,
    own: torch.Tensor,
    near: torch.Tensor,
    near_ok: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """The views ``FusionNetwork.reconstruct`` anchors on, for b pixel-days: values (b, C)
    of the nearest clear date before and after (NaN where none) and their gaps to the day;
    a day the pixel sees clear is its own view on both sides, gap 0 (as in training).

    core (T, C, P) normalised values; day (b,) day numbers; pix (b,) pixel; observed (b,);
    own (b,) the day's S2 acquisition; near/near_ok (b, 2) from ``context_indices``.
    """
    nan = torch.full_like(core[0, :, 0], float("nan"))
    out = []
    for side in (0, 1):
        idx = torch.where(observed, own, near[:, side])
        ok = observed | near_ok[:, side]
        value = torch.where(ok[:, None], core[idx, :, pix], nan)
        gap = torch.where(ok & ~observed, days[idx] - day, torch.zeros_like(day))
        out.append((value, gap))
    (before, dt_before), (after, dt_after) = out
    return before, after, dt_before, dt_after


def valid_pixels(values: np.ndarray, halo: int) -> np.ndarray:
    """(T, C, H + 2 halo, W + 2 halo) -> (T, H * W): every band present at the pixel."""
    core = values[:, :, halo : values.shape[2] - halo, halo : values.shape[3] - halo]
    return np.isfinite(core).all(axis=1).reshape(values.shape[0], -1)
