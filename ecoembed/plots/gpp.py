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
NOT_BASELINES = ("fused", "fused_interp", "oracle")


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


def sets_in_order(names) -> list[str]:
    """Input sets as they come, those without the tower's meteorology first."""
    names = list(dict.fromkeys(names))
    return [n for n in names if not n.endswith(MET_SUFFIX)] + [
        n for n in names if n.endswith(MET_SUFFIX)
    ]


def plot_gpp_skill(summary: pd.DataFrame, differences: pd.DataFrame) -> plt.Figure:
    """Pooled R² and RMSE per input set with their bootstrap intervals, one bar per
    cross-validation, one column per model; below, the paired R² difference of ``fused``
    (and ``fused+met``) against every other set, with its interval."""
    models = list(dict.fromkeys(summary["model"]))
    splits = list(dict.fromkeys(summary["split"]))
    sets = sets_in_order(summary["input_set"])
    fig, axes = plt.subplots(
        3,
        len(models),
        figsize=(6.5 * len(models), 9.5),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"height_ratios": [1, 1, 1.1]},
    )
    x = np.arange(len(sets))
    width = 0.8 / len(splits)
    for c, model in enumerate(models):
        for r, (metric, label) in enumerate(
            (("r2", "R² (unitless)"), ("rmse", f"RMSE ({GPP_UNITS})"))
        ):
            ax = axes[r, c]
            for k, split in enumerate(splits):
                rows = summary[(summary["model"] == model) & (summary["split"] == split)]
                rows = rows.set_index("input_set").reindex(sets)
                values = rows[metric].to_numpy(float)
                err = np.abs(
                    np.stack([values - rows[f"{metric}_lo"], rows[f"{metric}_hi"] - values])
                )
                ax.bar(
                    x + (k - (len(splits) - 1) / 2) * width,
                    values,
                    width,
                    yerr=err,
                    capsize=1.5,
                    error_kw={"lw": 0.8, "ecolor": "0.2"},
                    color=categorical(k),
                    label=split.upper(),
                )
            ax.set_ylabel(label)
            ax.grid(axis="y", lw=0.4, alpha=0.6)
            ax.set_xticks(x, sets if r == 1 else [], rotation=45, ha="right")
            if r == 0:
                ax.set_title(model)
                low = np.nanmin(summary[["r2", "r2_lo"]].to_numpy(float))
                ax.set_ylim(min(0.0, float(low) - 0.05), 1.0)
        _plot_differences(axes[2, c], differences[differences["model"] == model], splits)
    # below the panels, not over the bars (R² near 1 reaches the top of the axes)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles, labels, title="cross-validation", loc="outside lower center", ncols=len(splits)
    )
    fig.suptitle(
        "GPP skill per input set, all towers pooled "
        "(error bars: bootstrap intervals over towers and blocks of days)"
    )
    return fig


def _plot_differences(ax: plt.Axes, differences: pd.DataFrame, splits: list[str]) -> None:
    """Paired R² differences (set minus other) with intervals, one row per pair."""
    pairs = list(dict.fromkeys(zip(differences["input_set"], differences["other"], strict=True)))
    y = np.arange(len(pairs))[::-1]
    height = 0.8 / len(splits)
    for k, split in enumerate(splits):
        rows = differences[differences["split"] == split].set_index(["input_set", "other"])
        rows = rows.reindex(pairs)
        d = rows["r2_diff"].to_numpy(float)
        err = np.abs(np.stack([d - rows["r2_diff_lo"], rows["r2_diff_hi"] - d]))
        ax.errorbar(
            d,
            y + ((len(splits) - 1) / 2 - k) * height,
            xerr=err,
            fmt="o",
            ms=3,
            lw=1,
            capsize=2,
            color=categorical(k),
        )
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{a} − {b}" for a, b in pairs], fontsize=7)
    ax.set_xlabel("paired difference of R² (unitless; right of 0: the first set is better)")
    ax.grid(axis="x", lw=0.4, alpha=0.6)


DECOMPOSITION_PARTS = {
    "across_site": "across sites (tower means)",
    "seasonal": "mean seasonal cycle",
    "anomaly": "anomalies from it",
}


def plot_gpp_decomposition(decomposition: pd.DataFrame, model: str, split: str) -> plt.Figure:
    """R² of the three parts of the skill per input set (left) and per IGBP class (right)."""
    table = decomposition[(decomposition["model"] == model) & (decomposition["split"] == split)]
    if table.empty:
        raise ValueError(f"decomposition holds no rows for model {model!r}, split {split!r}")
    sets = sets_in_order(table["input_set"])
    x = np.arange(len(sets))
    fig, axes = plt.subplots(
        2, 1, figsize=(max(7.0, 0.55 * len(sets) + 2), 7.5), sharex=True, layout="constrained"
    )
    groups = [
        (axes[0], "part", list(DECOMPOSITION_PARTS), DECOMPOSITION_PARTS, "part of the skill"),
    ]
    igbp = table[table["part"] == "igbp"]
    classes = sorted(set(igbp["igbp"]))
    groups.append((axes[1], "igbp", classes, {c: c for c in classes}, "IGBP class"))
    low = 0.0
    for ax, column, keys, labels, title in groups:
        rows = table[table["part"] != "igbp"] if column == "part" else igbp
        width = 0.8 / max(len(keys), 1)
        for k, key in enumerate(keys):
            values = rows[rows[column] == key].set_index("input_set").reindex(sets)["r2"]
            low = min(low, float(np.nanmin(values.to_numpy(float), initial=0.0)))
            ax.bar(
                x + (k - (len(keys) - 1) / 2) * width,
                values,
                width,
                color=categorical(k),
                label=labels[key],
            )
        ax.set_ylabel("R² (unitless)")
        ax.grid(axis="y", lw=0.4, alpha=0.6)
        ax.legend(title=title, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for ax in axes:
        ax.set_ylim(max(low - 0.05, -1.0), 1.0)
    axes[1].set_xticks(x, sets, rotation=45, ha="right")
    axes[1].set_xlabel("input set")
    fig.suptitle(f"{model}, {split.upper()}: where the GPP skill comes from")
    return fig
