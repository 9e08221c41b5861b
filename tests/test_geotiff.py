"""GeoTIFF/STAC embedding products: int8 coding within half a step, files that rasterio
and pystac open with the store's grid and values, date selection, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
from pystac.extensions.raster import RasterExtension

from ecoembed.embed.export import export_tile
from ecoembed.embed.geotiff import (
    INT8_NODATA,
    Quantisation,
    store_quantisation,
    write_embedding_geotiffs,
)
from ecoembed.io.errors import InputDataError
from ecoembed.io.raster import is_cog
from ecoembed.io.zarrio import open_zarr
from tests.conftest import cut_cube
from tests.test_embed import random_checkpoint


def test_int8_coding_spans_the_range_and_errs_by_at_most_half_a_step():
    rng = np.random.default_rng(0)
    lo, hi = np.array([-2.0, 0.0, 5.0]), np.array([3.0, 0.5, 5.0])  # last: constant
    coding = Quantisation.spanning(lo, hi)
    assert coding.encode(lo[:, None])[:, 0].tolist() == [-127, -127, 0]
    assert coding.encode(hi[:, None])[:2, 0].tolist() == [127, 127]
    values = rng.uniform(lo[:, None], hi[:, None], (3, 1000))
    back = coding.decode(coding.encode(values))
    err = np.abs(back - values)
    assert (err[:2] <= coding.scale[:2, None] / 2 + 1e-6).all()
    assert err[:2].max() > coding.scale[:2].min() / 4  # it does round
    assert np.allclose(back[2], 5.0)
    values[1, 3] = np.nan
    dn = coding.encode(values)
    assert dn[1, 3] == INT8_NODATA and (dn[np.isfinite(values)] != INT8_NODATA).all()
    assert np.isnan(coding.decode(dn)[1, 3])
    with pytest.raises(ValueError, match="no finite value"):
        Quantisation.spanning(np.array([np.inf]), np.array([-np.inf]))


@pytest.fixture(scope="module")
def store(products_cube, tmp_path_factory):
    _, shared = products_cube
    folder = tmp_path_factory.mktemp("geotiff")
    cube_path = cut_cube(shared, folder / "cube.zarr", dates=8)  # the whole grid, 8 dates
    out = folder / "tile.zarr"
    export_tile(
        cube_path, random_checkpoint(folder / "fusion.pt"), embeddings_path=out, progress=False
    )
    return out


def _item_files(catalog: pystac.Catalog) -> dict[str, pystac.Item]:
    return {
        Path(item.assets["embedding"].get_absolute_href()).name: item
        for item in catalog.get_items(recursive=True)
    }


def test_int8_geotiffs_open_with_rasterio_and_pystac(store, tmp_path):
    ds = open_zarr(store)
    times = pd.DatetimeIndex(ds["time"].values)
    start, end = f"{times[1]:%Y-%m-%d}", f"{times[3]:%Y-%m-%d}"
    out = tmp_path / "tifs"
    table = write_embedding_geotiffs(store, out, start=start, end=end, progress=False)
    assert list(table["date"]) == list(times[1:4])
    coding = store_quantisation(ds)
    catalog = pystac.Catalog.from_file(str(out / "catalog.json"))
    items = _item_files(catalog)
    assert sorted(items) == sorted(table["file"])
    for k, row in table.iterrows():
        path = out / row["file"]
        assert is_cog(path)
        with rasterio.open(path) as src:
            assert src.dtypes[0] == "int8" and src.count == ds.sizes["dim"]
            assert src.nodata == INT8_NODATA
            assert src.crs == ds.rio.crs and src.transform == ds.rio.transform()
            np.testing.assert_allclose(src.scales, coding.scale)
            np.testing.assert_allclose(src.offsets, coding.offset)
            dn = src.read()
        values = ds["embedding"].isel(time=1 + k).values
        decoded = (
            dn * np.asarray(src.scales)[:, None, None] + np.asarray(src.offsets)[:, None, None]
        )
        err = np.abs(decoded - values)
        assert (err <= coding.scale[:, None, None] / 2 + 1e-5).all()
        assert row["max_abs_error"] == pytest.approx(err.max(), rel=1e-4)
        item = items[row["file"]]
        assert item.datetime.replace(tzinfo=None) == times[1 + k].to_pydatetime()
        bands = RasterExtension.ext(item.assets["embedding"]).bands
        assert [b.scale for b in bands] == pytest.approx(coding.scale)
        assert [b.offset for b in bands] == pytest.approx(coding.offset)
        assert bands[0].nodata == INT8_NODATA and bands[0].data_type == "int8"
        assert item.properties["proj:code"] == f"EPSG:{ds.rio.crs.to_epsg()}"
        # links are relative: the folder can be moved or served as it is
        saved = json.loads(Path(item.get_self_href()).read_text())
        assert saved["assets"]["embedding"]["href"] == f"../../{row['file']}"
        # what made the values travels with them: the checkpoint's hashes
        assert item.properties["ecoembed:model"] == ds.attrs["model"]
        with rasterio.open(path) as src:
            assert src.tags()["ecoembed_model"] == ds.attrs["model"]


def test_float32_geotiffs_keep_the_values_exactly(store, tmp_path):
    ds = open_zarr(store)
    out = tmp_path / "f32"
    last = f"{pd.DatetimeIndex(ds['time'].values)[-1]:%Y-%m-%d}"
    table = write_embedding_geotiffs(store, out, start=last, quantise=False, progress=False)
    assert len(table) == 1 and "rmse" not in table
    with rasterio.open(out / table["file"].iloc[-1]) as src:
        assert src.dtypes[0] == "float32" and src.scales == (1.0,) * src.count
        np.testing.assert_array_equal(src.read(), ds["embedding"].isel(time=-1).values)


def test_geotiff_refusals_leave_nothing_behind(store, products_cube, tmp_path):
    _, cube_path = products_cube
    with pytest.raises(InputDataError, match="not an ecoembed embeddings"):
        write_embedding_geotiffs(cube_path, tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="no date from 1990-01-01"):
        write_embedding_geotiffs(store, tmp_path / "b", start="1990-01-01", end="1990-02-01")
    (tmp_path / "c").mkdir()
    with pytest.raises(FileExistsError, match="exists"):
        write_embedding_geotiffs(store, tmp_path / "c", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_cli_writes_geotiffs(store, tmp_path):
    out = tmp_path / "cli"
    run = subprocess.run(
        [sys.executable, "-m", "ecoembed", "geotiff", "--store", str(store), "--out", str(out)]
        + ["--end", "2022-01-01"],  # one date: the command, not the writer, is under test
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "max_abs_error" in run.stdout and (out / "catalog.json").is_file()
    again = subprocess.run(
        [sys.executable, "-m", "ecoembed", "geotiff", "--store", str(store), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 1 and "exists" in again.stderr
