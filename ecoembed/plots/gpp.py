"""GPP figures from the evaluation's predictions and metrics: time series at the towers,
predicted against observed, and skill per input set and cross-validation."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ecoembed.io.names import MET_SUFFIX
from ecoembed.plots.style import OBSERVED_COLOUR, categorical, input_set_colour

GPP_UNITS = "gC m$^{-2}$ d$^{-1}$"
FUSED = "fused"
NOT_BASELINES = ("fused", "oracle")


def pooled(metrics: pd.DataFrame, model: str, split: str) -> pd.DataFrame:
    """The pooled rows of one model and split, indexed by input set."""
    rows = metrics[
        (metrics["site"] == "pooled") & (metrics["model"] == model) & (metrics["split"] == split)
    ]
    if rows.empty:
        raise ValueError(f"metrics hold no pooled rows for model {model!r}, split {split!r}")
    return rows.set_index("input_set")


def with_met_suffix(name: str, met: bool) -> str:
    """The input set's name with the meteorology suffix (``fused+met``) when ``met``."""
    return name + MET_SUFFIX if met else name


def best_baseline(metrics: pd.DataFrame, model: str, split: str, met: bool) -> str:
    """The remote-sensing baseline (neither fused nor the oracle) with the highest pooled
    R², among the sets with (or without) the tower's meteorology."""
    table = pooled(metrics, model, split)
    names = [
        s
        for s in table.index
        if s.endswith(MET_SUFFIX) == met and s.split("+")[0] not in NOT_BASELINES
    ]
    if not names:
        raise ValueError("metrics hold no baseline input set to compare fused with")
    return str(table.loc[names, "r2"].idxmax())


def _subset(pred: pd.DataFrame, model: str, split: str, input_set: str) -> pd.DataFrame:
    return pred[
        (pred["model"] == model) & (pred["split"] == split) & (pred["input_set"] == input_set)
    ]


def plot_gpp_timeseries(
    predictions: pd.DataFrame,
    metrics: pd.DataFrame,
    model: str,
    split: str = "loso",
    met: bool = True,
) -> plt.Figure:
    """Observed and predicted daily GPP at every tower: fused against the best baseline."""
    fused = with_met_suffix(FUSED, met)
    baseline = best_baseline(metrics, model, split, met)
    per_site = metrics[(metrics["model"] == model) & (metrics["split"] == split)]
    sites = sorted(predictions["site"].unique())
    ncols = 2 if len(sites) > 1 else 1
    nrows = int(np.ceil(len(sites) / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(12, 1.9 * nrows + 0.8),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    shown = {name: _subset(predictions, model, split, name) for name in (fused, baseline)}
    for ax, site in zip(axes.flat, sites, strict=False):
        obs = _daily(shown[fused][shown[fused]["site"] == site])
        ax.plot(obs["date"], obs["observed"], ".", ms=2, color=OBSERVED_COLOUR, label="observed")
        scores = []
        for name, df in shown.items():
            mine = _daily(df[df["site"] == site])
            ax.plot(
                mine["date"],
                mine["predicted"],
                lw=1,
                color=input_set_colour(name),
                label=f"predicted, {name}",
            )
            r2 = per_site[(per_site["input_set"] == name) & (per_site["site"] == site)]["r2"]
            scores.append(f"{name} {r2.iloc[0]:.2f}" if len(r2) else name)
        ax.set_title(f"{site}   R²: " + ", ".join(scores), fontsize=9)
        ax.set_ylabel(f"GPP ({GPP_UNITS})")
    for ax in axes.flat[len(sites) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, markerscale=4)
    fig.suptitle(f"{model}, {split.upper()} cross-validation: fused vs the best baseline")
    return fig


def _daily(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per calendar day (NaN where no prediction), so lines break at data gaps."""
    if rows.empty:
        return rows
    days = pd.date_range(rows["date"].min(), rows["date"].max(), freq="D")
    return rows.set_index("date").reindex(days).rename_axis("date").reset_index()


def plot_gpp_scatter(
    predictions: pd.DataFrame, metrics: pd.DataFrame, model: str, split: str = "loso"
) -> plt.Figure:
    """Predicted against observed GPP, all towers pooled: one panel per input set (columns),
    without and with the tower's meteorology (rows)."""
    table = pooled(metrics, model, split)
    base = list(dict.fromkeys(s.split("+")[0] for s in table.index))
    rows = [m for m in (False, True) if any(with_met_suffix(b, m) in table.index for b in base)]
    sub = predictions[(predictions["model"] == model) & (predictions["split"] == split)]
    top = float(np.nanpercentile(sub[["observed", "predicted"]].to_numpy(), 99.9)) * 1.05
    fig, axes = plt.subplots(
        len(rows),
        len(base),
        figsize=(2.3 * len(base) + 1, 2.4 * len(rows) + 0.6),
        sharex=True,
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for r, met in enumerate(rows):
        for c, b in enumerate(base):
            ax, name = axes[r, c], with_met_suffix(b, met)
            df = sub[sub["input_set"] == name]
            if df.empty:
                ax.set_visible(False)
                continue
            hb = ax.hexbin(
                df["observed"],
                df["predicted"],
                gridsize=35,
                mincnt=1,
                bins="log",
                cmap="viridis",
                extent=(0, top, 0, top),
            )
            ax.plot([0, top], [0, top], color="black", lw=0.8, ls="--")
            s = table.loc[name]
            ax.text(
                0.04,
                0.96,
                f"R² {s['r2']:.3f}\nRMSE {s['rmse']:.2f}",
                transform=ax.transAxes,
                va="top",
                fontsize=8,
            )
            ax.set_title(name)
            ax.set_aspect("equal")
            if r == len(rows) - 1:
                ax.set_xlabel(f"observed ({GPP_UNITS})")
            if c == 0:
                ax.set_ylabel(f"predicted ({GPP_UNITS})")
    fig.colorbar(hb, ax=axes, shrink=0.6, label="tower-days per cell")
    fig.suptitle(f"{model}, {split.upper()} cross-validation, all towers pooled (dashed: 1:1)")
    return fig


def plot_gpp_skill(metrics: pd.DataFrame) -> plt.Figure:
    """Pooled R² and RMSE per input set, one bar per cross-validation, one column per model."""
    table = metrics[metrics["site"] == "pooled"]
    models = list(dict.fromkeys(table["model"]))
    splits = list(dict.fromkeys(table["split"]))
    sets = list(dict.fromkeys(table["input_set"]))
    fig, axes = plt.subplots(
        2,
        len(models),
        figsize=(6.5 * len(models), 6.5),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    x = np.arange(len(sets))
    width = 0.8 / len(splits)
    for c, model in enumerate(models):
        for r, (metric, label) in enumerate(
            (("r2", "R² (unitless)"), ("rmse", f"RMSE ({GPP_UNITS})"))
        ):
            ax = axes[r, c]
            for k, split in enumerate(splits):
                rows = table[(table["model"] == model) & (table["split"] == split)]
                values = rows.set_index("input_set").reindex(sets)[metric]
                ax.bar(
                    x + (k - (len(splits) - 1) / 2) * width,
                    values,
                    width,
                    color=categorical(k),
                    label=split.upper(),
                )
            ax.set_ylabel(label)
            ax.grid(axis="y", lw=0.4, alpha=0.6)
            if r == 0:
                ax.set_title(model)
                ax.set_ylim(min(0.0, float(table["r2"].min()) - 0.05), 1.0)
            else:
                ax.set_xticks(x, sets, rotation=45, ha="right")
                ax.set_xlabel("input set")
    # below the panels, not over the bars (R² near 1 reaches the top of the axes)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles, labels, title="cross-validation", loc="outside lower center", ncols=len(splits)
    )
    fig.suptitle("GPP skill per input set, all towers pooled")
    return fig
