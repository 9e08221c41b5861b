# Analysis-ready datacubes: results/cube/{tile}.zarr from the STAC catalog.
#
# The rule reads only the catalog and the assets it links to, so synthetic and real inputs
# take the same path. Each tile is an independent job.


rule cube:
    """One tile's S2 reflectance, clear-view mask and S1 backscatter (dB) on its 10 m grid."""
    input:
        catalog=rules.stac_catalog.output.catalog,
        tile_dir=TILE_RAW,
    output:
        cube=directory(CUBE),
    params:
        cube=config["cube"],
        config_hash=config_hash(config["cube"]),
    log:
        log_of("cube/{tile}"),
    benchmark:
        benchmark_of("cube/{tile}")
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 2  # acquisitions of a window are read concurrently
    resources:
        mem_mb=per_attempt(3000),
        runtime=per_attempt(30),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/build_cube.py"


rule cubes:
    """Target: the datacubes of every tile."""
    input:
        expand(CUBE, tile=TILES),


localrules:
    cubes,
