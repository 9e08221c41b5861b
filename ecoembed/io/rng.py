"""Named, independent random streams: one per (seed, *keys), e.g. (seed, tile, component).

Each component draws from its own stream, so changing one part of a computation (say,
the synthetic world's drought switch) leaves every other random draw identical: that is
what makes paired "with/without" experiments on the synthetic world exact, and what
seeds the GPP evaluation's folds.

In ``io``, the bottom layer, because both the synthetic world and the method draw from
these streams: it is shared vocabulary (like ``io.timeaxis`` and ``io.sensors``), not
synthetic physics.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *keys: str | int) -> np.random.Generator:
    """The generator of stream ``keys`` under ``seed`` (str keys hashed with CRC-32)."""
    words = [int(seed)] + [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))
