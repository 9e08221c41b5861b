"""Readers and writers of the formats real products use (COG, STAC, FLUXNET, Zarr), and
the geometry every layer above shares (the tile grid, top-of-atmosphere radiation).

Submodules are imported explicitly (``from ecoembed.io import raster``) so that light
users such as the Snakefile do not pay for rasterio or pandas.
"""
