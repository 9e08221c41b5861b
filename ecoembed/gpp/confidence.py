"""How sure the GPP comparison is: bootstrap intervals of pooled skill and of differences.

Ten towers and one training run leave a pooled R² with a wide margin of chance. The
bootstrap here resamples what is random in the comparison:

* the **towers** (drawn with replacement: a tower stands for the sites one could have
  measured, so most of the uncertainty of a pooled R² is across sites);
* **blocks of days** within each drawn tower (``block_days`` consecutive calendar days,
  drawn with replacement as many times as the tower has blocks), so that autocorrelated
  days are not counted as independent evidence.

Every input set of one model and split is scored on the same resamples (its rows are the
same tower-days: ``ecoembed.gpp.evaluate`` scores every set on the days all sets share),
so the difference of two sets has its own, paired, interval, much narrower than the two
sets' intervals would suggest. A replicate is a weight (how often each tower-day was
drawn) on every row; weighted R² and RMSE of all sets follow from two matrix products.
Intervals are percentile intervals at ``level``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecoembed.io.names import MET_SUFFIX
from ecoembed.io.rng import stream

log = logging.getLogger(__name__)

REFERENCE = "fused"  # the set every other one is compared with (with and without +met)


@dataclass(frozen=True)
class BootstrapConfig:
    replicates: int = 1000
    block_days: int = 30
    level: float = 0.95


@dataclass(frozen=True)
class AlignedPredictions:
    """One model and split: the tower-days every set predicted, one column per set."""

    sites: np.ndarray  # (N,) tower of each row
    dates: np.ndarray  # (N,) datetime64[D]
    observed: np.ndarray  # (N,)
    predicted: np.ndarray  # (N, S)
    input_sets: list[str]


def align(predictions: pd.DataFrame) -> AlignedPredictions:
    """The predictions of one model and split as rows = tower-days, columns = input sets
    (tower-days that a set lacks are dropped, and that is logged)."""
    wide = predictions.pivot_table(
        index=["site", "date"], columns="input_set", values="predicted", observed=True
    )
    obs = predictions.groupby(["site", "date"], observed=True)["observed"].agg(["min", "max"])
    if not np.allclose(obs["min"], obs["max"], equal_nan=True):
        raise ValueError("input sets disagree on the observed GPP of a tower-day")
    complete = wide.notna().all(axis=1)
    if not complete.all():
        log.warning(
            "%d tower-days lack a prediction of some input set: left out", (~complete).sum()
        )
    wide = wide[complete]
    sets = [s for s in dict.fromkeys(predictions["input_set"]) if s in wide.columns]
    sites = wide.index.get_level_values("site").to_numpy().astype(str)
    dates = pd.DatetimeIndex(wide.index.get_level_values("date")).to_numpy().astype("<M8[D]")
    return AlignedPredictions(
        sites, dates, obs.loc[wide.index, "min"].to_numpy(float), wide[sets].to_numpy(float), sets
    )


def block_ids(sites: np.ndarray, dates: np.ndarray, block_days: int) -> np.ndarray:
    """Row -> block (tower, ``block_days`` calendar days from the tower's first day)."""
    out = np.empty(sites.size, np.int64)
    next_id = 0
    for site in dict.fromkeys(sites):
        rows = sites == site
        offset = (dates[rows] - dates[rows].min()).astype(int) // block_days
        _, local = np.unique(offset, return_inverse=True)
        out[rows] = next_id + local
        next_id += int(local.max()) + 1
    return out


def resample_weights(
    sites: np.ndarray, dates: np.ndarray, config: BootstrapConfig, rng: np.random.Generator
) -> np.ndarray:
    """(replicates, N) how often each row is drawn: towers with replacement, then blocks
    of days within each drawn tower with replacement (see module doc)."""
    blocks = block_ids(sites, dates, config.block_days)
    towers = list(dict.fromkeys(sites))
    tower_of_block = np.array([sites[blocks == b][0] for b in range(blocks.max() + 1)])
    draws = rng.multinomial(len(towers), np.full(len(towers), 1 / len(towers)), config.replicates)
    counts = np.zeros((config.replicates, tower_of_block.size))
    for t, tower in enumerate(towers):
        mine = np.flatnonzero(tower_of_block == tower)
        # k draws of a tower, each drawing its n blocks: multinomial(k n, uniform)
        counts[:, mine] = rng.multinomial(
            draws[:, t] * mine.size, np.full(mine.size, 1 / mine.size)
        )
    return counts[:, blocks]


def weighted_skill(
    weights: np.ndarray, observed: np.ndarray, predicted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """R² and RMSE (replicates, S) of every set under every row weighting."""
    total = weights.sum(axis=1, keepdims=True)
    mean = weights @ observed[:, None] / total
    ss = weights @ (observed**2)[:, None] - total * mean**2
    sse = weights @ (predicted - observed[:, None]) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - sse / ss, np.sqrt(sse / total)


def _interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - level) / 2 * 100
    return np.nanpercentile(samples, tail, axis=0), np.nanpercentile(samples, 100 - tail, axis=0)


def reference_pairs(input_sets: list[str]) -> list[tuple[str, str]]:
    """(``fused``, other) and (``fused+met``, other+met) for every other set present."""
    pairs = []
    for ref in (REFERENCE, REFERENCE + MET_SUFFIX):
        if ref not in input_sets:
            continue
        met = ref.endswith(MET_SUFFIX)
        pairs += [(ref, s) for s in input_sets if s != ref and s.endswith(MET_SUFFIX) == met]
    return pairs


def bootstrap_tables(
    predictions: pd.DataFrame, config: BootstrapConfig, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (input set, model, split): point R² and RMSE with intervals; and per pair of
    :func:`reference_pairs`: the difference (set minus other) with its paired interval."""
    intervals, differences = [], []
    for (model, split), group in predictions.groupby(["model", "split"], sort=False):
        a = align(group)
        rng = stream(seed, "gpp-bootstrap", str(split))  # the same resamples for every model
        weights = resample_weights(a.sites, a.dates, config, rng)
        r2_b, rmse_b = weighted_skill(weights, a.observed, a.predicted)
        r2, rmse = (
            v[0] for v in weighted_skill(np.ones((1, a.sites.size)), a.observed, a.predicted)
        )
        r2_lo, r2_hi = _interval(r2_b, config.level)
        rmse_lo, rmse_hi = _interval(rmse_b, config.level)
        key = {"model": model, "split": split}
        for j, name in enumerate(a.input_sets):
            intervals.append(
                {
                    "input_set": name,
                    **key,
                    "r2": r2[j],
                    "r2_lo": r2_lo[j],
                    "r2_hi": r2_hi[j],
                    "rmse": rmse[j],
                    "rmse_lo": rmse_lo[j],
                    "rmse_hi": rmse_hi[j],
                    "n_sites": len(set(a.sites)),
                }
            )
        col = {name: j for j, name in enumerate(a.input_sets)}
        for ref, other in reference_pairs(a.input_sets):
            i, j = col[ref], col[other]
            d_r2 = r2_b[:, i] - r2_b[:, j]
            d_rmse = rmse_b[:, i] - rmse_b[:, j]
            lo, hi = _interval(np.stack([d_r2, d_rmse], axis=1), config.level)
            differences.append(
                {
                    "input_set": ref,
                    "other": other,
                    **key,
                    "r2_diff": r2[i] - r2[j],
                    "r2_diff_lo": lo[0],
                    "r2_diff_hi": hi[0],
                    "rmse_diff": rmse[i] - rmse[j],
                    "rmse_diff_lo": lo[1],
                    "rmse_diff_hi": hi[1],
                    "share_better": float(np.nanmean(d_r2 > 0)),
                    "resolved": bool(lo[0] > 0 or hi[0] < 0),
                }
            )
    return pd.DataFrame(intervals), pd.DataFrame(differences, columns=DIFFERENCE_COLUMNS)


def seed_mean_differences(
    runs: Sequence[pd.DataFrame], config: BootstrapConfig, seed: int
) -> pd.DataFrame:
    """The paired differences of :func:`reference_pairs` for the mean over several training
    runs (seeds) of one world, with one interval for that mean.

    Every run's predictions are scored on the same resamples of towers and blocks of days,
    and each replicate's R² is averaged over the runs before the difference is taken: the
    interval is that of the seed-averaged difference on these towers, so that what one
    seed's interval leaves to chance (its training noise) is averaged out rather than
    required to vanish in every seed. Rows are the tower-days every run and set predicted.
    """
    rows = []
    frame = pd.concat([r.assign(run=k) for k, r in enumerate(runs)], ignore_index=True)
    for (model, split), group in frame.groupby(["model", "split"], sort=False):
        wide = group.pivot_table(
            index=["site", "date"], columns=["run", "input_set"], values="predicted", observed=True
        )
        sets = [
            s
            for s in dict.fromkeys(group["input_set"])
            if all((k, s) in wide.columns for k in range(len(runs)))
        ]
        wide = wide[[(k, s) for k in range(len(runs)) for s in sets]].dropna()
        obs = group.groupby(["site", "date"], observed=True)["observed"].agg(["min", "max"])
        if not np.allclose(obs["min"], obs["max"], equal_nan=True):
            raise ValueError("the runs disagree on the observed GPP of a tower-day")
        observed = obs.loc[wide.index, "min"].to_numpy(float)
        sites = wide.index.get_level_values("site").to_numpy().astype(str)
        dates = pd.DatetimeIndex(wide.index.get_level_values("date")).to_numpy().astype("<M8[D]")
        rng = stream(seed, "gpp-bootstrap-seeds", str(split))
        weights = np.vstack([np.ones((1, sites.size)), resample_weights(sites, dates, config, rng)])
        r2 = np.mean(
            [
                weighted_skill(weights, observed, wide[k].to_numpy(float))[0]
                for k in range(len(runs))
            ],
            axis=0,
        )  # (1 + replicates, S): the point (all rows once), then the replicates
        col = {name: j for j, name in enumerate(sets)}
        for ref, other in reference_pairs(sets):
            d = r2[:, col[ref]] - r2[:, col[other]]
            lo, hi = _interval(d[1:, None], config.level)
            rows.append(
                {
                    "input_set": ref,
                    "other": other,
                    "model": model,
                    "split": split,
                    "runs": len(runs),
                    "r2_diff": d[0],
                    "r2_diff_lo": lo[0],
                    "r2_diff_hi": hi[0],
                    "share_better": float(np.nanmean(d[1:] > 0)),
                    "resolved": bool(lo[0] > 0 or hi[0] < 0),
                }
            )
    return pd.DataFrame(rows)


DIFFERENCE_COLUMNS = [
    "input_set",
    "other",
    "model",
    "split",
    "r2_diff",
    "r2_diff_lo",
    "r2_diff_hi",
    "rmse_diff",
    "rmse_diff_lo",
    "rmse_diff_hi",
    "share_better",
    "resolved",
]


def config_from(section: Mapping) -> BootstrapConfig:
    """The config's ``gpp.bootstrap`` section as a :class:`BootstrapConfig`."""
    return BootstrapConfig(
        replicates=int(section["replicates"]),
        block_days=int(section["block_days"]),
        level=float(section["level"]),
    )
