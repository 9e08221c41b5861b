"""The trained model as export uses it: both frozen encoders and the fusion network.

Everything comes from the fusion checkpoint alone (``results/models/fusion.pt``): it
carries the encoders' weights, their normalisation statistics and the sensors' band
names, so a copy of that one file embeds new data. Its format is
``ecoembed.models.checkpoint``'s, which reads it with PyTorch's weights-only unpickler: a
crafted file is refused, unrun.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ecoembed.io.errors import InputDataError
from ecoembed.io.sensors import PRIMARY, SENSOR_NAMES
from ecoembed.models import ContextEncoder, FusionNetwork
from ecoembed.models.checkpoint import (
    encoder_from_state,
    encoder_norm,
    file_sha256,
    read_fusion_checkpoint,
)


@dataclass
class EmbeddingModel:
    encoders: dict[str, ContextEncoder]
    fusion: FusionNetwork
    norm: dict[str, tuple[np.ndarray, np.ndarray]]  # sensor -> (mean, std) per band
    channels: dict[str, list[str]]  # sensor -> band names, in the cube's order
    context_dates: int
    other_tokens: int  # acquisitions of each other sensor given to the fusion
    provenance: dict = field(default_factory=dict)  # checkpoint hashes, training config

    @property
    def size(self) -> int:
        return self.encoders[PRIMARY].size

    @property
    def halo(self) -> int:
        """Pixels of context needed on each side of an output window."""
        return self.encoders[PRIMARY].size // 2

    @property
    def embedding_dim(self) -> int:
        return self.fusion.readout.out_features

    @property
    def device(self) -> torch.device:
        return next(self.fusion.parameters()).device

    def to(self, device: torch.device | str) -> EmbeddingModel:
        for enc in self.encoders.values():
            enc.to(device)
        self.fusion.to(device)
        return self

    def normalise(self, sensor: str, values: np.ndarray) -> np.ndarray:
        """(T, C, H, W) physical values -> the units the encoder was trained on."""
        mean, std = self.norm[sensor]
        return ((values - mean[:, None, None]) / std[:, None, None]).astype(np.float32)

    def denormalise(self, sensor: str, values: np.ndarray, axis: int = 1) -> np.ndarray:
        mean, std = self.norm[sensor]
        shape = [1] * values.ndim
        shape[axis] = -1
        return values * std.reshape(shape) + mean.reshape(shape)


def load_embedding_model(path: str | Path, device: str | torch.device = "cpu") -> EmbeddingModel:
    """The export model from a fusion checkpoint; a file that is not a self-contained
    fusion checkpoint of this format (no encoders inside, an older format, a crafted or
    corrupt file) is refused with an InputDataError naming it."""
    path = Path(path)
    state = read_fusion_checkpoint(path)
    try:
        encoders = {m: encoder_from_state(state["encoder_states"][m]) for m in SENSOR_NAMES}
        norm = {m: encoder_norm(state["encoder_states"][m]) for m in SENSOR_NAMES}
        cfg = state["config"]
        fusion = FusionNetwork(
            {m: len(state["channels"][m]) for m in SENSOR_NAMES},
            latent_dim=encoders[PRIMARY].temporal.out.out_features,
            embedding_dim=cfg["embedding_dim"],
        )
        fusion.load_state_dict(state["fusion"])
        context_dates = int(cfg["context_dates"])
        other_tokens = int(cfg["other_tokens"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputDataError(path, f"fusion checkpoint does not fit its model ({exc})") from None
    fusion.eval()
    for p in fusion.parameters():
        p.requires_grad_(False)
    provenance = {
        "fusion_checkpoint": str(path),
        "fusion_sha256": file_sha256(path),
        "encoder_sha256": dict(state.get("encoder_sha256", {})),
        "fusion_config": dict(cfg),
        "encoder_config": {m: dict(state["encoder_states"][m]["config"]) for m in SENSOR_NAMES},
    }
    model = EmbeddingModel(
        encoders=encoders,
        fusion=fusion,
        norm=norm,
        channels={m: list(state["channels"][m]) for m in SENSOR_NAMES},
        context_dates=context_dates,
        other_tokens=other_tokens,
        provenance=provenance,
    )
    return model.to(device)
