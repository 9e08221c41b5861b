"""Rule synthesize_tile: simulate one tile of the synthetic world (ecoembed.synth).

Outside Snakemake, for debugging:
    python workflow_scripts/synthesize_tile.py config/tiny.yaml tile00 /tmp/world
"""

import argparse
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


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        dict(snakemake.params.synth),
        snakemake.params.seed,
        snakemake.wildcards.tile,
        tile_dir=snakemake.output.tile_dir,
        truth=snakemake.output.truth,
        flux_dir=snakemake.output.flux_dir,
    )
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config file (validated, defaults filled in)")
    parser.add_argument("tile", help="tile id, e.g. tile00")
    parser.add_argument("out", type=Path, help="output root, laid out as the workflow's")
    args = parser.parse_args()
    _common.start_logging()
    from ecoembed.config import load_config

    cfg = load_config(args.config)
    main(
        cfg["synth"],
        cfg["seed"],
        args.tile,
        tile_dir=args.out / "raw" / "tiles" / args.tile,
        truth=args.out / "truth" / f"{args.tile}.zarr",
        flux_dir=args.out / "synth" / "flux" / args.tile,
    )
