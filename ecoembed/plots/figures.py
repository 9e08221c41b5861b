"""The workflow's figures by name: read a figure's inputs, plot, write the PNG.

Each figure rule passes its named inputs and the config's ``figures`` section; the
functions here only open files and hand arrays and tables to the plotting functions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from ecoembed.io.names import FIGURE_NAMES
from ecoembed.io.sensors import SENSOR_NAMES
from ecoembed.io.zarrio import open_zarr
from ecoembed.plots.gpp import (
    plot_gpp_decomposition,
    plot_gpp_scatter,
    plot_gpp_skill,
    plot_gpp_timeseries,
)
from ecoembed.plots.scenes import plot_embedding_map, plot_reconstruction
from ecoembed.plots.series import plot_temporal_fidelity
from ecoembed.plots.style import save_png
from ecoembed.plots.training import plot_training_curves

log = logging.getLogger(__name__)

Inputs = Mapping[str, Any]
Params = Mapping[str, Any]


def _embedding_map(inputs: Inputs, params: Params) -> plt.Figure:
    return plot_embedding_map(
        open_zarr(inputs["cube"]), open_zarr(inputs["embeddings"]), params["date"]
    )


def _reconstruction(inputs: Inputs, params: Params) -> plt.Figure:
    return plot_reconstruction(
        open_zarr(inputs["cube"]),
        open_zarr(inputs["reconstruction"]),
        open_zarr(inputs["truth"]),
        params["date"],
    )


def _temporal_fidelity(inputs: Inputs, params: Params) -> plt.Figure:
    return plot_temporal_fidelity(
        open_zarr(inputs["cube"]),
        open_zarr(inputs["embeddings"]),
        open_zarr(inputs["reconstruction"]),
        open_zarr(inputs["truth"]),
    )


def _gpp_tables(inputs: Inputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(inputs["predictions"]), pd.read_csv(inputs["metrics"])


def _gpp_timeseries(inputs: Inputs, params: Params) -> plt.Figure:
    return plot_gpp_timeseries(
        *_gpp_tables(inputs),
        params["model"],
        params["split"],
        params["met"],
    )


def _gpp_scatter(inputs: Inputs, params: Params) -> plt.Figure:
    return plot_gpp_scatter(
        *_gpp_tables(inputs),
        params["model"],
        params["split"],
    )


def _gpp_skill(inputs: Inputs, params: Params) -> plt.Figure:
    return plot_gpp_skill(pd.read_csv(inputs["summary"]), pd.read_csv(inputs["differences"]))


def _gpp_decomposition(inputs: Inputs, params: Params) -> plt.Figure:
    return plot_gpp_decomposition(
        pd.read_csv(inputs["decomposition"], keep_default_na=False, na_values=[""]),
        params["model"],
        params["split"],
    )


def _training_curves(inputs: Inputs, params: Params) -> plt.Figure:
    pretrain = {s: pd.read_csv(inputs[f"pretrain_{s}"]) for s in SENSOR_NAMES}
    return plot_training_curves(pretrain, pd.read_csv(inputs["fusion"]))


FIGURES: dict[str, Callable[[Inputs, Params], plt.Figure]] = {
    "embedding_map": _embedding_map,
    "reconstruction": _reconstruction,
    "temporal_fidelity": _temporal_fidelity,
    "gpp_timeseries": _gpp_timeseries,
    "gpp_scatter": _gpp_scatter,
    "gpp_skill": _gpp_skill,
    "gpp_decomposition": _gpp_decomposition,
    "training_curves": _training_curves,
}


if set(FIGURES) != set(FIGURE_NAMES):  # the rules and this registry name the same figures
    raise ImportError(f"figure registry {sorted(FIGURES)} != FIGURE_NAMES {sorted(FIGURE_NAMES)}")


def make_figure(name: str, inputs: Inputs, params: Params, output: str | os.PathLike[str]) -> None:
    """Plot figure ``name`` from its inputs and write it to ``output`` (PNG, atomically)."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
    log.info("figure %s from %s", name, dict(inputs))
    save_png(FIGURES[name](inputs, params), output)
    log.info("wrote %s", output)
