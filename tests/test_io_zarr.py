"""Zarr stores with CRS, datetime and string coordinates, written atomically."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from affine import Affine

from ecoembed.io.errors import InputDataError
from ecoembed.io.zarrio import open_zarr, write_zarr

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


def test_encoding_chunks_and_overwrite(tmp_path):
    path = tmp_path / "T1.zarr"
    write_zarr(_cube(), path, crs="EPSG:32632")
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
    write_zarr(_cube(), path, crs=32632)
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
