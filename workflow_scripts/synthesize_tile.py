"""Rule synthesize_tile: simulate one tile of the synthetic world (ecoembed.synth).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/synthesize_tile.py tile=tile00 --configfile config/tiny.yaml
"""

import logging
from pathlib import Path

import _common


def main(synth: dict, seed: int, tile: str, tile_dir, truth, flux_dir) -> None:
    from ecoembed.synth import synthesize_tile

    logging.getLogger("ecoembed.workflow").info("synthesizing %s (seed %d)", tile, seed)
    synthesize_tile(
        synth,
        seed,
        tile,
        tile_dir=Path(tile_dir),
        truth_path=Path(truth),
        flux_dir=Path(flux_dir),
        progress=True,  # tqdm bars on stderr, i.e. in the rule's log: `tail -f` it
    )


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("synthesize_tile", tile="tile00")
    _common.start_logging(snakemake.log[0])
    main(
        dict(snakemake.params.synth),
        snakemake.params.seed,
        snakemake.wildcards.tile,
        tile_dir=snakemake.output.tile_dir,
        truth=snakemake.output.truth,
        flux_dir=snakemake.output.flux_dir,
    )
