"""Stage 2: the light fusion network over frozen per-sensor codes (docs/design.md,
point 2).

For one pixel and a target day it reads tokens:

* the primary sensor's code on that day (S2 by default) or, when that day has no clear
  view, a learned "missing" token;
* the primary sensor's codes on neighbouring clear dates (context), each with its gap;
* for every other sensor, the code of its acquisition nearest to the day, with the gap;

and a small transformer turns them into one embedding (read from the day token), which a
head per sensor decodes back into that sensor's values of the day. Sensors are entries of
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
        others: dict[str, tuple[torch.Tensor, torch.Tensor]],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Embedding (B, embedding_dim) and each sensor's decoded values of the day.

        day_code (B, latent), day_present (B,) bool; context_codes (B, K, latent),
        context_dt (B, K) days, context_present (B, K) bool (absent ones are ignored);
        others: sensor -> (code (B, latent), gap to its acquisition in days (B,)).
        """
        b = day_code.shape[0]
        zero = torch.zeros(b, device=day_code.device)
        day = self._token(self.primary, day_code, zero, 0)
        day = torch.where(day_present[:, None], day, self.missing + self.role.weight[0])
        tokens = [day[:, None], self._token(self.primary, context_codes, context_dt, 1)]
        present = [torch.ones(b, 1, dtype=torch.bool, device=day.device), context_present]
        for k, name in enumerate(n for n in self.names if n != self.primary):
            code, dt = others[name]
            tokens.append(self._token(name, code, dt, 2 + k)[:, None])
            present.append(torch.ones(b, 1, dtype=torch.bool, device=day.device))
        seq = torch.cat(tokens, dim=1)
        mask = ~torch.cat(present, dim=1)  # True = ignore
        emb = self.readout(read_token(self.transformer, seq, 0, key_padding_mask=mask))
        return emb, {m: head(emb) for m, head in self.decode.items()}
