"""Rule cube: one tile's analysis-ready datacube from the STAC catalog (ecoembed.cube).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/build_cube.py tile=tile00
"""

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


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("cube", tile="tile00")
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.input.catalog,
        snakemake.wildcards.tile,
        snakemake.output.cube,
        dict(snakemake.params.cube),
        snakemake.params.config_hash,
        snakemake.threads,
    )
