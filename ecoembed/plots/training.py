"""Training curves of both stages: per-sensor masked pretraining and the fusion."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ecoembed.io.sensors import SENSOR_NAMES
from ecoembed.plots.style import OKABE_ITO, SENSOR_COLOURS


def plot_training_curves(pretrain: dict[str, pd.DataFrame], fusion: pd.DataFrame) -> plt.Figure:
    """Stage 1 per sensor (training and held-out loss), stage 2 (training loss, the
    held-out S2 error on days whose view was hidden and, where logged, how much of each
    sensor's frozen code a linear probe recovers from the fused embedding)."""
    has_codes = {f"heldout_{s}_code_r2" for s in SENSOR_NAMES} <= set(fusion.columns)
    ncols = 4 if has_codes else 3
    fig, axes = plt.subplots(1, ncols, figsize=(4 * ncols, 3.6), layout="constrained")
    ax = axes[0]
    for sensor, curve in pretrain.items():
        colour = SENSOR_COLOURS.get(sensor, OKABE_ITO["black"])
        ax.plot(
            curve["epoch"],
            curve["train_loss"],
            "-o",
            ms=3,
            color=colour,
            label=f"{sensor} training",
        )
        ax.plot(
            curve["epoch"],
            curve["heldout_loss"],
            "--s",
            ms=3,
            color=colour,
            label=f"{sensor} held out",
        )
    ax.set_title("stage 1: masked pretraining per sensor")
    ax.set_ylabel("masked reconstruction loss (MSE, sd$^2$)")
    ax.set_yscale("log")
    ax.legend()
    ax = axes[1]
    ax.plot(fusion["epoch"], fusion["train_loss"], "-o", ms=3, color=OKABE_ITO["blue"])
    ax.set_title("stage 2: fusion, training loss")
    ax.set_ylabel("loss (reconstruction + consistency)")
    ax.set_yscale("log")
    ax = axes[2]
    ax.plot(
        fusion["epoch"],
        fusion["heldout_s2_rmse_hidden"],
        "-o",
        ms=3,
        color=OKABE_ITO["blue"],
        label="S2 RMSE, day hidden",
    )
    if "heldout_embedding_gap" in fusion:
        ax.plot(
            fusion["epoch"],
            fusion["heldout_embedding_gap"],
            "--s",
            ms=3,
            color=OKABE_ITO["vermillion"],
            label="embedding gap, hidden vs seen",
        )
    ax.set_title("stage 2: held-out tiles")
    ax.set_ylabel("RMS (standard deviations)")
    ax.legend()
    if has_codes:
        ax = axes[3]
        for sensor in SENSOR_NAMES:
            ax.plot(
                fusion["epoch"],
                fusion[f"heldout_{sensor}_code_r2"],
                "-o",
                ms=3,
                color=SENSOR_COLOURS[sensor],
                label=f"{sensor.upper()} code",
            )
        ax.set_title("stage 2: sensor codes kept (held out)")
        ax.set_ylabel("R$^2$ of a linear probe from the embedding (-)")
        ax.set_ylim(top=1.0)
        ax.legend()
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(lw=0.4, alpha=0.6)
    return fig
