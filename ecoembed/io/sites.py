"""The towers of a study and the years it spans: what both producers of the raw layout
(the synthetic world, :mod:`ecoembed.synth.plan`, and real acquisitions,
:mod:`ecoembed.acquire.sites`) plan, and what the rules name files by.

Pure Python on purpose: the Snakefile imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class SitePlan:
    """One tower: its site id, the tile it stands on, its IGBP class and its index there."""

    site_id: str
    tile: str
    igbp: str
    index_in_tile: int


def years(section: Mapping[str, Any]) -> tuple[int, int]:
    """First and last year of a config section's ``start`` .. ``end`` (synth or stac)."""
    return date.fromisoformat(str(section["start"])).year, date.fromisoformat(
        str(section["end"])
    ).year
