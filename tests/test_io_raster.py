"""Cloud-Optimized GeoTIFF writing and validated reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import MemoryFile

from ecoembed.io import sentinel
from ecoembed.io.errors import InputDataError
from ecoembed.io.raster import (
    asset_declaration,
    check_asset_matches,
    is_cog,
    read_raster,
    write_cog,
)

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


def test_write_cog_writes_each_file_in_one_pass_in_large_tiles(tmp_path, monkeypatch):
    """What keeps write_cog fast (~10,000 calls per synthetic world), without a clock: GDAL's
    COG driver writes the file, tiles and overviews in one pass from memory (one dataset
    opened, for writing; no intermediate GeoTIFF translated or reopened), in DEFLATE tiles
    of 256 px rather than strips or small blocks. The timing itself is measured by
    benchmarks/write_cog.py."""
    import ecoembed.io.raster as raster

    opened = []
    real_open = raster.rasterio.open

    def counting_open(fp, mode="r", *args, **kwargs):
        opened.append((Path(fp).name, mode, kwargs.get("driver")))
        return real_open(fp, mode, *args, **kwargs)

    monkeypatch.setattr(raster.rasterio, "open", counting_open)
    path = tmp_path / "one.tif"
    write_cog(path, _dn((256, 256)), crs=32632, transform=T10, nodata=0, scale=1e-4, offset=-0.1)
    monkeypatch.undo()
    assert len(opened) == 1 and opened[0][1:] == ("w", "COG"), opened
    with rasterio.open(path) as src:
        assert src.block_shapes == [(256, 256)]
        assert src.compression == rasterio.enums.Compression.deflate
    assert is_cog(path)


# --- a file against what its STAC item declares ---------------------------------------

REAL_ITEMS = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "stac_items"
DECLARED = {"crs": "EPSG:32632", "transform": list(T10)[:6], "shape": [20, 30]}


def _asset(tmp_path, name="B04.tif", dtype=np.uint16, nodata=0, crs=32632, transform=T10):
    path = tmp_path / name
    write_cog(path, np.ones((20, 30), dtype), crs=crs, transform=transform, nodata=nodata)
    return path


def _refusal(path, **declared) -> str:
    with pytest.raises(InputDataError) as err:
        check_asset_matches(path, item="S2A_T1_20230601", **declared)
    assert err.value.path == path and err.value.item == "S2A_T1_20230601"
    assert str(err.value).startswith(f"{path} (item S2A_T1_20230601): does not match its STAC")
    return err.value.problem


def test_a_file_that_is_what_its_item_declares_passes(tmp_path):
    path = _asset(tmp_path)
    check_asset_matches(path, **DECLARED, dtype="uint16", nodata=0, item="x")
    with rasterio.open(path) as src:  # the reader's own open dataset, not a second open
        check_asset_matches(path, **DECLARED, dtype="uint16", nodata=0, dataset=src)
    # what the item does not state is not compared; a 3x3 transform (9 numbers) is fine
    check_asset_matches(path, transform=[*list(T10)[:6], 0.0, 0.0, 1.0])
    # a file that states no nodata is not refused for the item's (nothing to compare)
    check_asset_matches(_asset(tmp_path, "no_nodata.tif", nodata=None), nodata=0)
    # rounding far below a pixel is no mismatch
    check_asset_matches(path, transform=list(T10 @ Affine.translation(0.001, -0.001))[:6])
    float_path = _asset(tmp_path, "vv.tif", dtype=np.float32, nodata=np.nan)
    check_asset_matches(float_path, dtype="float32", nodata="nan")  # "nan" is JSON's NaN


def test_a_file_in_another_crs_is_refused_naming_both(tmp_path):
    path = _asset(tmp_path, crs=32610)  # same numbers, UTM zone 10: thousands of km away
    problem = _refusal(path, **DECLARED)
    assert (
        problem
        == "does not match its STAC item: CRS EPSG:32610 in the file, EPSG:32632 in the item"
    )


def test_a_shifted_transform_or_other_shape_is_refused_naming_both(tmp_path):
    shifted = T10 @ Affine.translation(0.5, 0)  # half a pixel east
    path = _asset(tmp_path, transform=shifted)
    problem = _refusal(path, **DECLARED)
    assert problem.endswith(
        "transform (10, 0, 600005, 0, -10, 5100000) in the file, "
        "(10, 0, 600000, 0, -10, 5100000) in the item"
    )
    problem = _refusal(_asset(tmp_path, "B08.tif"), shape=[20, 31], crs=32633)
    assert problem == (
        "does not match its STAC item: CRS EPSG:32632 in the file, EPSG:32633 in the item; "
        "shape (20, 30) in the file, (20, 31) in the item"
    )


def test_float_reflectance_where_the_item_says_uint16_is_refused(tmp_path):
    path = _asset(tmp_path, dtype=np.float32, nodata=np.nan)
    problem = _refusal(path, **DECLARED, dtype="uint16", nodata=0)
    assert problem == (
        "does not match its STAC item: data type float32 in the file, uint16 in the item; "
        "nodata nan in the file, 0 in the item"
    )


def test_a_gdal_path_is_checked_like_a_local_file():
    with MemoryFile() as mem:
        with mem.open(
            driver="GTiff",
            width=30,
            height=20,
            count=1,
            dtype="uint16",
            crs="EPSG:32632",
            transform=T10,
            nodata=0,
        ) as dst:
            dst.write(np.ones((1, 20, 30), np.uint16))
        assert mem.name.startswith("/vsimem/")
        check_asset_matches(mem.name, **DECLARED, dtype="uint16")
        problem = _refusal(mem.name, **DECLARED, dtype="int16")
        assert problem.endswith("data type uint16 in the file, int16 in the item")
    # a URL that cannot be opened is GDAL's error (the acquisition retries those), not ours
    with pytest.raises(rasterio.errors.RasterioIOError):
        check_asset_matches("/vsimem/gone.tif", crs=32632)


def test_an_unopenable_file_or_unusable_declaration_is_refused(tmp_path):
    with pytest.raises(InputDataError, match="nope.tif.*cannot open as a raster"):
        check_asset_matches(tmp_path / "nope.tif", crs=32632)
    with pytest.raises(InputDataError, match="declares an unusable crs 'EPSG:none'"):
        check_asset_matches(_asset(tmp_path), crs="EPSG:none")


def _item(properties, asset_fields):
    item = pystac.Item("i1", None, None, "2023-06-01T10:00:00Z", properties)
    item.add_asset("B04", pystac.Asset("B04.tif", extra_fields=asset_fields))
    return item


def test_asset_declaration_takes_the_assets_projection_over_the_items():
    item = _item(
        {"proj:code": "EPSG:32632", "proj:transform": [20, 0, 1, 0, -20, 2], "proj:shape": [5, 5]},
        {
            "proj:code": "EPSG:32633",
            "proj:transform": [10, 0, 3, 0, -10, 4],
            "raster:bands": [{"data_type": "uint16", "nodata": 0, "scale": 1e-4}],
        },
    )
    assert asset_declaration(item, "B04") == {
        "crs": "EPSG:32633",
        "transform": [10, 0, 3, 0, -10, 4],
        "shape": [5, 5],  # not on the asset: the item's
        "dtype": "uint16",
        "nodata": 0,
    }
    bare = _item({"proj:epsg": None, "proj:wkt2": CRS.from_epsg(3035).to_wkt()}, {})
    assert asset_declaration(bare, "B04") == {"crs": CRS.from_epsg(3035).to_wkt()}


@pytest.mark.skipif(not REAL_ITEMS.exists(), reason="../shared/realdata not present")
def test_asset_declaration_of_real_archive_items():
    """Earth Search S2: proj:epsg on the item, grid per asset; Planetary Computer S1: all on
    the item (9-number transform), float32 with nodata -32768."""
    d = json.loads(
        (
            REAL_ITEMS / "earth_search_v1_sentinel-2-l2a" / "S2B_33TWN_20220226_0_L2A.json"
        ).read_text()
    )
    es = asset_declaration(pystac.Item.from_dict(d), "scl")
    # (pystac migrates proj:epsg to proj:code "EPSG:n" on reading)
    assert CRS.from_user_input(es["crs"]) == CRS.from_epsg(d["properties"]["proj:epsg"])
    assert es["transform"] == d["assets"]["scl"]["proj:transform"]
    assert es["shape"] == d["assets"]["scl"]["proj:shape"] and es["dtype"] == "uint8"
    fc = json.loads(
        (
            REAL_ITEMS / "planetary_computer_sentinel-1-rtc" / "sentinel-1-rtc-pc-4items.json"
        ).read_text()
    )
    f = fc["features"][0] if isinstance(fc, dict) else fc[0]
    pc = asset_declaration(pystac.Item.from_dict(f), "vv")
    props = f["properties"]
    assert CRS.from_user_input(pc.pop("crs")) == CRS.from_epsg(props["proj:epsg"])
    assert pc == {
        "transform": props["proj:transform"],
        "shape": props["proj:shape"],
        "dtype": "float32",
        "nodata": -32768,
    }


def test_float32_nodata_matches_its_float64_spelling_in_the_item(tmp_path):
    """GDAL stores a float32 file's nodata -3.4e38 as float32; the item's JSON spells the
    same number in float64 (real Sentinel-1 GeoTIFFs in shared/realdata have it)."""
    from ecoembed.io.raster import check_asset_matches

    path = tmp_path / "vv.tif"
    t = Affine(30.0, 0.0, 594555.0, 0.0, -30.0, 8003065.0)
    write_cog(path, np.zeros((8, 8), np.float32), crs=32720, transform=t, nodata=-3.4e38)
    check_asset_matches(path, crs=32720, transform=t, shape=(8, 8), nodata=-3.4e38)
    with pytest.raises(InputDataError, match="nodata"):
        check_asset_matches(path, nodata=-3.3e38)
