# Raw inputs. For now: the synthetic world of the embedded default (target `synthesize`).
#
# What it writes, in the layout real products have (the rest of the workflow reads only
# this, so it cannot tell synthetic from real):
#   {RAW}/tiles/{tile}/                 COGs of every S2/S1 acquisition + items.json
#                                       (the tile's STAC ItemCollection)
#   {RAW}/catalog.json                  STAC catalog over all tiles, its collections in
#   {RAW}/sentinel-2-l2a/, {RAW}/sentinel-1-rtc/  (items link to the COGs in tiles/)
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
        tile_dir=directory(f"{RAW}/tiles/{{tile}}"),
        truth=directory(f"{TRUTH}/{{tile}}.zarr"),
        flux_dir=directory(f"{SYNTH}/flux/{{tile}}"),
    params:
        synth=SYNTH_CFG,
        seed=config["seed"],
    log:
        f"{LOGS}/synthesize_tile/{{tile}}.log",
    benchmark:
        f"{BENCHMARKS}/synthesize_tile/{{tile}}.tsv"
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/synthesize_tile.py"


rule flux_files:
    """Gather the towers' FLUXNET files into {RAW}/flux/ and merge their site tables."""
    input:
        parts=expand(f"{SYNTH}/flux/{{tile}}", tile=TILES),
    output:
        files=[f"{RAW}/flux/{flux_file(s.site_id)}" for s in SITES],
        sites=f"{RAW}/flux/sites.csv",
    params:
        # one source per output file, in the same order
        sources=[f"{SYNTH}/flux/{s.tile}/{flux_file(s.site_id)}" for s in SITES],
        tables=[f"{SYNTH}/flux/{t}/sites_{t}.csv" for t in TILES],
        # every tower must have GPP of this partitioning and quality (checked here)
        partitioning=config["gpp"]["partitioning"],
        min_qc=config["gpp"]["min_qc"],
    log:
        f"{LOGS}/flux_files.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/collect_flux.py"


rule stac_catalog:
    """One STAC catalog over the items of all tiles."""
    input:
        tiles=expand(f"{RAW}/tiles/{{tile}}", tile=TILES),
    output:
        catalog=f"{RAW}/catalog.json",
        # build_catalog writes each collection (collection.json, one folder per item) beside
        # the catalog; declared so that a rerun starts clean. Ids as in ecoembed.io.stac.
        s2_collection=directory(f"{RAW}/sentinel-2-l2a"),
        s1_collection=directory(f"{RAW}/sentinel-1-rtc"),
        tiles_collection=directory(f"{RAW}/ecoembed-tiles"),
    params:
        item_collections=[f"{RAW}/tiles/{t}/items.json" for t in TILES],
    log:
        f"{LOGS}/stac_catalog.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/build_catalog.py"


rule synthesize:
    """Target: the synthetic world, raw inputs and ground truth."""
    input:
        catalog=rules.stac_catalog.output.catalog,
        truth=expand(f"{TRUTH}/{{tile}}.zarr", tile=TILES),
        flux=rules.flux_files.output.files,
        sites=rules.flux_files.output.sites,


localrules:
    synthesize,
    flux_files,
    stac_catalog,
