"""Which Sentinel-2 pixel-dates are clear views, from the scene classification (SCL)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import binary_dilation


def disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return yy**2 + xx**2 <= radius**2


def s2_valid_mask(
    scl: np.ndarray,
    *,
    valid_classes: Sequence[int],
    dilate_classes: Sequence[int],
    dilation_px: int,
) -> np.ndarray:
    """Clear where SCL says a valid surface class and no dilated cloud/shadow is near.

    Sen2Cor misses the thin edges of clouds and shadows; growing the flagged areas by
    ``dilation_px`` catches most of them at the cost of some clear pixels. ``scl`` may carry
    a halo around the window of interest, so the dilation is right at window edges.
    """
    valid = np.isin(scl, valid_classes)
    if dilation_px > 0 and len(dilate_classes):
        flagged = np.isin(scl, dilate_classes)
        if flagged.any():
            valid &= ~binary_dilation(flagged, structure=disk(dilation_px))
    return valid
