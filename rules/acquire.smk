# Raw inputs of a real study (config data_source: stac; the synthetic world's rules are in
# data.smk). Writes exactly the layout the synthetic world writes, so every later rule runs
# unchanged:
#   {RAW}/manifests/{tile}.json          what the STAC search found (checkpoint stac_search)
#   {RAW}/plan.csv                       acquisitions and approximate bytes per site (rule plan)
#   {RAW}/tiles/{tile}/<collection>/<acquisition id>/   COGs + item.json (rule acquire)
#   {RAW}/tiles/{tile}/batches/<batch>.json   the items one acquire job made (rule acquire)
#   {RAW}/tiles/{tile}/items.json        the tile's STAC ItemCollection (rule tile_items)
#   {RAW}/catalog.json (+ collections)   STAC catalog over all tiles (rules/catalog.smk)
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
        manifest=RAW_MANIFEST,
    params:
        site=lambda wildcards: next(s for s in STAC_CFG["sites"] if s["id"] == wildcards.tile),
        study=STAC_CFG,
    log:
        log_of("stac_search/{tile}"),
    benchmark:
        benchmark_of("stac_search/{tile}")
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(15),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/stac_search.py"


rule plan:
    """What acquiring the study will fetch: per site and collection the acquisitions,
    scenes and approximate bytes (searches only; printed, and kept as a table)."""
    input:
        manifests=expand(RAW_MANIFEST, tile=TILES),
    output:
        table=RAW_PLAN,
    log:
        log_of("plan"),
    benchmark:
        benchmark_of("plan")
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/plan.py"


rule acquire:
    """Load one batch of a tile's acquisitions (each the scenes of one overpass) onto its
    grid: COGs + item per acquisition, and the batch's ItemCollection."""
    input:
        manifest=RAW_MANIFEST,
    output:
        batch=RAW_BATCH,
    params:
        tile_dir=lambda wildcards: at(RAW_TILE, tile=wildcards.tile),
        batch_size=STAC_CFG["batch_size"],
        resampling=STAC_CFG["resampling"],
        retries=STAC_CFG["retries"],
        backoff_s=STAC_CFG["backoff_s"],
        verify=STAC_CFG["verify"],
    log:
        log_of("acquire/{tile}/{batch}"),
    benchmark:
        benchmark_of("acquire/{tile}/{batch}")
    wildcard_constraints:
        tile=TILE_PATTERN,
        # <collection id>-<number>, one collection per sensor (ecoembed.io.sensors)
        batch="({})-[0-9]{{3}}".format("|".join(re.escape(s.collection) for s in SENSORS.values())),
    threads: 2  # assets of one acquisition are fetched concurrently
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(120),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/acquire.py"


rule tile_items:
    """The tile's ItemCollection: its grid and every acquisition's item."""
    input:
        manifest=RAW_MANIFEST,
        batches=acquisition_batches,
    output:
        item_collection=RAW_ITEMS,
    log:
        log_of("tile_items/{tile}"),
    benchmark:
        benchmark_of("tile_items/{tile}")
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/tile_items.py"


rule flux_real:
    """The sites' FLUXNET files (from stac.flux_dir), cut to the study years, and the site
    table from the config. The folder is read when the job runs, not at DAG time."""
    output:
        files=FLUX_FILES,
        sites=FLUX_SITES,
    params:
        flux_dir=STAC_CFG["flux_dir"],
        sites=STAC_CFG["sites"],
        first_year=FIRST_YEAR,
        last_year=LAST_YEAR,
        # every tower must have GPP of this partitioning and quality (checked here)
        partitioning=config["gpp"]["partitioning"],
        min_qc=config["gpp"]["min_qc"],
    log:
        log_of("flux_real"),
    benchmark:
        benchmark_of("flux_real")
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
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
    tile_items,
