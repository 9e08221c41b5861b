"""Readers and writers of the formats real products use (COG, STAC, FLUXNET, Zarr), and
the vocabulary every layer above shares: the tile grid and its geometry, the sensor
registry, the time axis, the sites of a study, top-of-atmosphere radiation.

The two producers of the raw layout sit above this package: the synthetic world
(:mod:`ecoembed.synth`) and the acquisition of real data (:mod:`ecoembed.acquire`); nothing
here imports either.

Submodules are imported explicitly (``from ecoembed.io import raster``) so that light
users such as the Snakefile do not pay for rasterio or pandas.
"""
