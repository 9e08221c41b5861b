"""Stage 2: the light fusion network over frozen per-sensor codes (docs/design.md,
point 2).

For one pixel and a target day it reads tokens:

* the primary sensor's code on that day (S2 by default) or, when that day has no clear
  view, a learned "missing" token;
* the primary sensor's codes on neighbouring clear dates (context), each with its gap;
* for every other sensor, the codes of its acquisitions nearest to the day (one or
  several, ``others``), each with its gap;

and a small transformer turns them into one embedding (read from the day token), which a
head per sensor decodes back into that sensor's values of the day.

The reconstruction product is not the primary sensor's decode alone: a pixel's own clear
views hold its static sub-parcel detail, which 7 numbers cannot, and the embedding holds
what happened between them (S1, the neighbourhood), which interpolation cannot. So
``reconstruct`` starts from the linear interpolation of the pixel's nearest clear views
before and after the day (the view itself on a clear day) and adds a correction read from
the embedding and the two views (``AnchoredReconstruction``). It reads the embedding and
does not shape it (the embedding is detached), so the embedding is what it would be
without it. Sensors are entries of
``channels`` (name -> number of bands), not branches in the code: a new sensor is a new
entry, its encoder, and a re-train of this network.
"""

from __future__ import annotations

import torch
from torch import nn

from ecoembed.models.encoder import read_token, time_features


def freeze(module: nn.Module) -> nn.Module:
    """Encoders are fixed during fusion training: no gradients, inference behaviour."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


class FusionNetwork(nn.Module):
    def __init__(
        self,
        channels: dict[str, int],
        *,
        primary: str = "s2",
        latent_dim: int = 7,
        embedding_dim: int = 7,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__()
        if primary not in channels:
            raise ValueError(f"primary sensor {primary!r} is not among {sorted(channels)}")
        self.primary, self.names = primary, sorted(channels)
        self.proj = nn.ModuleDict({m: nn.Linear(latent_dim, hidden) for m in self.names})
        # roles: 0 the primary on the day, 1 a primary context date, 2+ the other sensors
        self.role = nn.Embedding(2 + len(self.names), hidden)
        self.time = nn.Linear(3, hidden)
        self.missing = nn.Parameter(torch.zeros(hidden))
        block = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True
        )
        self.transformer = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.readout = nn.Linear(hidden, embedding_dim)
        self.decode = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(embedding_dim, hidden), nn.GELU(), nn.Linear(hidden, c))
                for m, c in channels.items()
            }
        )
        # Heads from the embedding back to each sensor's frozen code (trained only with a
        # code loss; the paper routes the fused embedding back to each modality's
        # bottleneck). Created last, so that the layers above start the same without them.
        self.code_heads = nn.ModuleDict(
            {m: nn.Linear(embedding_dim, latent_dim) for m in self.names}
        )
        self.anchored = AnchoredReconstruction(channels[primary], embedding_dim, hidden)

    def reconstruct(
        self,
        emb: torch.Tensor,
        decoded: torch.Tensor,
        before: torch.Tensor,
        after: torch.Tensor,
        dt_before: torch.Tensor,
        dt_after: torch.Tensor,
    ) -> torch.Tensor:
        """The primary sensor's values of the day (normalised), anchored on its clear views.

        emb (B, E) and decoded (B, C) from ``forward``; before/after (B, C): the pixel's
        nearest clear values before and after the day (both the day's own value on a
        clear day), NaN where there is none; dt_before <= 0 <= dt_after (B,) their gaps.
        """
        return self.anchored(emb.detach(), decoded.detach(), before, after, dt_before, dt_after)

    def _token(self, name: str, code: torch.Tensor, dt: torch.Tensor, role: int) -> torch.Tensor:
        r = torch.full(dt.shape, role, dtype=torch.long, device=dt.device)
        return self.proj[name](code) + self.time(time_features(dt)) + self.role(r)

    def forward(
        self,
        day_code: torch.Tensor,
        day_present: torch.Tensor,
        context_codes: torch.Tensor,
        context_dt: torch.Tensor,
        context_present: torch.Tensor,
        others: dict[str, tuple[torch.Tensor, ...]],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Embedding (B, embedding_dim) and each sensor's decoded values of the day.

        day_code (B, latent), day_present (B,) bool; context_codes (B, K, latent),
        context_dt (B, K) days, context_present (B, K) bool (absent ones are ignored);
        others: sensor -> (codes (B, N, latent), gaps to their acquisitions in days
        (B, N), present (B, N) bool), N acquisitions of that sensor around the day; or
        (code (B, latent), gap (B,)) for its one nearest acquisition.
        """
        b = day_code.shape[0]
        zero = torch.zeros(b, device=day_code.device)
        day = self._token(self.primary, day_code, zero, 0)
        day = torch.where(day_present[:, None], day, self.missing + self.role.weight[0])
        tokens = [day[:, None], self._token(self.primary, context_codes, context_dt, 1)]
        present = [torch.ones(b, 1, dtype=torch.bool, device=day.device), context_present]
        for k, name in enumerate(n for n in self.names if n != self.primary):
            code, dt, ok = tokens_of(others[name])
            tokens.append(self._token(name, code, dt, 2 + k))
            present.append(ok)
        seq = torch.cat(tokens, dim=1)
        mask = ~torch.cat(present, dim=1)  # True = ignore
        emb = self.readout(read_token(self.transformer, seq, 0, key_padding_mask=mask))
        return emb, {m: head(emb) for m, head in self.decode.items()}


def tokens_of(other: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """(codes (B, N, latent), gaps (B, N), present (B, N)) of one other sensor, from that
    or from (code (B, latent), gap (B,)) of a single acquisition."""
    if len(other) == 3:
        return other
    code, dt = other
    return code[:, None], dt[:, None], torch.ones_like(dt, dtype=torch.bool)[:, None]


def interpolate_views(
    before: torch.Tensor, after: torch.Tensor, dt_before: torch.Tensor, dt_after: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear interpolation between the views before and after the day (B, C), constant
    where only one exists, and whether any exists (B,). What the linear gap-filling
    baseline (``ecoembed.embed.baselines.linear_fill``) gives from the same two views."""
    has_b = torch.isfinite(before).all(-1)
    has_a = torch.isfinite(after).all(-1)
    dt_before, dt_after = torch.nan_to_num(dt_before), torch.nan_to_num(dt_after)
    span = dt_after - dt_before
    between = -dt_before / span.clamp(min=1e-6)
    w_after = torch.where(
        has_b & has_a, torch.where(span > 0, between, torch.zeros_like(span)), has_a.float()
    )
    b0, a0 = torch.nan_to_num(before), torch.nan_to_num(after)
    return b0 + w_after[:, None] * (a0 - b0), has_b | has_a


def gap_features(dt_before: torch.Tensor, dt_after: torch.Tensor, has_b, has_a) -> torch.Tensor:
    """(B, 6): the gaps to the two views in months and log days, and which exist."""
    b = torch.where(has_b, -dt_before, torch.zeros_like(dt_before))
    a = torch.where(has_a, dt_after, torch.zeros_like(dt_after))
    return torch.stack(
        [b / 30, a / 30, torch.log1p(b) / 4, torch.log1p(a) / 4, has_b.float(), has_a.float()], -1
    )


class AnchoredReconstruction(nn.Module):
    """Interpolated clear views plus a correction from the embedding (module docstring).

    Where the pixel has no clear view on either side, the anchor is the embedding's own
    decode. The last layer starts at zero: an untrained head is linear interpolation.
    """

    def __init__(self, channels: int, embedding_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embedding_dim + 4 * channels + 6, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, channels),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, emb, decoded, before, after, dt_before, dt_after) -> torch.Tensor:
        has_b = torch.isfinite(before).all(-1)
        has_a = torch.isfinite(after).all(-1)
        interp, has_any = interpolate_views(before, after, dt_before, dt_after)
        anchor = torch.where(has_any[:, None], interp, decoded)
        x = torch.cat(
            [
                emb,
                decoded,
                anchor,
                torch.where(has_b[:, None], torch.nan_to_num(before), anchor),
                torch.where(has_a[:, None], torch.nan_to_num(after), anchor),
                gap_features(dt_before, dt_after, has_b, has_a),
            ],
            -1,
        )
        return anchor + self.net(x)
