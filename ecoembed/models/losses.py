"""The context-aware reconstruction loss and the input masking of pretraining."""

from __future__ import annotations

import torch


def context_weights(
    size: int,
    frames: int,
    *,
    ring1: float = 0.01,
    spatial_decay: float = 0.1,
    temporal_decay: float = 0.1,
) -> torch.Tensor:
    """(frames, size, size) loss weights: the central pixel on the central date counts most.

    Spatial weight 1 at the centre and ``ring1 * spatial_decay**(d - 1)`` on the square ring
    at Chebyshev distance d; temporal weight ``temporal_decay**|k|`` on the frame k steps
    from the central one (the paper's scheme).
    """
    r = torch.arange(size) - size // 2
    ring = torch.maximum(r[:, None].abs(), r[None, :].abs())
    spatial = torch.where(
        ring == 0, torch.tensor(1.0), ring1 * spatial_decay ** (ring.clamp(min=1) - 1).float()
    )
    k = (torch.arange(frames) - frames // 2).abs().float()
    return temporal_decay ** k[:, None, None] * spatial[None]


LOSSES = ("mse", "huber", "l1")


def pointwise_loss(err: torch.Tensor, kind: str = "mse", delta: float = 1.0) -> torch.Tensor:
    """The penalty of each error (normalised units): squared ("mse"), absolute ("l1"), or
    Huber's, squared within ``delta`` and linear beyond, scaled by 2 so that it equals the
    squared error where the two agree (rare large errors, a harvest on a hidden day, then
    pull less than the many small ones)."""
    if kind == "mse":
        return err**2
    if kind == "l1":
        return err.abs()
    if kind == "huber":
        return 2.0 * torch.nn.functional.huber_loss(
            err, torch.zeros_like(err), reduction="none", delta=delta
        )
    raise ValueError(f"unknown loss {kind!r}; expected one of {', '.join(LOSSES)}")


def weighted_masked_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor,
    kind: str = "mse",
    delta: float = 1.0,
) -> torch.Tensor:
    """Weighted penalty (``pointwise_loss``) over the values that exist (target not NaN).

    pred, target: (B, T, C, S, S); weights: (T, S, S). Missing targets contribute nothing,
    neither to the error nor to the normaliser.
    """
    valid = torch.isfinite(target)
    w = weights[None, :, None].expand_as(target) * valid
    err = torch.where(valid, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return (w * pointwise_loss(err, kind, delta)).sum() / w.sum().clamp(min=1e-12)


def valid_weight(target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The normaliser of ``weighted_masked_loss``: the total weight of the values that exist.
    Data-parallel training sums it over processes to weigh each process's share."""
    return (weights[None, :, None].expand_as(target) * torch.isfinite(target)).sum()


def mask_inputs(
    patches: torch.Tensor,
    *,
    p_frame: float,
    p_centre: float,
    generator: torch.Generator | None = None,
    rows: tuple[slice, int] | None = None,
) -> torch.Tensor:
    """Hide whole frames (prob. ``p_frame``) and the central pixel of the central frame
    (prob. ``p_centre``) as NaN, so the code must also come from context.

    ``rows=(part, n)``: ``patches`` are the rows ``part`` of a batch of ``n``; the draws are
    made for all ``n`` and this part kept, so that a batch split over data-parallel
    processes is masked exactly as the whole batch would be in one process.
    """
    b, t = patches.shape[:2]
    part, n = rows if rows is not None else (slice(0, b), b)
    out = patches.clone()
    drop = (torch.rand(n, t, generator=generator) < p_frame)[part]
    out[drop] = float("nan")
    centre = (torch.rand(n, generator=generator) < p_centre)[part]
    s = patches.shape[-1] // 2
    out[centre, t // 2, :, s, s] = float("nan")
    return out
