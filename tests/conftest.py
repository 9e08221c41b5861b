"""Shared synthetic worlds: simulated once per test session, small enough to be quick."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecoembed.synth import simulate_tile, synthesize_tile

# Two years, the second with a summer drought; one tile carrying one tower per ecosystem.
PHYSICS_CFG = {
    "n_tiles": 1,
    "tile_size": 160,
    "start": "2022-01-01",
    "end": "2023-12-31",
    "s2_revisit_days": 5,
    "s1_revisit_days": 6,
    "cloud_cover_mean": 0.5,
    "drought": True,
    "n_sites": 4,
    "epsg": 32632,
}
PHYSICS_SEED = 3

# Written to disk: a shorter, smaller world for the file-format tests.
PRODUCTS_CFG = {
    **PHYSICS_CFG,
    "tile_size": 96,
    "end": "2022-06-30",
    "n_sites": 2,
    "s1_revisit_days": 12,
}


@pytest.fixture(scope="session")
def world():
    return simulate_tile(PHYSICS_CFG, PHYSICS_SEED, "tile00")


@pytest.fixture(scope="session")
def world_without_drought():
    return simulate_tile({**PHYSICS_CFG, "drought": False}, PHYSICS_SEED, "tile00")


def write_products(root: Path, cfg: dict = PRODUCTS_CFG, seed: int = PHYSICS_SEED) -> dict:
    paths = {
        "tile_dir": root / "raw" / "tiles" / "tile00",
        "truth_path": root / "truth" / "tile00.zarr",
        "flux_dir": root / "flux",
    }
    synthesize_tile(cfg, seed, "tile00", progress=False, **paths)
    return paths


@pytest.fixture(scope="session")
def products(tmp_path_factory):
    return write_products(tmp_path_factory.mktemp("products"))


@pytest.fixture(scope="session")
def products_cube(products, tmp_path_factory):
    """The products world catalogued and cubed with the default cube config: the input of
    the training tests. Returns (catalog path, cube path)."""
    import shutil

    from ecoembed.config import validate_config
    from ecoembed.cube import build_cube
    from ecoembed.io import stac

    root = tmp_path_factory.mktemp("products_cube")
    tile_dir = root / "raw" / "tiles" / "tile00"
    shutil.copytree(products["tile_dir"], tile_dir)
    catalog = root / "raw" / "catalog.json"
    stac.build_catalog([tile_dir / "items.json"], catalog)
    build_cube(
        catalog, "tile00", root / "cube.zarr", cube_cfg=validate_config({})["cube"], progress=False
    )
    return catalog, root / "cube.zarr"


def cut_cube(shared: Path, path: Path, *, px: int | None = None, dates: int = 6) -> Path:
    """A private copy of a cube's corner (``px`` square; default the whole width) on its
    first ``dates`` S2 dates and the S1 acquisitions up to the last of them: quick to
    embed, and a wrong test cannot destroy the shared cube."""
    from ecoembed.io.zarrio import open_zarr, write_zarr

    ds = open_zarr(shared)
    if px is not None:
        ds = ds.isel(y=slice(0, px), x=slice(0, px))
    ds = ds.isel(time=slice(0, dates))
    ds = ds.sel(time_s1=slice(None, ds["time"].values[-1])).drop_encoding()
    write_zarr(ds, path, crs=ds.rio.crs, transform=ds.rio.transform())
    return path
