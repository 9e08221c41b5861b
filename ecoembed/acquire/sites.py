"""The sites of a real study (config ``data_source: stac``), decided from the config alone:
one tile per tower, named after it. The counterpart of :mod:`ecoembed.synth.plan`.

Pure Python on purpose: the Snakefile imports it to know tile ids and flux file names at
DAG-building time, before any job runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecoembed.io.sites import SitePlan


def tile_ids(stac_cfg: Mapping[str, Any]) -> list[str]:
    """One tile per site, with the site's id."""
    return [str(s["id"]) for s in stac_cfg["sites"]]


def site_plan(stac_cfg: Mapping[str, Any]) -> list[SitePlan]:
    """Each configured site alone on its own tile."""
    return [SitePlan(s["id"], s["id"], s["igbp"], 0) for s in stac_cfg["sites"]]
