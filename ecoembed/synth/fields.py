"""Spatially coherent random fields (landscape texture, soils, clouds).

White noise filtered with a Gaussian in the Fourier domain: the same periodic correlation
as a wrapped Gaussian convolution, at a cost independent of the correlation length.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import fourier_gaussian


def gaussian_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-variance field with a Gaussian correlation length of ``sigma_px``."""
    white = rng.standard_normal(shape)
    spectrum = fourier_gaussian(np.fft.rfft2(white), sigma_px, n=shape[1])
    f = np.fft.irfft2(spectrum, s=shape)
    f -= f.mean()
    sd = f.std()
    return (f / sd if sd > 0 else f).astype(np.float32)


def multiscale_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    sigmas: tuple[float, ...],
    weights: tuple[float, ...],
) -> np.ndarray:
    """Sum of fields at several scales (cloud tops, soil maps): large forms with ragged edges."""
    total = sum(w * gaussian_field(rng, shape, s) for s, w in zip(sigmas, weights, strict=True))
    total -= total.mean()
    return (total / total.std()).astype(np.float32)
