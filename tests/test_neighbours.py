"""Tiles embedded with their neighbours' cubes as halo give the embedding of one tile
covering both: no seams in a mosaic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecoembed.embed.export import export_tile
from ecoembed.embed.neighbours import grid_offset, same_overpass
from ecoembed.io.errors import InputDataError
from ecoembed.io.zarrio import open_zarr, write_zarr
from tests.conftest import cut_cube
from tests.test_embed import random_checkpoint


def split(cube_path, folder, at: int):
    """The cube cut into a west and an east tile at column ``at``."""
    ds = open_zarr(cube_path)
    paths = []
    for name, cols in (("west", slice(0, at)), ("east", slice(at, None))):
        part = ds.isel(x=cols).drop_encoding()
        path = folder / f"{name}.zarr"
        write_zarr(part, path, crs=part.rio.crs, transform=part.rio.transform())
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def tiles(products_cube, tmp_path_factory):
    _, shared = products_cube
    folder = tmp_path_factory.mktemp("neighbours")
    whole = cut_cube(shared, folder / "whole.zarr", px=64, dates=6)
    ckpt = random_checkpoint(folder / "fusion.pt")
    west, east = split(whole, folder, 32)
    return whole, west, east, ckpt


def test_adjacent_tiles_with_neighbours_equal_one_tile_covering_both(tiles, tmp_path):
    whole, west, east, ckpt = tiles
    out = {k: tmp_path / f"{k}.zarr" for k in ("whole", "west", "east", "alone")}
    export_tile(whole, ckpt, embeddings_path=out["whole"], progress=False)
    export_tile(west, ckpt, embeddings_path=out["west"], neighbours=[east], progress=False)
    export_tile(east, ckpt, embeddings_path=out["east"], neighbours=[west], progress=False)
    export_tile(west, ckpt, embeddings_path=out["alone"], progress=False)
    big = open_zarr(out["whole"])["embedding"].values
    w = open_zarr(out["west"])
    e = open_zarr(out["east"])["embedding"].values
    np.testing.assert_allclose(w["embedding"].values, big[..., :32], atol=2e-5)
    np.testing.assert_allclose(e, big[..., 32:], atol=2e-5)
    # without its neighbour the west tile's last columns differ: the test can fail
    alone = open_zarr(out["alone"])["embedding"].values
    assert np.abs(alone[..., -1] - big[..., 31]).max() > 1e-3
    np.testing.assert_allclose(alone[..., :8], big[..., :8], atol=2e-5)  # far from the edge
    assert json.loads(w.attrs["halo_from"]) == ["tile00"]


def test_a_neighbour_off_the_grid_or_in_another_crs_is_refused(tiles, tmp_path):
    whole, west, east, ckpt = tiles
    ds = open_zarr(east)
    shifted = ds.assign_coords(x=ds["x"].values + 5.0).drop_encoding()  # half a pixel
    bad = tmp_path / "shifted.zarr"
    write_zarr(shifted, bad, crs=shifted.rio.crs, transform=shifted.rio.transform())
    out = tmp_path / "out.zarr"
    with pytest.raises(InputDataError, match=r"shifted\.zarr: .*not on the tile's pixel grid"):
        export_tile(west, ckpt, embeddings_path=out, neighbours=[bad], progress=False)
    other = tmp_path / "utm33.zarr"
    write_zarr(ds.drop_encoding(), other, crs="EPSG:32633", transform=ds.rio.transform())
    with pytest.raises(InputDataError, match=r"utm33\.zarr: neighbour cube is in EPSG:32633"):
        export_tile(west, ckpt, embeddings_path=out, neighbours=[other], progress=False)
    with pytest.raises(InputDataError, match=r"nope\.zarr: neighbour cube does not exist"):
        export_tile(west, ckpt, embeddings_path=out, neighbours=[tmp_path / "nope.zarr"])
    assert not out.exists()
    assert grid_offset(open_zarr(west), ds, east) == (0, 32)


def test_acquisitions_match_by_overpass():
    t = np.array(["2022-01-01T10:21", "2022-01-06T10:21", "2022-01-11T10:21"], "datetime64[ns]")
    other = np.array(["2022-01-11T10:21:30", "2022-01-01T10:20"], "datetime64[ns]")
    assert same_overpass(t, other).tolist() == [1, -1, 0]
    assert same_overpass(t, other[:0]).tolist() == [-1, -1, -1]


def test_cli_reads_the_halo_from_neighbours(tiles, tmp_path, capsys):
    from ecoembed.__main__ import main

    _, west, east, ckpt = tiles
    out, lib = tmp_path / "cli.zarr", tmp_path / "lib.zarr"
    args = ["embed", "--checkpoint", str(ckpt), "--cube", str(west), "--out", str(out)]
    assert main(args + ["--neighbour", str(east), "--device", "cpu"]) == 0
    export_tile(west, ckpt, embeddings_path=lib, neighbours=[east], progress=False)
    np.testing.assert_array_equal(
        open_zarr(out)["embedding"].values, open_zarr(lib)["embedding"].values
    )
    assert main(args + ["--neighbour", str(tmp_path / "none.zarr")]) == 1
    assert "none.zarr: neighbour cube does not exist" in capsys.readouterr().err
