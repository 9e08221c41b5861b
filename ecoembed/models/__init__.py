"""PyTorch modules of the representation (no I/O): per-sensor context encoders and
decoders, and the context-aware loss. Beside them, not imported here: the training
stages' settings (``settings``) and the checkpoint format (``checkpoint``), which the
trainer writes and inference reads."""

from ecoembed.models.decoder import NeighbourhoodDecoder
from ecoembed.models.encoder import ContextEncoder, SpatialStem, TemporalEncoder
from ecoembed.models.fusion import FusionNetwork, freeze
from ecoembed.models.losses import context_weights, mask_inputs, weighted_masked_loss

__all__ = [
    "ContextEncoder",
    "SpatialStem",
    "TemporalEncoder",
    "NeighbourhoodDecoder",
    "FusionNetwork",
    "freeze",
    "context_weights",
    "mask_inputs",
    "weighted_masked_loss",
]
