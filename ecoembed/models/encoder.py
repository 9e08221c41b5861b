"""Context encoder of one sensor: the code of a pixel on a date from its neighbourhood.

The spatial stem is a stack of unpadded convolutions whose receptive field is exactly the
context window (``size`` x ``size`` pixels). Run on a single neighbourhood it yields one
feature vector; run on a whole tile it yields the same vector for every pixel at once,
sharing the convolution work between neighbours, which is what makes dense export cheap.
The temporal module then reads the stem features of one pixel on ``frames`` acquisitions
around the central date, told each frame's time gap in days, and returns the code of the
central frame.

Missing values (clouds, no data) arrive as NaN; the stem sees them as zeros plus a
validity channel, so "missing" is never confused with a real value of zero.
"""

from __future__ import annotations

import torch
from torch import nn


def stem_kernels(size: int) -> list[int]:
    """Kernel sizes (at most 5) whose receptive fields add up to ``size``."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"context size must be odd and positive, got {size}")
    kernels, rest = [], size - 1
    while rest > 0:
        step = min(4, rest)
        kernels.append(step + 1)
        rest -= step
    return kernels or [1]


def with_validity(x: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) with NaN -> (..., C + 1, H, W): zeros where missing, plus a channel that
    is 1 where every band of the pixel is present."""
    valid = torch.isfinite(x).all(dim=-3, keepdim=True)
    values = torch.where(valid, torch.nan_to_num(x, nan=0.0), torch.zeros_like(x))
    return torch.cat([values, valid.to(x.dtype)], dim=-3)


class SpatialStem(nn.Module):
    def __init__(self, in_channels: int, size: int = 15, channels: int = 32) -> None:
        super().__init__()
        self.size = size
        layers: list[nn.Module] = []
        c = in_channels + 1  # + validity
        for i, k in enumerate(stem_kernels(size)):
            layers.append(nn.Conv2d(c, channels, k))
            if i < len(stem_kernels(size)) - 1:
                layers.append(nn.GELU())
            c = channels
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W), NaN for missing -> (N, channels, H - size + 1, W - size + 1)."""
        return self.net(with_validity(x))


def read_token(
    encoder: nn.TransformerEncoder,
    tokens: torch.Tensor,
    index: int,
    key_padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``encoder(tokens)[:, index]``, with the last layer computed for that token only.

    Only one token is read out, so the last layer needs every token's keys and values but
    only this token's query, attention output and feed-forward: about a third of the
    layer's work. Same result as the full encoder to float rounding (tested).
    """
    layers = encoder.layers
    x = tokens
    for layer in layers[:-1]:
        x = layer(x, src_key_padding_mask=key_padding_mask)
    last = layers[-1]
    if last.norm_first:
        raise NotImplementedError("read_token expects post-norm layers (norm_first=False)")
    q = x[:, index : index + 1]
    att = last.self_attn(q, x, x, key_padding_mask=key_padding_mask, need_weights=False)[0]
    y = last.norm1(q + last.dropout1(att))
    y = last.norm2(y + last._ff_block(y))
    return y[:, 0] if encoder.norm is None else encoder.norm(y[:, 0])


def time_features(dt_days: torch.Tensor) -> torch.Tensor:
    """Gap to the central date, as a few smooth features (scaled days, annual phase)."""
    phase = 2 * torch.pi * dt_days / 365.25
    return torch.stack([dt_days / 30.0, torch.sin(phase), torch.cos(phase) - 1.0], dim=-1)


class TemporalEncoder(nn.Module):
    """Transformer over the frames of one pixel; the central frame's token becomes the code."""

    def __init__(
        self,
        in_features: int,
        latent_dim: int = 7,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__()
        self.inp = nn.Linear(in_features + 3, hidden)
        block = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True
        )
        self.transformer = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.out = nn.Linear(hidden, latent_dim)

    def forward(self, feats: torch.Tensor, dt_days: torch.Tensor) -> torch.Tensor:
        """(B, T, F) stem features, (B, T) or (T,) gaps in days -> (B, latent) code."""
        if dt_days.dim() == 1:
            dt_days = dt_days.expand(feats.shape[0], -1)
        tokens = self.inp(torch.cat([feats, time_features(dt_days)], dim=-1))
        centre = feats.shape[1] // 2
        return self.out(read_token(self.transformer, tokens, centre))


class ContextEncoder(nn.Module):
    """``centre_skip``: the temporal module also reads each frame's central pixel values
    (and validity) beside the stem's features, so that the pixel's own spectrum reaches
    the code directly instead of through four convolutions that mix it with 224
    neighbours (the authors keep a 4 x 4 spatial map per frame for the same reason)."""

    def __init__(
        self,
        in_channels: int,
        *,
        size: int = 15,
        frames: int = 11,
        latent_dim: int = 7,
        stem_channels: int = 32,
        hidden: int = 64,
        centre_skip: bool = False,
    ) -> None:
        super().__init__()
        if frames % 2 == 0:
            raise ValueError(f"frames must be odd (a central date), got {frames}")
        self.in_channels, self.size, self.frames = in_channels, size, frames
        self.centre_skip = centre_skip
        self.stem = SpatialStem(in_channels, size, stem_channels)
        self.feature_channels = stem_channels + (in_channels + 1 if centre_skip else 0)
        self.temporal = TemporalEncoder(self.feature_channels, latent_dim, hidden)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W), NaN for missing -> (N, feature_channels, H - size + 1, ...): the
        stem's features of every pixel with full context, with its own values if
        ``centre_skip``."""
        feats = self.stem(x)
        if not self.centre_skip:
            return feats
        half = self.size // 2
        own = with_validity(x)[..., half : x.shape[-2] - half, half : x.shape[-1] - half]
        return torch.cat([feats, own], dim=-3)

    def forward(self, patches: torch.Tensor, dt_days: torch.Tensor) -> torch.Tensor:
        """Codes of the central pixel-dates of neighbourhoods.

        patches: (B, T, C, size, size), NaN for missing; dt_days: (B, T) -> (B, latent).
        """
        b, t, c, h, w = patches.shape
        if (t, h, w) != (self.frames, self.size, self.size):
            raise ValueError(
                f"expected (B, {self.frames}, C, {self.size}, {self.size}) "
                f"neighbourhoods, got {tuple(patches.shape)}"
            )
        feats = self.frame_features(patches.reshape(b * t, c, h, w)).reshape(b, t, -1)
        return self.temporal(feats, dt_days)

    def window_codes(
        self,
        windows: torch.Tensor,
        dt_days: torch.Tensor,
        at: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        drop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Codes of several central pixel-dates per window, from one stem pass per frame.

        windows: (G, T, C, H, W), NaN for missing, each T frames around one central date;
        dt_days: (G, T); at: (window, row, col) of each code, (N,) each, the row and column
        in the stem's output grid (H - size + 1, W - size + 1), i.e. the centre's position
        minus ``size // 2``; drop: (N, T) frames seen as missing by that code only.
        Equals ``forward`` on each code's neighbourhood with its dropped frames set to NaN
        (to float rounding, tested): the stem is unpadded, so its output at a pixel is that
        of the pixel's own neighbourhood, and a missing frame's features are those of an
        all-missing neighbourhood. Neighbouring codes share the stem's work.
        """
        g, t, c, h, w = windows.shape
        if t != self.frames:
            raise ValueError(f"expected windows of {self.frames} frames, got {t}")
        feats = self.frame_features(windows.reshape(g * t, c, h, w))
        feats = feats.reshape(g, t, *feats.shape[1:])  # (G, T, F, H', W')
        group, rows, cols = at
        tokens = feats[group, :, :, rows, cols]  # (N, T, F)
        if drop is not None:
            blank = windows.new_full((1, c, self.size, self.size), float("nan"))
            tokens = torch.where(drop[..., None], self.frame_features(blank).flatten(), tokens)
        return self.temporal(tokens, dt_days[group])

    @torch.no_grad()
    def encode_dense(
        self, frames: torch.Tensor, dt_days: torch.Tensor, pixel_batch: int = 65_536
    ) -> torch.Tensor:
        """Codes of every pixel with full context, for the central frame of ``frames``.

        frames: (T, C, H, W) of one tile window, NaN for missing; dt_days: (T,).
        Returns (latent, H - size + 1, W - size + 1): the stem runs once per frame over the
        whole window; the temporal module runs on batches of pixels.
        """
        feats = self.frame_features(frames)  # (T, F, H', W')
        t, f, h, w = feats.shape
        per_pixel = feats.permute(2, 3, 0, 1).reshape(h * w, t, f)
        codes = torch.cat(
            [
                self.temporal(per_pixel[i : i + pixel_batch], dt_days)
                for i in range(0, h * w, pixel_batch)
            ]
        )
        return codes.reshape(h, w, -1).permute(2, 0, 1)
