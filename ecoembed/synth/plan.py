"""What the synthetic world contains, decided from the config alone.

Pure Python (no numpy): the Snakefile imports this to know tile ids and flux file names
at DAG-building time, before any job runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# Tower classes in the order sites are assigned; the four ecosystems the GPP evaluation
# compares (crops, grassland, deciduous and evergreen needleleaf forest).
TOWER_CLASSES: tuple[str, ...] = ("DBF", "CRO", "GRA", "ENF")


@dataclass(frozen=True)
class SitePlan:
    site_id: str
    tile: str
    igbp: str
    index_in_tile: int


def tile_ids(synth_cfg: dict) -> list[str]:
    return [f"tile{i:02d}" for i in range(int(synth_cfg["n_tiles"]))]


def tile_index(tile: str) -> int:
    if not tile.startswith("tile") or not tile[4:].isdigit():
        raise ValueError(f"not a synthetic tile id: {tile!r} (expected 'tileNN')")
    return int(tile[4:])


def years(synth_cfg: dict) -> tuple[int, int]:
    return date.fromisoformat(str(synth_cfg["start"])).year, date.fromisoformat(
        str(synth_cfg["end"])
    ).year


def site_plan(synth_cfg: dict) -> list[SitePlan]:
    """Towers cycle through TOWER_CLASSES and are dealt round-robin onto tiles.

    Site ids use the ISO 3166 user-assigned country code XX so they can never collide with
    a real FLUXNET site (e.g. ``XX-D01`` is the first deciduous-forest tower).
    """
    tiles = tile_ids(synth_cfg)
    plans = []
    per_tile: dict[str, int] = {}
    for i in range(int(synth_cfg["n_sites"])):
        igbp = TOWER_CLASSES[i % len(TOWER_CLASSES)]
        tile = tiles[i % len(tiles)]
        k = per_tile.get(tile, 0)
        per_tile[tile] = k + 1
        plans.append(SitePlan(f"XX-{igbp[0]}{i + 1:02d}", tile, igbp, k))
    return plans


def sites_of_tile(synth_cfg: dict, tile: str) -> list[SitePlan]:
    return [s for s in site_plan(synth_cfg) if s.tile == tile]
