"""Shared look of every figure: a colour-blind-safe palette, sizes legible in the report,
true-colour and false-colour composites, and atomic PNG writing."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (cluster nodes have no display)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ecoembed.io.atomic import atomic_path  # noqa: E402

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
CYCLE = [OKABE_ITO[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky_blue")]
# One colour per sensor (its curves, its encoder's input set), the same in every figure.
SENSOR_COLOURS = {"s2": OKABE_ITO["green"], "s1": OKABE_ITO["orange"]}
# One colour per GPP input set, the same in every figure.
INPUT_SET_COLOURS = {
    "fused": OKABE_ITO["blue"],
    "fused_interp": OKABE_ITO["sky_blue"],
    **SENSOR_COLOURS,
    "s2_bands": OKABE_ITO["vermillion"],
    "nirv_lue": OKABE_ITO["purple"],
    "oracle": OKABE_ITO["black"],
}
OBSERVED_COLOUR = "#7f7f7f"
DPI = 150
# Reflectance that maps to full brightness in true-colour composites: a fixed stretch, so
# panels of the same scene (observed, reconstructed, truth) are directly comparable.
TRUE_COLOUR_WHITE = 0.16

plt.rcParams.update(
    {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "legend.fontsize": 8,
        "axes.prop_cycle": matplotlib.cycler(color=CYCLE),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "figure.dpi": DPI,
    }
)


def categorical(i: int) -> str:
    """The i-th of the eight Okabe-Ito colours (black last), cycling."""
    order = ("blue", "orange", "green", "vermillion", "purple", "sky_blue", "yellow", "black")
    return OKABE_ITO[order[i % len(order)]]


def input_set_colour(input_set: str) -> str:
    """The colour of an input set, with or without the ``+met`` suffix."""
    return INPUT_SET_COLOURS.get(input_set.split("+")[0], OKABE_ITO["black"])


def true_colour(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> np.ndarray:
    """(y, x, 3) RGB in 0..1 from reflectances, gamma 1/1.4 to lift the dark vegetation."""
    rgb = np.stack([red, green, blue], axis=-1) / TRUE_COLOUR_WHITE
    return np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0) ** (1 / 1.4)


def stretch(channels: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Each channel (last axis) to 0..1 between its own percentiles (NaN becomes 0)."""
    out = np.empty(channels.shape, np.float32)
    for c in range(channels.shape[-1]):
        v = channels[..., c]
        lo, hi = np.nanpercentile(v, [low, high])
        out[..., c] = (v - lo) / max(hi - lo, 1e-12)
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


def image_axes(ax: plt.Axes, title: str) -> None:
    """An image panel: title, no ticks (the scale bar says the size)."""
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("left", "bottom", "top", "right"):
        ax.spines[side].set_visible(False)


def scale_bar(ax: plt.Axes, pixel_m: float, width_px: int) -> None:
    """A white bar of a round length in the lower left of an image panel."""
    length_m = _round_length(0.25 * width_px * pixel_m)
    n = length_m / pixel_m
    x0, y0 = 0.05 * width_px, 0.93 * width_px
    ax.plot([x0, x0 + n], [y0, y0], color="white", lw=3, solid_capstyle="butt")
    ax.plot([x0, x0 + n], [y0, y0], color="black", lw=1, solid_capstyle="butt")
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    ax.text(x0, y0 - 0.03 * width_px, label, color="white", fontsize=8, va="bottom")


def _round_length(m: float) -> float:
    base = 10 ** np.floor(np.log10(m))
    return float(max(b * base for b in (1, 2, 5) if b * base <= m))


def save_png(fig: plt.Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as PNG atomically (no half-written figure on a crash) and close it."""
    with atomic_path(path, replace="any") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
