"""Named, independent random streams: one per (seed, tile, component).

Each component draws from its own stream, so changing one part of the world (say, the
drought switch) leaves every other random draw identical: that is what makes paired
"with/without" experiments on the synthetic world exact.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *keys: str | int) -> np.random.Generator:
    words = [int(seed)] + [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))
