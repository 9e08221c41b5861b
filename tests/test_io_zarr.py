"""Zarr stores with CRS, datetime and string coordinates, written atomically."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from affine import Affine

from ecoembed.io.atomic import OutputExistsError
from ecoembed.io.errors import InputDataError
from ecoembed.io.zarrio import (
    RegionWriter,
    is_ecoembed_product,
    open_zarr,
    product_kind,
    write_zarr,
)

T10 = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5100000.0)


def _cube(nt=4, ny=6, nx=5):
    rng = np.random.default_rng(0)
    times = pd.to_datetime(
        ["2023-05-02T10:30", "2023-05-07T10:30", "2023-05-12T10:30", "2023-06-01T10:30"]
    )
    return xr.Dataset(
        {
            "s2": (("time", "band", "y", "x"), rng.random((nt, 2, ny, nx), dtype=np.float32)),
            "s2_valid": (("time", "y", "x"), rng.random((nt, ny, nx)) > 0.3),
            "orbit": (("time",), np.array(["ascending", "descending", "asc", "descending"][:nt])),
        },
        coords={
            "time": times[:nt],
            "band": ["B02", "B8A"],
            "y": T10.f + T10.e * (np.arange(ny) + 0.5),
            "x": T10.c + T10.a * (np.arange(nx) + 0.5),
        },
        attrs={"tile": "T1", "config_hash": "abc123"},
    )


# rioxarray's own rio.transform() still multiplies Affines with `*` (its warning, not ours)
@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
def test_roundtrip_with_crs_time_and_strings(tmp_path):
    ds = _cube()
    path = tmp_path / "cube" / "T1.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no zarr "unstable dtype"/consolidated warnings leak
        write_zarr(ds, path, crs=32632, transform=T10)
        back = open_zarr(path)
    assert back.rio.crs.to_epsg() == 32632
    assert back.spatial_ref.attrs["GeoTransform"] == "600000.0 10.0 0.0 5100000.0 0.0 -10.0"
    assert "crs_wkt" in back.spatial_ref.attrs
    assert back.rio.transform() == T10
    assert back.time.dtype.kind == "M"
    assert back.time.values[1] == np.datetime64("2023-05-07T10:30")
    assert back.band.values.tolist() == ["B02", "B8A"]
    assert back.orbit.values.tolist() == ["ascending", "descending", "asc", "descending"]
    np.testing.assert_array_equal(back.s2.sel(band="B8A").values, ds.s2.sel(band="B8A").values)
    np.testing.assert_array_equal(back.s2_valid.values, ds.s2_valid.values)
    assert back.s2_valid.dtype == bool
    assert back.attrs["config_hash"] == "abc123"
    # zarr format 3, consolidated metadata present
    meta = json.loads((path / "zarr.json").read_text())
    assert meta["zarr_format"] == 3 and "consolidated_metadata" in meta
    assert sorted(p.name for p in path.parent.iterdir()) == ["T1.zarr"]
    # the caller's dataset is not modified
    assert "spatial_ref" not in ds.coords


CUBE_TITLE = {"title": "ecoembed analysis-ready cube of T1"}  # as build_cube writes it


def test_encoding_chunks_and_overwrite(tmp_path):
    path = tmp_path / "T1.zarr"
    write_zarr(_cube().assign_attrs(CUBE_TITLE), path, crs="EPSG:32632")
    small = _cube(nt=2)
    write_zarr(small, path, crs="EPSG:32632", encoding={"s2": {"chunks": (1, 2, 3, 5)}})
    back = open_zarr(path)
    assert back.sizes["time"] == 2  # replaced, not merged
    assert back.s2.encoding["chunks"] == (1, 2, 3, 5)
    assert back.rio.crs.to_epsg() == 32632
    assert sorted(p.name for p in tmp_path.iterdir()) == ["T1.zarr"]


def test_without_crs(tmp_path):
    ds = xr.Dataset(
        {"gpp": (("time",), np.array([1.0, np.nan]))},
        coords={"time": pd.date_range("2020-01-01", periods=2)},
    )
    write_zarr(ds, tmp_path / "g.zarr")
    back = open_zarr(tmp_path / "g.zarr")
    assert back.rio.crs is None and "spatial_ref" not in back.coords
    assert np.isnan(back.gpp.values[1]) and back.gpp.values[0] == 1.0
    with pytest.raises(ValueError, match="needs a crs"):
        write_zarr(ds, tmp_path / "h.zarr", transform=T10)


def test_failed_write_keeps_old_store_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "T1.zarr"
    write_zarr(_cube().assign_attrs(CUBE_TITLE), path, crs=32632)
    real = xr.Dataset.to_zarr

    def crash_after_writing(self, store, *args, **kwargs):
        real(self, store, *args, **kwargs)
        raise RuntimeError("killed")

    monkeypatch.setattr(xr.Dataset, "to_zarr", crash_after_writing)
    with pytest.raises(RuntimeError, match="killed"):
        write_zarr(_cube(nt=1), path, crs=32632)
    assert open_zarr(path).sizes["time"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["T1.zarr"]


def test_open_errors_name_the_path(tmp_path):
    with pytest.raises(InputDataError, match="missing.zarr: Zarr store does not exist"):
        open_zarr(tmp_path / "missing.zarr")
    a_file = tmp_path / "file.zarr"
    a_file.write_text("x")
    with pytest.raises(InputDataError, match="file.zarr: not a Zarr store"):
        open_zarr(a_file)
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    with pytest.raises(InputDataError, match="empty.zarr: not a Zarr store"):
        open_zarr(empty)
    broken = tmp_path / "broken.zarr"
    broken.mkdir()
    (broken / "zarr.json").write_text("{not json")
    with pytest.raises(InputDataError, match="broken.zarr: unreadable Zarr store"):
        open_zarr(broken)


def test_text_coordinate_and_text_variable_on_it_store_as_specified_strings(tmp_path):
    """A text variable on a text index coordinate (site ids) must not bring back numpy's
    fixed-width strings, which have no Zarr v3 specification."""
    from zarr.errors import UnstableSpecificationWarning

    ds = xr.Dataset(coords={"site": ("site", ["XX-D01", "XX-C02"])})
    ds["site_igbp"] = (("site",), np.array(["DBF", "CRO"], dtype=str))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnstableSpecificationWarning)
        write_zarr(ds, tmp_path / "s.zarr")
    back = open_zarr(tmp_path / "s.zarr")
    assert back.sel(site="XX-C02")["site_igbp"].item() == "CRO"


def test_explicit_encoding_keeps_the_crs(tmp_path):
    """rioxarray keeps grid_mapping in the encoding, which an explicit encoding replaces."""
    ds = xr.Dataset(
        {"a": (("y", "x"), np.zeros((4, 4), np.float32))},
        coords={"y": np.arange(4.0), "x": np.arange(4.0)},
    )
    write_zarr(ds, tmp_path / "e.zarr", crs=32632, encoding={"a": {"chunks": (2, 2)}})
    back = open_zarr(tmp_path / "e.zarr")
    assert back.rio.crs.to_epsg() == 32632
    assert "spatial_ref" in back.coords


def _tree(folder):
    return sorted(
        (str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None)
        for p in folder.rglob("*")
    )


def test_only_an_ecoembed_product_is_replaced(tmp_path):
    """A user's folder, a file, a store of somebody else's, a link to a product: refused
    before anything is written, and left exactly as they were."""
    folder = tmp_path / "thesis"
    (folder / "data").mkdir(parents=True)
    (folder / "thesis.tex").write_text("results")
    (folder / "data" / "x.csv").write_text("1,2")
    a_file = tmp_path / "notes.zarr"
    a_file.write_text("not a store")
    foreign = tmp_path / "foreign.zarr"
    write_zarr(_cube(), foreign)  # a store, but its attributes say nothing of ecoembed
    product = tmp_path / "T1.zarr"
    write_zarr(_cube().assign_attrs(CUBE_TITLE), product)
    link = tmp_path / "link.zarr"
    link.symlink_to(product)
    before = {p: _tree(p) if p.is_dir() else p.read_bytes() for p in (folder, a_file, foreign)}
    for path in (folder, a_file, foreign, link):
        with pytest.raises(OutputExistsError, match="exists and is not an ecoembed product"):
            write_zarr(_cube(nt=1), path)
        with pytest.raises(OutputExistsError, match="exists and is not an ecoembed product"):
            with RegionWriter(path, _cube(nt=1)):
                pytest.fail("nothing may be written")
    for path, was in before.items():
        assert (_tree(path) if path.is_dir() else path.read_bytes()) == was
    assert link.resolve() == product and open_zarr(product).sizes["time"] == 4
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert entries == ["T1.zarr", "foreign.zarr", "link.zarr", "notes.zarr", "thesis"]

    write_zarr(_cube(nt=2), foreign, replace="any")  # the caller says it owns the path
    assert open_zarr(foreign).sizes["time"] == 2


def test_products_are_recognised_by_what_their_writers_record(products, products_cube, tmp_path):
    """The cube and the truth as the workflow writes them; foreign and broken stores not."""
    _, cube = products_cube
    assert product_kind(cube) == "cube" and is_ecoembed_product(cube, kind="cube")
    assert not is_ecoembed_product(cube, kind="embeddings")
    assert product_kind(products["truth_path"]) == "truth"
    foreign = tmp_path / "f.zarr"
    write_zarr(_cube().assign_attrs(title="my cube", model='{"epochs": 3}'), foreign)
    assert product_kind(foreign) is None
    broken = tmp_path / "b.zarr"
    broken.mkdir()
    (broken / "zarr.json").write_text("{not json")
    assert product_kind(broken) is None and product_kind(tmp_path / "missing.zarr") is None
    with pytest.raises(ValueError, match="unknown product kind"):
        is_ecoembed_product(cube, kind="cubes")


def test_region_writer_failing_on_entry_leaves_nothing(tmp_path, monkeypatch):
    def fail(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_zarr", fail)
    with pytest.raises(RuntimeError, match="disk full"), RegionWriter(tmp_path / "c.zarr", _cube()):
        pytest.fail("the block must not run")
    assert list(tmp_path.iterdir()) == []  # no temporary, no lock file
