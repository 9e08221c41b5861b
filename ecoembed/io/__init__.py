"""Readers and writers of the formats real products use (COG, STAC, FLUXNET, Zarr).

Submodules are imported explicitly (``from ecoembed.io import raster``) so that light
users such as the Snakefile do not pay for rasterio or pandas.
"""
