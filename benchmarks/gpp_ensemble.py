"""How many temporal-net members the GPP evaluation needs, and what each one costs.

The members of ``gpp.temporal_net`` start from different random weights and their
predictions are averaged. A finite ensemble leaves part of that randomness in the
prediction: with member variance s² (per held-out day, between members), an ensemble of M
adds s²/M to the expected squared error, i.e. costs s²/M / Var(observed) of R² against an
infinite ensemble, and moves a set's R² from one seed to the next by about as much. This
is measured without the held-out towers' GPP (only the spread of the members'
predictions), so choosing M from it never looks at a test fold's score.

Reads a finished run's ``results/gpp/inputs.parquet``, fits the temporal net with
``--members`` members on every leave-one-site-out fold of the chosen input sets (one
thread, as rule ``gpp_cv`` runs it) and reports, per set, the members' spread, the R² cost
of an ensemble of 1, 3, 5, 10 and 20, and the fit time per member.

    .venv/bin/python benchmarks/gpp_ensemble.py                       # results/ of this repo
    .venv/bin/python benchmarks/gpp_ensemble.py --run /path/to/run --sets fused,s2 --members 10
    .venv/bin/python benchmarks/gpp_ensemble.py --run /path/to/run --publish  # docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ecoembed.config import load_config
from ecoembed.gpp.evaluate import build_series, loso_folds
from ecoembed.gpp.inputs import add_met_sets, split_inputs_table
from ecoembed.gpp.models import TemporalConfig, TemporalModel

REPO = Path(__file__).resolve().parents[1]
SIZES = (1, 3, 5, 10, 20)


def member_spread(series: dict, config: TemporalConfig, seed: int) -> tuple[float, float, float]:
    """Mean between-member variance of the held-out predictions, variance of the observed
    GPP (pooled over folds), and seconds per fit per member."""
    var, obs, seconds = [], [], 0.0
    for i, fold in enumerate(loso_folds(series)):
        train = fold.training_series(series)
        start = time.perf_counter()
        model = TemporalModel(config, seed + i).fit(train)
        seconds += time.perf_counter() - start
        test = series[fold.name]
        var.append(model.member_predictions(test).var(axis=0, ddof=1))
        obs.append(test.gpp[test.target])
    n_fits = len(var) * config.members
    return float(np.concatenate(var).mean()), float(np.concatenate(obs).var()), seconds / n_fits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=str(REPO), help="workflow directory with results/gpp/")
    ap.add_argument("--configfile", default=str(REPO / "config.yaml"))
    ap.add_argument("--sets", default="fused,s2,s1,nirv_lue,fused+met,s2+met")
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument(
        "--publish", action="store_true", help="the table into docs/benchmarks.md (record.py)"
    )
    args = ap.parse_args()
    if args.members < 2:
        ap.error("--members must be at least 2 to measure a spread")

    torch.set_num_threads(1)
    gpp = load_config(args.configfile)["gpp"]
    config = TemporalConfig(**{**gpp["temporal_net"], "members": args.members})
    base, flux = split_inputs_table(pd.read_parquet(Path(args.run) / "results/gpp/inputs.parquet"))
    wanted = args.sets.split(",")
    sets = {k: v for k, v in add_met_sets(base, flux).items() if k in wanted}
    if missing := sorted(set(wanted) - set(sets)):
        ap.error(f"no input set(s) {missing} in {args.run}")
    series = build_series(
        sets,
        {site: f["GPP"] for site, f in flux.items()},
        window_days=int(gpp["window_days"]),
        lead_days=int(gpp["lead_days"]),
    )
    rows = []
    for name in wanted:
        var, obs_var, per_member = member_spread(series[name], config, args.seed)
        row = {"input_set": name, "member sd (gC m-2 d-1)": np.sqrt(var)}
        row |= {f"R2 cost M={m}": var / m / obs_var for m in SIZES}
        row["s per member fit"] = per_member
        rows.append(row)
        print(
            f"{name}: member sd {np.sqrt(var):.3f}, {per_member:.2f} s per member fit", flush=True
        )
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f"))
    if args.publish:
        publish_table(rows, args.members)
    return 0


def publish_table(rows: list[dict], members: int) -> None:
    from record import publish

    table = pd.DataFrame(
        [
            {
                "input set": f"`{r['input_set']}`",
                "member sd (gC m⁻² d⁻¹)": f"{r['member sd (gC m-2 d-1)']:.2f}",
                **{f"R² cost, M={m}": f"{r[f'R2 cost M={m}']:.3f}" for m in SIZES},
                "s per member and fit": f"{r['s per member fit']:.2f}",
            }
            for r in rows
        ]
    )
    notes = [
        f"{members} members on every leave-one-site-out fold, one thread as in rule `gpp_cv`; "
        "the spread is that of the members' predictions on the held-out tower (measured "
        "without its GPP); R² cost of M members = member variance / M / variance of the "
        "observed GPP, what an ensemble of M loses against an infinite one."
    ]
    publish("gpp_ensemble", table, notes)


if __name__ == "__main__":
    raise SystemExit(main())
