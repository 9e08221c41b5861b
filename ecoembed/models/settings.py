"""The settings of the two training stages, as their checkpoints record them.

Training runs with them (``ecoembed.train``) and every checkpoint stores them under
"config" (``ecoembed.models.checkpoint``), where inference reads the architecture back
(``ecoembed.embed``): below both, so that neither imports the other for them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PretrainConfig:
    """Stage 1: one sensor's context autoencoder."""

    size: int = 15
    frames: int = 11
    latent_dim: int = 7
    epochs: int = 6
    batch_size: int = 128
    lr: float = 2e-3
    lr_schedule: str = "cosine"  # or "constant" (ecoembed.train.loop.epoch_lr)
    examples_per_tile: int = 2000
    p_frame: float = 0.15
    p_centre: float = 0.0
    centre_skip: bool = True  # the central pixel's values also go to the temporal module
    loss: str = "mse"  # or "huber", "l1" (ecoembed.models.losses.pointwise_loss)
    huber_delta: float = 0.3  # where Huber's loss turns linear (normalised units)
    # dense training: an epoch's examples come in windows of this many centres of one
    # date in a window_px square, sharing one stem pass (1: one neighbourhood each)
    centres_per_window: int = 1
    window_px: int = 8
    seed: int = 42


@dataclass(frozen=True)
class FusionConfig:
    """Stage 2: the fusion network over the frozen encoders."""

    embedding_dim: int = 7
    epochs: int = 20
    batch_size: int = 256
    lr: float = 2e-3
    lr_schedule: str = "cosine"  # or "constant" (ecoembed.train.loop.epoch_lr)
    examples_per_tile: int = 8000
    context_dates: int = 4  # clear S2 dates, half before and half after the day
    other_tokens: int = 6  # acquisitions of each other sensor (S1) nearest the day
    p_hide: float = 0.5
    consistency: float = 1.0  # weight of ||z(day hidden) - z(day visible)||^2 on visible days
    code_weight: float = 3.0  # weight of decoding each sensor's standardised code from z
    loss: str = "mse"  # of the decodes and the anchored reconstruction: or "huber", "l1"
    huber_delta: float = 0.3  # where Huber's loss turns linear (normalised units)
    seed: int = 42
