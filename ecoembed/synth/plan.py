"""What the synthetic world contains, decided from the config alone.

Pure Python (no numpy): the Snakefile imports this to know tile ids and flux file names
at DAG-building time, before any job runs.
"""

from __future__ import annotations

from ecoembed.io.sites import SitePlan

# Tower classes in the order sites are assigned; the four ecosystems the GPP evaluation
# compares (crops, grassland, deciduous and evergreen needleleaf forest).
TOWER_CLASSES: tuple[str, ...] = ("DBF", "CRO", "GRA", "ENF")


def tile_ids(synth_cfg: dict) -> list[str]:
    return [f"tile{i:02d}" for i in range(int(synth_cfg["n_tiles"]))]


def tile_index(tile: str) -> int:
    if not tile.startswith("tile") or not tile[4:].isdigit():
        raise ValueError(f"not a synthetic tile id: {tile!r} (expected 'tileNN')")
    return int(tile[4:])


# Tiles the descending Sentinel-1 orbit sees (ecoembed.synth.grid.s1_orbits: its swath
# edge cuts through the third tile); the ascending orbit sees every tile.
DESCENDING_SWATH_TILES = 3


def min_days_for_frames(synth_cfg: dict, frames: int) -> int:
    """The fewest simulated days in which pretraining finds a centre with ``frames``
    acquisitions around it (ecoembed.train.sampling.sample_centres) on every tile, for
    both sensors, on the schedule of ecoembed.synth.grid: S2 on days
    ``(2 * tile index) % revisit + k * revisit``; S1 on two orbits, ascending on days
    ``1 + k * revisit`` and descending on ``1 + revisit // 2 + k * revisit``, one series
    in which a tile beyond the descending swath needs an ascending centre. Clouds can
    still leave S2 without a clear centre; that is not decided by the config.
    """
    s2, s1 = int(synth_cfg["s2_revisit_days"]), int(synth_cfg["s1_revisit_days"])
    n_tiles = int(synth_cfg["n_tiles"])
    latest_phase = max((2 * i) % s2 for i in range(n_tiles))
    s2_days = latest_phase + (frames - 1) * s2 + 1
    s1_series = sorted(
        (phase + k * s1, ascending)
        for phase, ascending in ((1, True), (1 + s1 // 2, False))
        for k in range(frames + 1)
    )
    half = frames // 2
    for n in range(frames, len(s1_series) + 1):  # the series' first n acquisitions
        centres = s1_series[half : n - half]
        if n_tiles <= DESCENDING_SWATH_TILES or any(asc for _, asc in centres):
            return max(s2_days, s1_series[n - 1][0] + 1)
    raise AssertionError("unreachable: orbits alternate, so one more acquisition suffices")


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
