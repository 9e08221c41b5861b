# Raw inputs: the synthetic world of the embedded default (target `synthesize`).
#
# What it writes, in the layout real products have (the rest of the workflow reads only
# this, so it cannot tell synthetic from real):
#   {RAW}/tiles/{tile}/                 COGs of every S2/S1 acquisition + items.json
#                                       (the tile's STAC ItemCollection)
#   {RAW}/catalog.json                  STAC catalog over all tiles (rules/catalog.smk)
#   {RAW}/flux/FLX_<SITE>_FLUXNET2015_FULLSET_DD_<Y1>-<Y2>_1-4.csv   one per tower
#   {RAW}/flux/sites.csv                site table (SITE_ID, LOCATION_LAT, LOCATION_LONG, IGBP)
#   results/truth/{tile}.zarr           the world's ground truth
#
# Why the FLUXNET files take a detour through results/synth/flux/{tile}/: all outputs of
# a rule carry the same wildcards, and which towers stand on a tile depends on {tile},
# so synthesize_tile cannot name its FLUXNET files as outputs. It writes them (and its
# partial site table sites_{tile}.csv) into a per-tile directory; rule flux_files, whose
# outputs are the full list of file names known from the site plan at DAG time, copies
# them into {RAW}/flux/ and merges the site tables. The copies are small (one row per
# day and tower).


rule synthesize_tile:
    """Simulate one tile: S2 and S1 COGs with STAC items, ground truth, its towers' data."""
    output:
        tile_dir=directory(RAW_TILE),
        truth=directory(TRUTH),
        flux_dir=directory(SYNTH_FLUX),
    params:
        synth=SYNTH_CFG,
        seed=WORLD_SEED,
    log:
        log_of("synthesize_tile/{tile}"),
    benchmark:
        benchmark_of("synthesize_tile/{tile}")
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 1
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(30),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/synthesize_tile.py"


rule flux_files:
    """Gather the towers' FLUXNET files into {RAW}/flux/ and merge their site tables."""
    input:
        parts=expand(SYNTH_FLUX, tile=TILES),
    output:
        files=FLUX_FILES,
        sites=FLUX_SITES,
    params:
        # one source per output file, in the same order
        sources=[f"{at(SYNTH_FLUX, tile=s.tile)}/{flux_file(s.site_id)}" for s in SITES],
        tables=[f"{at(SYNTH_FLUX, tile=t)}/sites_{t}.csv" for t in TILES],
        # every tower must have GPP of this partitioning and quality (checked here)
        partitioning=config["gpp"]["partitioning"],
        min_qc=config["gpp"]["min_qc"],
    log:
        log_of("flux_files"),
    benchmark:
        benchmark_of("flux_files")
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/collect_flux.py"


rule synthesize:
    """Target: the synthetic world, raw inputs and ground truth."""
    input:
        catalog=rules.stac_catalog.output.catalog,
        truth=expand(TRUTH, tile=TILES),
        flux=rules.flux_files.output.files,
        sites=rules.flux_files.output.sites,


localrules:
    synthesize,
    flux_files,
