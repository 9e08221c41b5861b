"""The synthetic world: a landscape whose physics is close enough to real sensors that the
method must work for the same reasons it works on real data, with every truth known.

``simulate_tile`` runs the physics in memory; ``synthesize_tile`` writes one tile as real
products are written (COG + STAC, FLUXNET CSV) plus its truth store.
"""

from __future__ import annotations

from pathlib import Path

from ecoembed.synth.plan import site_plan, sites_of_tile, tile_ids

__all__ = [
    "site_plan",
    "sites_of_tile",
    "tile_ids",
    "simulate_tile",
    "synthesize_tile",
]


def simulate_tile(synth_cfg: dict, seed: int, tile: str, progress: bool = False):
    from ecoembed.synth.world import simulate_tile as _simulate

    return _simulate(synth_cfg, seed, tile, progress=progress)


def synthesize_tile(
    synth_cfg: dict,
    seed: int,
    tile: str,
    *,
    tile_dir: Path,
    truth_path: Path,
    flux_dir: Path,
    progress: bool = True,
) -> None:
    """Simulate one tile and write its raw products, flux files and truth."""
    from ecoembed import __version__
    from ecoembed.synth.write import write_flux, write_raw, write_truth

    sim = simulate_tile(synth_cfg, seed, tile, progress=progress)
    provenance = {
        "generator": "ecoembed.synth",
        "ecoembed_version": __version__,
        "seed": int(seed),
        "tile": tile,
        "synth": dict(synth_cfg),
    }
    write_raw(sim, Path(tile_dir), progress=progress)
    Path(flux_dir).mkdir(parents=True, exist_ok=True)
    write_flux(sim, Path(flux_dir))
    write_truth(sim, Path(truth_path), provenance)
