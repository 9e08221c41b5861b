"""FLUXNET file names, GPP input-set names and figure names. Pure standard library on
purpose: the Snakefile imports this module."""

from __future__ import annotations

import re

# The workflow's figures (rules/figures.smk, ecoembed.plots.figures), results/figures/<name>.png
FIGURE_NAMES = (
    "embedding_map",
    "reconstruction",
    "temporal_fidelity",
    "gpp_timeseries",
    "gpp_scatter",
    "gpp_skill",
    "gpp_decomposition",
    "training_curves",
)

FLUXNET_PRODUCTS = ("FULLSET", "SUBSET")
FLUXNET_RESOLUTIONS = ("HH", "HR", "DD", "WW", "MM", "YY")

# FLX_<SITE>_FLUXNET2015_<PRODUCT>_<RES>_<Y1>-<Y2>_<VERSION>.csv, e.g.
# FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.csv
_FLUXNET_RE = re.compile(
    r"^FLX_(?P<site>[A-Z]{2}-[A-Za-z0-9]{3})_FLUXNET2015_"
    r"(?P<product>FULLSET|SUBSET)_(?P<resolution>HH|HR|DD|WW|MM|YY)_"
    r"(?P<first_year>\d{4})-(?P<last_year>\d{4})_(?P<version>\d+-\d+)\.csv$"
)
_SITE_RE = re.compile(r"^[A-Z]{2}-[A-Za-z0-9]{3}$")


def fluxnet_dd_filename(site_id: str, first_year: int, last_year: int, version: str = "1-4") -> str:
    """The FULLSET daily file name a site's data would have in FLUXNET2015."""
    if not _SITE_RE.match(site_id):
        raise ValueError(f"site id {site_id!r} is not of the FLUXNET form CC-XXX (e.g. US-AR1)")
    if first_year > last_year:
        raise ValueError(f"first year {first_year} is after last year {last_year}")
    return f"FLX_{site_id}_FLUXNET2015_FULLSET_DD_{first_year:04d}-{last_year:04d}_{version}.csv"


def parse_fluxnet_filename(name: str) -> dict[str, str | int]:
    """Split a FLUXNET2015 file name (a path is fine) into site, product, resolution, years."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    m = _FLUXNET_RE.match(base)
    if m is None:
        raise ValueError(
            f"{name}: not a FLUXNET2015 file name "
            "(expected FLX_<SITE>_FLUXNET2015_<FULLSET|SUBSET>_<RES>_<Y1>-<Y2>_<V>.csv)"
        )
    out: dict[str, str | int] = m.groupdict()
    out["first_year"] = int(m["first_year"])
    out["last_year"] = int(m["last_year"])
    return out


# GPP input sets with the tower's meteorology are named "<set>+met" (rules, tables, README).
MET_SUFFIX = "+met"


def gpp_input_set_names(input_sets: list[str]) -> list[str]:
    """Every configured GPP input set, each followed by its ``+met`` variant."""
    return [name for s in input_sets for name in (s, f"{s}{MET_SUFFIX}")]
