# Raw inputs of a real study (config data_source: stac; the synthetic world's rules are in
# data.smk). Writes exactly the layout the synthetic world writes, so every later rule runs
# unchanged:
#   {RAW}/manifests/{tile}.json          what the STAC search found (checkpoint stac_search)
#   {RAW}/plan.csv                       acquisitions and approximate bytes per site (rule plan)
#   {RAW}/tiles/{tile}/<collection>/<acquisition id>/   COGs + item.json (rule acquire)
#   {RAW}/tiles/{tile}/batches/<batch>.json   the items one acquire job made (rule acquire)
#   {RAW}/tiles/{tile}/items.json        the tile's STAC ItemCollection (rule tile_items)
#   {RAW}/catalog.json (+ collections)   STAC catalog over all tiles (rule stac_catalog)
#   {RAW}/flux/FLX_<SITE>_FLUXNET2015_FULLSET_DD_<Y1>-<Y2>_1-4.csv, sites.csv  (rule flux_real)
#
# Which acquisitions a tile has is known only after the search: stac_search is a
# checkpoint, and tile_items asks it (acquisition_batches, common.smk) for the batches to
# wait for. One acquire job loads a batch of up to stac.batch_size acquisitions of one
# collection (a site is a few jobs, locally and on a cluster alike); an acquisition
# finished before is reused, so a re-run after a failure fetches only what is missing.
# Searches and downloads need the network; nothing here runs at DAG time, except the check
# that the account keys the sources need are set (common.smk).


checkpoint stac_search:
    """Search the STAC sources over one site's tile and period: the acquisitions to load."""
    output:
        manifest=f"{RAW}/manifests/{{tile}}.json",
    params:
        site=lambda wildcards: next(s for s in STAC_CFG["sites"] if s["id"] == wildcards.tile),
        study=STAC_CFG,
    log:
        f"{LOGS}/stac_search/{{tile}}.log",
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/stac_search.py"


rule plan:
    """What acquiring the study will fetch: per site and collection the acquisitions,
    scenes and approximate bytes (searches only; printed, and kept as a table)."""
    input:
        manifests=expand(f"{RAW}/manifests/{{tile}}.json", tile=TILES),
    output:
        table=f"{RAW}/plan.csv",
    log:
        f"{LOGS}/plan.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/plan.py"


rule acquire:
    """Load one batch of a tile's acquisitions (each the scenes of one overpass) onto its
    grid: COGs + item per acquisition, and the batch's ItemCollection."""
    input:
        manifest=f"{RAW}/manifests/{{tile}}.json",
    output:
        batch=f"{RAW}/tiles/{{tile}}/batches/{{batch}}.json",
    params:
        tile_dir=lambda wildcards: f"{RAW}/tiles/{wildcards.tile}",
        batch_size=STAC_CFG["batch_size"],
        resampling=STAC_CFG["resampling"],
        retries=STAC_CFG["retries"],
        backoff_s=STAC_CFG["backoff_s"],
        verify=STAC_CFG["verify"],
    log:
        f"{LOGS}/acquire/{{tile}}/{{batch}}.log",
    benchmark:
        f"{BENCHMARKS}/acquire/{{tile}}/{{batch}}.tsv"
    wildcard_constraints:
        tile=TILE_PATTERN,
        batch=r"(sentinel-2-l2a|sentinel-1-rtc)-[0-9]{3}",
    threads: 2  # assets of one acquisition are fetched concurrently
    resources:
        mem_mb=2000,
        runtime=120,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/acquire.py"


rule tile_items:
    """The tile's ItemCollection: its grid and every acquisition's item."""
    input:
        manifest=f"{RAW}/manifests/{{tile}}.json",
        batches=acquisition_batches,
    output:
        item_collection=f"{RAW}/tiles/{{tile}}/items.json",
    log:
        f"{LOGS}/tile_items/{{tile}}.log",
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/tile_items.py"


rule stac_catalog:
    """One STAC catalog over the items of all tiles."""
    input:
        item_collections=expand(f"{RAW}/tiles/{{tile}}/items.json", tile=TILES),
    output:
        catalog=f"{RAW}/catalog.json",
        # written beside the catalog by build_catalog (ids as in ecoembed.io.stac)
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


rule flux_real:
    """The sites' FLUXNET files (from stac.flux_dir), cut to the study years, and the site
    table from the config. The folder is read when the job runs, not at DAG time."""
    output:
        files=[f"{RAW}/flux/{flux_file(s.site_id)}" for s in SITES],
        sites=f"{RAW}/flux/sites.csv",
    params:
        flux_dir=STAC_CFG["flux_dir"],
        sites=STAC_CFG["sites"],
        first_year=FIRST_YEAR,
        last_year=LAST_YEAR,
        # every tower must have GPP of this partitioning and quality (checked here)
        partitioning=config["gpp"]["partitioning"],
        min_qc=config["gpp"]["min_qc"],
    log:
        f"{LOGS}/flux_real.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/collect_real_flux.py"


rule acquired:
    """Target: the real raw inputs, acquisitions, catalog and FLUXNET files."""
    input:
        catalog=rules.stac_catalog.output.catalog,
        flux=rules.flux_real.output.files,
        sites=rules.flux_real.output.sites,


localrules:
    acquired,
    plan,
    stac_catalog,
    tile_items,
