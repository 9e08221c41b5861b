"""Decoder of one sensor: the whole neighbourhood back from the central code."""

from __future__ import annotations

import torch
from torch import nn

from ecoembed.models.encoder import time_features


class NeighbourhoodDecoder(nn.Module):
    """Each frame of the neighbourhood from the code and that frame's time gap."""

    def __init__(
        self, out_channels: int, *, size: int = 15, latent_dim: int = 7, hidden: int = 128
    ) -> None:
        super().__init__()
        self.out_channels, self.size = out_channels, size
        self.net = nn.Sequential(
            nn.Linear(latent_dim + 3, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, out_channels * size * size),
        )

    def forward(self, code: torch.Tensor, dt_days: torch.Tensor) -> torch.Tensor:
        """(B, latent), (B, T) -> (B, T, C, size, size)."""
        b, t = dt_days.shape
        z = code[:, None, :].expand(b, t, code.shape[-1])
        out = self.net(torch.cat([z, time_features(dt_days)], dim=-1))
        return out.reshape(b, t, self.out_channels, self.size, self.size)
