# The STAC catalog over every tile's items, whichever producer wrote them (the synthetic
# world, rules/data.smk, or the acquisitions, rules/acquire.smk): the one input of the
# datacubes besides the tiles' assets.
#
#   {RAW}/catalog.json                   the catalog
#   {RAW}/<collection id>/               one collection per sensor (ecoembed.io.sensors) and
#                                        the tiles' collection, written beside the catalog;
#                                        items link to the COGs in {RAW}/tiles/


rule stac_catalog:
    """One STAC catalog over the items of all tiles."""
    input:
        # the synthetic tile's folder, or the acquired tile's items.json (TILE_RAW)
        tiles=expand(TILE_RAW, tile=TILES),
    output:
        catalog=CATALOG,
        # build_catalog writes each collection (collection.json, one folder per item) beside
        # the catalog; declared so that a rerun starts clean. Ids as in ecoembed.io.stac.
        **{
            f"{name}_collection": directory(at(RAW_COLLECTION, collection=sensor.collection))
            for name, sensor in SENSORS.items()
        },
        tiles_collection=directory(at(RAW_COLLECTION, collection="ecoembed-tiles")),
    params:
        item_collections=expand(RAW_ITEMS, tile=TILES),
    log:
        log_of("stac_catalog"),
    benchmark:
        benchmark_of("stac_catalog")
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/build_catalog.py"


localrules:
    stac_catalog,
