"""Real Sentinel-1/2 acquisitions from STAC sources, written in the raw layout of the workflow:
the twin of :mod:`ecoembed.synth`, the other producer of that layout. Both sit above
:mod:`ecoembed.io` (formats and shared geometry) and below the method (cube, models, train,
embed, gpp), which reads only the layout and never imports either producer.

Three steps, one Snakemake rule each (rules/acquire.smk):

1. :func:`ecoembed.acquire.search.search_tile` asks the STAC sources (pystac-client) for
   the items over a site's tile and period, groups them into acquisitions (the scenes of
   one overpass) and writes a manifest (:mod:`ecoembed.acquire.manifest`); the list of
   acquisitions is known only now, so the rule is a checkpoint.
2. :func:`ecoembed.acquire.batches.acquire_batch` loads a batch of acquisitions onto the
   tile grid (:mod:`ecoembed.acquire.load`, odc-stac: scenes of one overpass mosaicked,
   reprojected from their own CRS and resolution) and writes the COGs and STAC item of
   each, exactly as the synthetic world writes them.
3. :func:`ecoembed.acquire.batches.write_tile_items` gathers the tile's items (and its
   grid item) into ``items.json``, the tile's ItemCollection that the catalog and the cube
   read.

The same code talks to a STAC API (``/search``) and to a static catalog (a local
``catalog.json``, which the offline tests use): only the search call differs.

This file imports nothing: the Snakefile imports :mod:`ecoembed.acquire.sites` and
:mod:`ecoembed.acquire.credentials` (pure Python), and must not pay for the rest.
"""
