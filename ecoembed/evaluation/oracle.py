"""The GPP evaluation's ``oracle`` input set, from the synthetic world's truth, and the
table of rule gpp_inputs that holds it beside the method's input sets.

The oracle's features are the truth's footprint LAI turned into fAPAR by the world's own
light-use model (``ecoembed.synth.state.fapar``), the truth's root-zone water and the
tower's class: knowledge of the world's physics that ``ecoembed.gpp`` must not import.
So this module builds them and hands ``ecoembed.gpp.inputs`` a function of the tower.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ecoembed.embed.sites import SitePixel
from ecoembed.gpp.inputs import base_input_sets, inputs_table, read_flux
from ecoembed.io.atomic import atomic_path
from ecoembed.io.zarrio import open_zarr
from ecoembed.synth.state import fapar


def oracle_features(truth: xr.Dataset, site: str, classes: list[str]) -> pd.DataFrame:
    """True footprint fAPAR and root-zone water, and the tower's class (one-hot)."""
    t = truth.sel(site=site)
    lai = t["site_lai"].values.astype(np.float64)
    df = pd.DataFrame(
        {"fapar": fapar(lai), "sm_root": t["site_sm_root"].values.astype(np.float64)},
        index=pd.DatetimeIndex(truth["day"].values).normalize(),
    )
    igbp = str(t["site_igbp"].values)
    for c in classes:
        df[f"igbp_{c}"] = float(igbp == c)
    return df


def truth_oracle(truths: Mapping[str, xr.Dataset]) -> Callable[[SitePixel], pd.DataFrame]:
    """The oracle's features of a tower, from the truth store of its tile (tile -> store);
    the one-hot classes are those of every tower of every tile, sorted."""
    classes = sorted(
        {str(v) for t in truths.values() for v in np.atleast_1d(t["site_igbp"].values)}
    )

    def features(site: SitePixel) -> pd.DataFrame:
        return oracle_features(truths[site.tile], site.site, classes)

    return features


def write_inputs_table(
    site_embeddings_path: str | Path,
    site_table_path: str | Path,
    cube_paths: Mapping[str, str | Path],
    truth_paths: Mapping[str, str | Path] | None,
    flux_paths: Mapping[str, str | Path],
    out_path: str | Path,
    *,
    names: list[str],
    partitioning: str,
    min_qc: float,
    radius_m: float,
    stride_px: int,
) -> pd.DataFrame:
    """Rule gpp_inputs: every input set's daily features and the flux data, one parquet
    (the ``oracle`` set only with the truth stores, tile -> path)."""
    flux = read_flux(flux_paths, partitioning=partitioning, min_qc=min_qc)
    cubes = {tile: open_zarr(p) for tile, p in cube_paths.items()}
    truths = {tile: open_zarr(p) for tile, p in truth_paths.items()} if truth_paths else None
    base = base_input_sets(
        pd.read_parquet(site_embeddings_path),
        pd.read_csv(site_table_path),
        cubes,
        flux,
        names=names,
        oracle=truth_oracle(truths) if truths is not None else None,
        radius_m=radius_m,
        stride_px=stride_px,
    )
    table = inputs_table(base, flux)
    table.attrs = {"partitioning": partitioning, "min_qc": str(min_qc)}
    with atomic_path(out_path, replace="any") as tmp:
        table.to_parquet(tmp, index=False)
    return table
