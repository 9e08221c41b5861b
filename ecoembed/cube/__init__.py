"""Analysis-ready datacubes: every acquisition of a tile on its 10 m grid, in one Zarr store.

The same code path serves synthetic and real inputs: it reads only the STAC catalog and
the assets it links to.
"""

from ecoembed.cube.build import build_cube, cube_encoding

__all__ = ["build_cube", "cube_encoding"]
