"""Cross-validated GPP prediction for every input set and model, and its metrics.

Splits: ``loso`` (leave one site out: train on the other towers, predict the held-out
one) and ``loyo`` (leave one year out: train on the other years of every tower, predict
the held-out year; only where the examples span two years or more; windows of the first
days of a training year read the previous year's inputs, never its GPP). Every input set is
scored on the same example days (the days every set has a complete window for), so the
sets' figures compare like with like.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ecoembed.gpp.confidence import BootstrapConfig, bootstrap_tables
from ecoembed.gpp.dataset import SiteSeries, common_targets, site_series
from ecoembed.gpp.decomposition import decompose
from ecoembed.gpp.inputs import add_met_sets, split_inputs_table
from ecoembed.gpp.models import make_model
from ecoembed.io.atomic import atomic_path
from ecoembed.io.fluxnet import read_site_table
from ecoembed.io.names import MET_SUFFIX
from ecoembed.io.rng import stream

log = logging.getLogger(__name__)

SPLITS = ("loso", "loyo")
PREDICTION_COLUMNS = [
    "site",
    "date",
    "input_set",
    "model",
    "split",
    "fold",
    "observed",
    "predicted",
]
METRIC_COLUMNS = ["input_set", "model", "split", "site", "r2", "rmse", "bias", "n"]


@dataclass(frozen=True)
class Fold:
    name: str
    train: dict[str, np.ndarray]  # site -> example days used for training
    test: dict[str, np.ndarray]  # site -> example days predicted

    def training_series(self, series: Mapping[str, SiteSeries]) -> list[SiteSeries]:
        """The series a model of this fold is fitted on (towers without a training day
        left out)."""
        return [series[site].restrict(keep) for site, keep in self.train.items() if keep.any()]


def _years(s: SiteSeries) -> np.ndarray:
    """Calendar year of each day (datetime64[Y] counts years from numpy's epoch, 1970)."""
    return s.dates.astype("datetime64[Y]").astype(int) + 1970


def loso_folds(series: Mapping[str, SiteSeries]) -> list[Fold]:
    folds = []
    for held in series:
        train = {site: s.target for site, s in series.items() if site != held}
        folds.append(Fold(held, train, {held: series[held].target}))
    return folds


def loyo_folds(series: Mapping[str, SiteSeries]) -> list[Fold]:
    years = sorted({int(y) for s in series.values() for y in _years(s)[s.target]})
    if len(years) < 2:
        log.warning("leave-one-year-out skipped: the examples span %d year(s)", len(years))
        return []
    folds = []
    for year in years:
        train = {site: s.target & (_years(s) != year) for site, s in series.items()}
        test = {site: s.target & (_years(s) == year) for site, s in series.items()}
        folds.append(Fold(str(year), train, test))
    return folds


FOLDS = {"loso": loso_folds, "loyo": loyo_folds}


def cross_validate(
    series: Mapping[str, SiteSeries],
    split: str,
    model: str,
    params: dict,
    seed: int,
) -> pd.DataFrame:
    """Out-of-fold predictions of one model on one input set."""
    frames = []
    for fold in FOLDS[split](series):
        train = fold.training_series(series)
        fold_seed = int(stream(seed, "gpp", model, split, fold.name).integers(2**31))
        fitted = make_model(model, params, fold_seed).fit(train)
        for site, keep in fold.test.items():
            test = series[site].restrict(keep)
            if not test.target.any():
                continue
            frames.append(
                pd.DataFrame(
                    {
                        "site": site,
                        "date": test.dates[test.target],
                        "fold": fold.name,
                        "observed": test.gpp[test.target],
                        "predicted": fitted.predict(test),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def scores(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """R^2 (1 - SSE / SS around the observed mean), RMSE, bias (mean predicted - observed)."""
    n = int(observed.size)
    err = predicted - observed
    ss = float(np.sum((observed - observed.mean()) ** 2)) if n else 0.0
    return {
        "r2": 1.0 - float(np.sum(err**2)) / ss if n > 1 and ss > 0 else np.nan,
        "rmse": float(np.sqrt(np.mean(err**2))) if n else np.nan,
        "bias": float(np.mean(err)) if n else np.nan,
        "n": n,
    }


def metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per input set, model and split: one row per site and one ``pooled`` row."""
    rows = []
    for (input_set, model, split), g in predictions.groupby(
        ["input_set", "model", "split"], sort=False, observed=True
    ):
        parts = [("pooled", g), *g.groupby("site", sort=True, observed=True)]
        for site, part in parts:
            s = scores(part["observed"].to_numpy(), part["predicted"].to_numpy())
            rows.append({"input_set": input_set, "model": model, "split": split, "site": site, **s})
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def build_series(
    input_sets: Mapping[str, Mapping[str, pd.DataFrame]],
    gpp: Mapping[str, pd.Series],
    *,
    window_days: int,
    lead_days: int,
) -> dict[str, dict[str, SiteSeries]]:
    """input set -> site -> series on one calendar per site, with the example days that
    every input set has (see module doc)."""
    out: dict[str, dict[str, SiteSeries]] = {name: {} for name in input_sets}
    sites = sorted(set.intersection(*(set(v) for v in input_sets.values())))
    for site in sites:
        frames = [input_sets[name][site] for name in input_sets]
        first = min(min(f.index.min() for f in frames), gpp[site].index.min())
        last = max(max(f.index.max() for f in frames), gpp[site].index.max())
        days = pd.date_range(first, last)
        per_set = {
            name: site_series(
                site,
                input_sets[name][site],
                gpp[site],
                window_days=window_days,
                lead_days=lead_days,
                days=days,
            )
            for name in input_sets
        }
        keep = common_targets(list(per_set.values()))
        for name, s in per_set.items():
            out[name][site] = s.restrict(keep)
    return out


def evaluate(
    series: Mapping[str, Mapping[str, SiteSeries]],
    *,
    models: Mapping[str, dict],
    splits: list[str],
    seed: int,
    progress: bool = True,
) -> pd.DataFrame:
    """Out-of-fold predictions of every (input set, model, split)."""
    jobs = [(name, model, split) for name in series for model in models for split in splits]
    frames = []
    for name, model, split in tqdm(jobs, desc="GPP cross-validation", disable=not progress):
        pred = cross_validate(series[name], split, model, models[model], seed)
        if pred.empty:
            continue
        pred.insert(2, "input_set", name)
        pred.insert(3, "model", model)
        pred.insert(4, "split", split)
        frames.append(pred)
    if not frames:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    return pd.concat(frames, ignore_index=True)[PREDICTION_COLUMNS]


def write_results(
    predictions: pd.DataFrame,
    table: pd.DataFrame,
    predictions_path: str | Path,
    metrics_path: str | Path,
    provenance: dict,
) -> None:
    """predictions.parquet (with the provenance in its metadata) and metrics.csv."""
    predictions = predictions.copy()
    predictions.attrs = {"provenance": json.dumps(provenance, sort_keys=True, default=str)}
    with atomic_path(predictions_path, replace="any") as tmp:
        predictions.to_parquet(tmp, index=False)
    with atomic_path(metrics_path, replace="any") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def cross_validate_input_set(
    table_path: str | Path,
    input_set: str,
    out_path: str | Path,
    *,
    window_days: int,
    lead_days: int,
    models: Mapping[str, dict],
    splits: list[str],
    seed: int,
    progress: bool = True,
) -> pd.DataFrame:
    """Rule gpp_cv: out-of-fold predictions of one input set (every model and split).

    Builds every set's series, so that the example days are those all sets share.
    """
    base, flux = split_inputs_table(pd.read_parquet(table_path))
    sets = add_met_sets(base, flux)
    if input_set not in sets:
        raise ValueError(f"{table_path}: no input set {input_set!r} (has {sorted(sets)})")
    gpp = {site: f["GPP"] for site, f in flux.items()}
    series = build_series(sets, gpp, window_days=window_days, lead_days=lead_days)
    n = {site: int(s.target.sum()) for site, s in series[input_set].items()}
    log.info("%s: %d examples at %d towers %s", input_set, sum(n.values()), len(n), n)
    pred = evaluate(
        {input_set: series[input_set]}, models=models, splits=splits, seed=seed, progress=progress
    )
    with atomic_path(out_path, replace="any") as tmp:
        pred.to_parquet(tmp, index=False)
    return pred


def collect(
    prediction_paths: list[str | Path],
    predictions_path: str | Path,
    metrics_path: str | Path,
    provenance: dict,
    summary_path: str | Path,
    differences_path: str | Path,
    decomposition_path: str | Path,
    *,
    igbp: Mapping[str, str],
    bootstrap: BootstrapConfig,
    seasonal_window_days: int,
    seed: int,
) -> pd.DataFrame:
    """Rule gpp_eval: all input sets' predictions in one table, their metrics, the pooled
    summary with bootstrap intervals (R² also as a fraction of the oracle's), the paired
    differences of ``fused`` against every other set, and the skill decomposition."""
    predictions = pd.concat([pd.read_parquet(p) for p in prediction_paths], ignore_index=True)
    table = metrics(predictions)
    write_results(predictions, table, predictions_path, metrics_path, provenance)
    intervals, differences = bootstrap_tables(predictions, bootstrap, seed)
    summary = pooled_summary(table).merge(
        intervals.drop(columns=["r2", "rmse"]), on=["input_set", "model", "split"], how="left"
    )
    columns = ["input_set", "model", "split", "r2", "r2_lo", "r2_hi", "rmse", "rmse_lo"]
    columns += ["rmse_hi", "bias", "n", "n_sites", "of_oracle"]
    decomposition = decompose(predictions, igbp, seasonal_window_days)
    for frame, path in (
        (summary[columns], summary_path),
        (differences, differences_path),
        (decomposition, decomposition_path),
    ):
        with atomic_path(path, replace="any") as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4g")
    return table


def site_classes(sites_path: str | Path) -> dict[str, str]:
    """Tower -> IGBP class from the site table (a required column; ``unknown`` if empty)."""
    df = read_site_table(sites_path)
    return {str(r.SITE_ID): str(r.IGBP) if pd.notna(r.IGBP) else "unknown" for r in df.itertuples()}


def pooled_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Pooled R^2 and RMSE per input set, model and split, with R^2 as a fraction of the
    oracle's (``oracle`` for sets without meteorology, ``oracle+met`` for those with).

    Where the oracle itself has no skill (R^2 <= 0, as on a world too small to learn
    from) the fraction is NaN: a ratio to a non-positive R^2 has no meaning.
    """
    pooled = table[table["site"] == "pooled"].copy()
    key = ["model", "split"]
    oracle = pooled[pooled["input_set"].isin(["oracle", f"oracle{MET_SUFFIX}"])]
    oracle = oracle[oracle["r2"] > 0]
    ref = {
        (r.model, r.split, r.input_set.endswith(MET_SUFFIX)): r.r2
        for r in oracle.itertuples(index=False)
    }
    pooled["of_oracle"] = [
        r.r2 / ref[(r.model, r.split, r.input_set.endswith(MET_SUFFIX))]
        if (r.model, r.split, r.input_set.endswith(MET_SUFFIX)) in ref
        else np.nan
        for r in pooled.itertuples(index=False)
    ]
    return pooled[["input_set", *key, "r2", "rmse", "bias", "n", "of_oracle"]].reset_index(
        drop=True
    )


# Days since the footprint's last clear S2 view: where fusion has to bridge cloud gaps.
# Each bin: its first day and its label; it ends where the next begins.
CLEAR_GAP_BINS = ((0, "0"), (1, "1-5"), (6, "6-10"), (11, "11-20"), (21, ">20"))


def days_since_clear(observed_fraction: pd.DataFrame, min_fraction: float = 0.5) -> pd.DataFrame:
    """Per site and date, days since the footprint was last seen clear (more than
    ``min_fraction`` of its weight); NaN before the first clear view.

    ``observed_fraction``: columns site, date, observed_fraction (one row per day, as in
    ``results/sites/site_embeddings.parquet`` for the source ``s2``).
    """
    frames = []
    for site, df in observed_fraction.sort_values("date").groupby("site", observed=True):
        dates = pd.DatetimeIndex(df["date"])
        clear_dates = pd.Series(dates.where(df["observed_fraction"].to_numpy() > min_fraction))
        last = clear_dates.ffill()
        frames.append(
            pd.DataFrame({"site": site, "date": dates, "days": (dates - last.values).days})
        )
    return pd.concat(frames, ignore_index=True)


def rmse_by_clear_gap(predictions: pd.DataFrame, gaps: pd.DataFrame) -> pd.DataFrame:
    """RMSE per input set (rows) and bin of days since the last clear view (columns), and
    the number of tower-days per bin (row ``n``); one model and split in ``predictions``."""
    df = predictions.merge(gaps, on=["site", "date"], how="inner")
    labels = [label for _, label in CLEAR_GAP_BINS]
    edges = [first - 0.5 for first, _ in CLEAR_GAP_BINS] + [np.inf]  # whole days
    df["bin"] = pd.cut(df["days"], edges, labels=labels).astype(object)
    df = df.dropna(subset=["bin"])
    err2 = (df["predicted"] - df["observed"]) ** 2
    table = np.sqrt(err2.groupby([df["input_set"], df["bin"]]).mean()).unstack("bin")
    first = df["input_set"].iloc[0] if len(df) else None
    counts = df[df["input_set"] == first].groupby("bin").size().rename("n")
    return pd.concat([counts.to_frame().T, table]).reindex(columns=labels)
