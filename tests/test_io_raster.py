"""Cloud-Optimized GeoTIFF writing and validated reading."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from ecoembed.io import sentinel
from ecoembed.io.errors import InputDataError
from ecoembed.io.raster import is_cog, read_raster, write_cog

T10 = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5100000.0)


def _dn(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 10000, size=shape, dtype=np.uint16)


def test_s2_band_roundtrip_with_scale_offset(tmp_path):
    path = tmp_path / "B04.tif"
    data = _dn((256, 256))
    data[0, 0] = sentinel.S2_NODATA
    data[5, 7] = 1500
    write_cog(
        path,
        data,
        crs=32632,
        transform=T10,
        nodata=sentinel.S2_NODATA,
        scale=sentinel.S2_SCALE,
        offset=sentinel.S2_OFFSET,
        band_names=["B04"],
        tags={"platform": "sentinel-2a"},
    )
    assert is_cog(path)
    arr, prof = read_raster(path)
    assert arr.shape == (1, 256, 256) and arr.dtype == np.uint16
    np.testing.assert_array_equal(arr[0], data)
    assert prof["crs"] == CRS.from_epsg(32632)
    assert prof["transform"] == T10
    assert prof["nodata"] == 0
    assert prof["dtype"] == "uint16"
    assert prof["scales"] == (1e-4,) and prof["offsets"] == (-0.1,)
    assert prof["descriptions"] == ("B04",)
    assert prof["tags"]["platform"] == "sentinel-2a"
    # DN 1500 -> reflectance 0.05 with the stored scale/offset
    refl = arr[0, 5, 7] * prof["scales"][0] + prof["offsets"][0]
    assert refl == pytest.approx(0.05)

    with rasterio.open(path) as src:  # what any GDAL-based reader sees
        assert src.scales == (1e-4,) and src.offsets == (-0.1,)
        assert src.block_shapes == [(256, 256)]
        ims = src.tags(ns="IMAGE_STRUCTURE")
        assert (ims["LAYOUT"], ims["COMPRESSION"], ims["PREDICTOR"]) == ("COG", "DEFLATE", "2")
    # nothing but the output: no temporary, no .aux.xml side car
    assert sorted(p.name for p in tmp_path.iterdir()) == ["B04.tif"]


def test_small_raster_uses_one_128_tile(tmp_path):
    path = tmp_path / "B05.tif"
    data = _dn((128, 128), seed=1)
    write_cog(
        path,
        data,
        crs="EPSG:32632",
        transform=Affine(20.0, 0.0, 600000.0, 0.0, -20.0, 5100000.0),
        nodata=0,
    )
    arr, prof = read_raster(path)
    np.testing.assert_array_equal(arr[0], data)
    assert prof["transform"].a == 20.0
    assert prof["scales"] == (1.0,) and prof["offsets"] == (0.0,)  # GDAL defaults
    with rasterio.open(path) as src:
        assert src.block_shapes == [(128, 128)]
    assert is_cog(path)


def test_multiband_float_with_nan_nodata(tmp_path):
    path = tmp_path / "s1.tif"
    data = np.random.default_rng(2).gamma(4.4, 0.05 / 4.4, size=(2, 64, 48)).astype(np.float32)
    data[1, 3, 4] = np.nan
    write_cog(
        path,
        data,
        crs=CRS.from_epsg(32633),
        transform=T10,
        nodata=np.nan,
        band_names=["VV", "VH"],
        scale=[1.0, 2.0],
        offset=0.0,
    )
    arr, prof = read_raster(path, item="S1A_x")
    assert arr.shape == (2, 64, 48) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr, data)  # NaN == NaN for assert_array_equal
    assert np.isnan(prof["nodata"])
    assert prof["crs"].to_epsg() == 32633
    assert prof["descriptions"] == ("VV", "VH")
    assert prof["scales"] == (1.0, 2.0) and prof["offsets"] == (0.0, 0.0)
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"


def test_large_class_map_gets_nearest_overviews(tmp_path):
    path = tmp_path / "SCL.tif"
    classes = np.array([4, 5, 8, 9], dtype=np.uint8)
    data = classes[np.random.default_rng(3).integers(0, 4, size=(600, 600))]
    write_cog(path, data, crs=32632, transform=T10, nodata=0, overview_resampling="nearest")
    assert is_cog(path)
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4]  # until the smallest fits one 256 px tile
        ov = src.read(1, out_shape=(300, 300))
    assert set(np.unique(ov)) <= set(classes.tolist())  # nearest never invents a class


def test_write_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        write_cog(tmp_path / "a.tif", np.zeros((1, 1, 2, 2)), crs=32632, transform=T10, nodata=0)
    with pytest.raises(ValueError, match="2 band names for 1 bands"):
        write_cog(
            tmp_path / "a.tif",
            np.zeros((2, 2), np.uint16),
            crs=32632,
            transform=T10,
            nodata=0,
            band_names=["a", "b"],
        )
    with pytest.raises(ValueError, match="nodata 300"):
        write_cog(
            tmp_path / "a.tif", np.zeros((2, 2), np.uint8), crs=32632, transform=T10, nodata=300
        )
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "B02.tif"
    write_cog(path, np.full((8, 8), 7, np.uint16), crs=32632, transform=T10, nodata=0)
    with pytest.raises(TypeError):  # GDAL has no float16
        write_cog(path, np.ones((8, 8), np.float16), crs=32632, transform=T10, nodata=None)
    arr, _ = read_raster(path)
    assert int(arr[0, 0, 0]) == 7
    assert [p.name for p in tmp_path.iterdir()] == ["B02.tif"]


def test_read_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.tif"
    with pytest.raises(InputDataError, match="nope.tif.*does not exist") as info:
        read_raster(missing, item="S2A_1")
    assert info.value.path == missing and info.value.item == "S2A_1"
    assert "(item S2A_1)" in str(info.value)

    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"this is not a tiff")
    with pytest.raises(InputDataError, match="garbage.tif: unreadable or corrupt"):
        read_raster(garbage)
    with pytest.raises(InputDataError, match="garbage.tif"):
        is_cog(garbage)

    good = tmp_path / "good.tif"
    write_cog(good, _dn((256, 256)), crs=32632, transform=T10, nodata=0)
    blob = good.read_bytes()
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(blob[: len(blob) // 2])  # header intact, tile data cut
    with pytest.raises(InputDataError, match="truncated.tif: unreadable or corrupt") as info:
        read_raster(truncated)
    assert "TIFF" in info.value.problem  # GDAL's reason is kept, not "see previous exception"


def test_plain_striped_geotiff_is_not_cog(tmp_path):
    path = tmp_path / "plain.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=300,
        width=300,
        count=1,
        dtype="uint8",
        crs="EPSG:32632",
        transform=T10,
    ) as dst:
        dst.write(np.ones((1, 300, 300), np.uint8))
    assert not is_cog(path)
    arr, prof = read_raster(path)
    assert arr.shape == (1, 300, 300) and prof["nodata"] is None


def test_write_cog_is_fast_enough(tmp_path):
    # ~10,000 of these per synthetic world: guard against an accidental slow path
    # (generous bound; the measured time is a few ms).
    data = _dn((256, 256))
    write_cog(tmp_path / "warm.tif", data, crs=32632, transform=T10, nodata=0)
    n = 20
    start = time.perf_counter()
    for i in range(n):
        write_cog(
            tmp_path / f"{i}.tif", data, crs=32632, transform=T10, nodata=0, scale=1e-4, offset=-0.1
        )
    assert (time.perf_counter() - start) / n < 0.05
