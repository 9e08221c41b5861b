"""Rule cube: one tile's analysis-ready datacube from the STAC catalog (ecoembed.cube).

Outside Snakemake, for debugging:
    python workflow_scripts/build_cube.py config.yaml results/raw/catalog.json tile00 /tmp/c.zarr
"""

import argparse

import _common


def main(catalog, tile: str, out, cube_cfg: dict, config_hash: str, threads: int = 1) -> None:
    from ecoembed import __version__
    from ecoembed.cube import build_cube

    provenance = {
        "ecoembed_version": __version__,
        "config_hash": config_hash,
        "cube_config": cube_cfg,
        "catalog": str(catalog),
    }
    build_cube(
        catalog,
        tile,
        out,
        cube_cfg=cube_cfg,
        provenance=provenance,
        progress=True,
        threads=threads,
    )


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.input.catalog,
        snakemake.wildcards.tile,
        snakemake.output.cube,
        dict(snakemake.params.cube),
        snakemake.params.config_hash,
        snakemake.threads,
    )
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config file (validated, defaults filled in)")
    parser.add_argument("catalog", help="the STAC catalog.json")
    parser.add_argument("tile", help="tile id, e.g. tile00")
    parser.add_argument("out", help="Zarr store to write")
    args = parser.parse_args()
    _common.start_logging()
    from ecoembed.config import config_hash, load_config

    cfg = load_config(args.config)
    main(args.catalog, args.tile, args.out, cfg["cube"], config_hash(cfg["cube"]))
