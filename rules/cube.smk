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
        cube=directory("results/cube/{tile}.zarr"),
    params:
        cube=config["cube"],
        config_hash=config_hash(config["cube"]),
    log:
        f"{LOGS}/cube/{{tile}}.log",
    benchmark:
        f"{BENCHMARKS}/cube/{{tile}}.tsv"
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 2  # acquisitions of a window are read concurrently
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/build_cube.py"


rule cubes:
    """Target: the datacubes of every tile."""
    input:
        expand("results/cube/{tile}.zarr", tile=TILES),


localrules:
    cubes,
