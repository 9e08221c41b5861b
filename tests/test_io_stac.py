"""STAC items (eo/proj/raster/sar/sat), item collections and the merged catalog."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pystac
import pytest
from affine import Affine
from pystac.extensions.eo import EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension
from pystac.extensions.sar import SarExtension
from pystac.extensions.sat import OrbitState, SatExtension

from ecoembed.io import sentinel, stac
from ecoembed.io.errors import InputDataError
from ecoembed.io.raster import read_raster, write_cog

EPSG = 32632
# 160 m x 160 m on the zone's central meridian (9 E), just north of the equator.
BBOX = (500000.0, 0.0, 500160.0, 160.0)
T10 = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 160.0)
T20 = Affine(20.0, 0.0, 500000.0, 0.0, -20.0, 160.0)


def _s2_assets(root, item_id, *, write=True):
    assets = {}
    for band in sentinel.S2_BANDS:
        t, shape = (T10, (16, 16)) if band.resolution_m == 10 else (T20, (8, 8))
        assets[band.name] = (str(root / "raw" / item_id / f"{band.name}.tif"), t, shape)
    assets["SCL"] = (str(root / "raw" / item_id / "SCL.tif"), T20, (8, 8))
    if write:
        for key, (href, t, shape) in assets.items():
            dtype = np.uint8 if key == "SCL" else np.uint16
            write_cog(
                href,
                np.full(shape, 4 if key == "SCL" else 1500, dtype),
                crs=EPSG,
                transform=t,
                nodata=0,
            )
    return assets


def _s1_assets(root, item_id, *, write=True):
    assets = {k: (str(root / "raw" / item_id / f"{k}.tif"), T10, (16, 16)) for k in ("vv", "vh")}
    if write:
        for href, t, shape in assets.values():
            write_cog(href, np.full(shape, 0.05, np.float32), crs=EPSG, transform=t, nodata=np.nan)
    return assets


def _s2(root, item_id="S2A_T1_20230601", tile="T1", day=1, write=True):
    return stac.make_s2_item(
        item_id,
        tile=tile,
        datetime=dt.datetime(2023, 6, day, 10, 30),
        epsg=EPSG,
        bbox=BBOX,
        assets=_s2_assets(root, item_id, write=write),
        cloud_cover=12.5,
        mgrs_tile="32NMA",
    )


def _s1(root, item_id="S1A_T1_20230602", tile="T1", day=2, write=True):
    return stac.make_s1_item(
        item_id,
        tile=tile,
        datetime=f"2023-06-{day:02d}T05:40:00Z",
        epsg=EPSG,
        bbox=BBOX,
        assets=_s1_assets(root, item_id, write=write),
        orbit_state="descending",
        relative_orbit=66,
    )


def test_s2_item_fields(tmp_path):
    item = _s2(tmp_path, write=False)
    assert item.collection_id == stac.S2_COLLECTION_ID
    assert item.datetime == dt.datetime(2023, 6, 1, 10, 30, tzinfo=dt.UTC)  # naive -> UTC
    props = item.properties
    assert props[stac.TILE_PROPERTY] == "T1"
    assert props["platform"] == "sentinel-2a" and props["constellation"] == "sentinel-2"
    assert props["s2:processing_baseline"] == "05.10" and props["s2:mgrs_tile"] == "32NMA"
    assert EOExtension.ext(item).cloud_cover == 12.5

    proj = ProjectionExtension.ext(item)
    assert proj.code == "EPSG:32632"
    assert proj.bbox == list(BBOX)
    # WGS84 footprint: x = 500000 is the central meridian 9 E; 160 m north of the equator is
    # 160 / 0.9996 / 110574.3 m per degree = 0.0014476 deg.
    west, south, east, north = item.bbox
    assert west == pytest.approx(9.0, abs=1e-7) and south == pytest.approx(0.0, abs=1e-7)
    assert north == pytest.approx(0.0014476, abs=2e-7)
    assert east == pytest.approx(9.0014379, abs=2e-7)  # 160 / 0.9996 / 111319.5 m per deg
    assert item.geometry["type"] == "Polygon" and len(item.geometry["coordinates"][0]) == 5

    assert list(item.assets) == [*sentinel.S2_BAND_NAMES, "SCL"]
    b02, b8a, scl = item.assets["B02"], item.assets["B8A"], item.assets["SCL"]
    assert b02.media_type == pystac.MediaType.COG and b02.roles == ["data"]
    # 10 m and 20 m assets have their own grids
    assert ProjectionExtension.ext(b02).transform == [10.0, 0.0, 500000.0, 0.0, -10.0, 160.0]
    assert ProjectionExtension.ext(b02).shape == [16, 16]
    assert ProjectionExtension.ext(b8a).transform[0] == 20.0
    assert ProjectionExtension.ext(b8a).shape == [8, 8]

    (eo_band,) = EOExtension.ext(b8a).bands
    assert (eo_band.name, eo_band.common_name) == ("B8A", "nir08")
    assert eo_band.center_wavelength == 0.865 and eo_band.full_width_half_max == 0.033

    (rb,) = RasterExtension.ext(b02).bands
    assert rb.scale == 1e-4 and rb.offset == -0.1 and rb.nodata == 0
    assert rb.data_type == "uint16" and rb.spatial_resolution == 10.0
    assert 1500 * rb.scale + rb.offset == pytest.approx(0.05)
    assert RasterExtension.ext(b8a).bands[0].spatial_resolution == 20.0

    (scl_rb,) = RasterExtension.ext(scl).bands
    assert scl.title == "Scene classification map" and scl.roles == ["data"]
    assert scl_rb.data_type == "uint8" and scl_rb.nodata == 0
    assert scl_rb.scale is None and scl_rb.offset is None
    assert "eo:bands" not in scl.extra_fields

    d = item.to_dict()
    for ext in ("eo", "projection", "raster"):
        assert any(f"/{ext}/" in uri for uri in d["stac_extensions"])
    json.dumps(d, allow_nan=False)


def test_s1_item_fields(tmp_path):
    item = _s1(tmp_path, write=False)
    assert item.collection_id == stac.S1_COLLECTION_ID
    assert item.properties["constellation"] == "sentinel-1"
    assert item.properties["platform"] == "sentinel-1a"
    sar = SarExtension.ext(item)
    assert sar.instrument_mode == "IW" and sar.frequency_band == "C"
    assert sar.center_frequency == 5.405 and sar.product_type == "GRD"
    assert [p.value for p in sar.polarizations] == ["VV", "VH"]
    assert (sar.resolution_range, sar.resolution_azimuth) == (20.0, 22.0)
    assert sar.looks_equivalent_number == 4.4
    sat = SatExtension.ext(item)
    assert sat.orbit_state == OrbitState.DESCENDING and sat.relative_orbit == 66
    assert ProjectionExtension.ext(item).code == "EPSG:32632"
    assert list(item.assets) == ["vv", "vh"]
    (rb,) = RasterExtension.ext(item.assets["vh"]).bands
    assert rb.data_type == "float32" and rb.spatial_resolution == 10.0
    d = item.to_dict()
    # NaN nodata is spelled "nan" so the item stays valid JSON
    assert d["assets"]["vv"]["raster:bands"][0]["nodata"] == "nan"
    json.dumps(d, allow_nan=False)


def test_item_builders_reject_bad_arguments(tmp_path):
    assets = _s2_assets(tmp_path, "x", write=False)
    with pytest.raises(ValueError, match="unknown Sentinel-2 asset keys"):
        stac.make_s2_item(
            "x",
            tile="T1",
            datetime="2023-06-01",
            epsg=EPSG,
            bbox=BBOX,
            assets={**assets, "B01": assets["B02"]},
            cloud_cover=0,
        )
    with pytest.raises(ValueError, match="cloud_cover"):
        stac.make_s2_item(
            "x",
            tile="T1",
            datetime="2023-06-01",
            epsg=EPSG,
            bbox=BBOX,
            assets=assets,
            cloud_cover=150,
        )
    with pytest.raises(ValueError, match="bbox"):
        stac.make_s2_item(
            "x",
            tile="T1",
            datetime="2023-06-01",
            epsg=EPSG,
            bbox=(1.0, 0.0, 0.0, 1.0),
            assets=assets,
            cloud_cover=0,
        )
    with pytest.raises(ValueError):
        stac.make_s1_item(
            "y",
            tile="T1",
            datetime="2023-06-01",
            epsg=EPSG,
            bbox=BBOX,
            assets=_s1_assets(tmp_path, "y", write=False),
            orbit_state="sideways",
            relative_orbit=1,
        )


def test_item_collection_stores_relative_hrefs(tmp_path):
    items = [_s2(tmp_path), _s1(tmp_path)]
    original = items[0].assets["B02"].href
    path = tmp_path / "items" / "T1.json"
    stac.write_item_collection(items, path)
    assert items[0].assets["B02"].href == original  # caller's items untouched

    d = json.loads(path.read_text())
    assert d["type"] == "FeatureCollection" and len(d["features"]) == 2
    assert d["features"][0]["assets"]["B02"]["href"] == "../raw/S2A_T1_20230601/B02.tif"
    assert d["features"][1]["assets"]["vv"]["href"] == "../raw/S1A_T1_20230602/vv.tif"

    back = stac.read_item_collection(path, within=tmp_path)  # the assets are in a sibling
    assert [i.id for i in back] == ["S2A_T1_20230601", "S1A_T1_20230602"]
    assert back[0].assets["B02"].href == original
    assert RasterExtension.ext(back[0].assets["B02"]).bands[0].scale == 1e-4
    assert back[0].datetime == items[0].datetime


def test_item_collection_relative_input_hrefs_are_cwd_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    item = _s1(tmp_path, write=False)
    item.assets["vv"].href = "results/raw/vv.tif"  # as a Snakemake rule would pass it
    item.assets["vh"].href = "results/raw/vh.tif"
    stac.write_item_collection([item], tmp_path / "results" / "items" / "T1.json")
    (back,) = stac.read_item_collection(
        tmp_path / "results" / "items" / "T1.json", within=tmp_path / "results"
    )
    assert back.assets["vv"].href == str(tmp_path / "results" / "raw" / "vv.tif")
    # a URL is kept on writing, but the raw layout is local: reading refuses it
    item.assets["vh"].href = "https://example.org/vh.tif"
    stac.write_item_collection([item], tmp_path / "results" / "items" / "T2.json")
    d = json.loads((tmp_path / "results" / "items" / "T2.json").read_text())
    assert d["features"][0]["assets"]["vh"]["href"] == "https://example.org/vh.tif"
    with pytest.raises(InputDataError, match="is a URL, not a file"):
        stac.read_item_collection(tmp_path / "results" / "items" / "T2.json", within=tmp_path)


def test_read_item_collection_errors(tmp_path):
    with pytest.raises(InputDataError, match="missing.json: item collection does not exist"):
        stac.read_item_collection(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(InputDataError, match="bad.json: item collection is not valid JSON"):
        stac.read_item_collection(bad)
    notfc = tmp_path / "notfc.json"
    notfc.write_text('{"type": "Feature"}')
    with pytest.raises(InputDataError, match="notfc.json: not a GeoJSON FeatureCollection"):
        stac.read_item_collection(notfc)
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "id": "a"}]}')
    with pytest.raises(InputDataError, match=r"broken.json \(item a\): invalid STAC item"):
        stac.read_item_collection(broken)


def _two_tiles(root):
    paths = []
    for tile, days in (("T1", (1, 2)), ("T2", (3, 4))):
        items = [
            _s2(root, f"S2A_{tile}_202306{days[0]:02d}", tile=tile, day=days[0]),
            _s1(root, f"S1A_{tile}_202306{days[1]:02d}", tile=tile, day=days[1]),
        ]
        path = root / "items" / f"{tile}.json"
        stac.write_item_collection(items, path)
        paths.append(path)
    return paths


def test_build_catalog_layout_and_readback(tmp_path):
    paths = _two_tiles(tmp_path)
    catalog_path = tmp_path / "catalog.json"
    stac.build_catalog(paths, catalog_path, title="test inputs")

    s2_json = tmp_path / "sentinel-2-l2a" / "S2A_T1_20230601" / "S2A_T1_20230601.json"
    assert s2_json.is_file()
    assert (tmp_path / "sentinel-1-rtc" / "collection.json").is_file()
    d = json.loads(s2_json.read_text())
    assert d["assets"]["B02"]["href"] == "../../raw/S2A_T1_20230601/B02.tif"
    assert not any(link["rel"] == "self" for link in d["links"])  # self-contained

    cat = pystac.Catalog.from_file(str(catalog_path))
    assert cat.title == "test inputs"
    assert sorted(c.id for c in cat.get_children()) == ["sentinel-1-rtc", "sentinel-2-l2a"]
    s2c = cat.get_child("sentinel-2-l2a")
    assert s2c.license == "other" and "Copernicus Sentinel" in s2c.description
    interval = s2c.extent.temporal.intervals[0]
    assert interval[0] == dt.datetime(2023, 6, 1, 10, 30, tzinfo=dt.UTC)
    assert interval[1] == dt.datetime(2023, 6, 3, 10, 30, tzinfo=dt.UTC)
    assert s2c.extent.spatial.bboxes[0][0] == pytest.approx(9.0, abs=1e-7)

    items = stac.read_catalog_items(catalog_path)
    assert [i.id for i in items] == [
        "S2A_T1_20230601",
        "S1A_T1_20230602",
        "S2A_T2_20230603",
        "S1A_T2_20230604",
    ]
    t2_s1 = stac.read_catalog_items(catalog_path, collection_id=stac.S1_COLLECTION_ID, tile="T2")
    assert [i.id for i in t2_s1] == ["S1A_T2_20230604"]
    assert SatExtension.ext(t2_s1[0]).relative_orbit == 66
    href = t2_s1[0].assets["vh"].href
    assert href == str(tmp_path / "raw" / "S1A_T2_20230604" / "vh.tif")
    arr, _ = read_raster(href)
    assert arr[0, 0, 0] == pytest.approx(0.05)


def test_catalog_is_relocatable(tmp_path):
    paths = _two_tiles(tmp_path / "a")
    stac.build_catalog(paths, tmp_path / "a" / "catalog.json")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    items = stac.read_catalog_items(tmp_path / "b" / "catalog.json", tile="T1")
    assert len(items) == 2
    for item in items:
        for asset in item.assets.values():
            assert asset.href.startswith(str(tmp_path / "b"))
            read_raster(asset.href, item=item.id)


def test_build_catalog_rejects_duplicate_ids(tmp_path):
    path1 = tmp_path / "items" / "T1.json"
    stac.write_item_collection([_s1(tmp_path, write=False)], path1)
    path2 = tmp_path / "items" / "T1_again.json"
    shutil.copy(path1, path2)
    with pytest.raises(InputDataError, match=r"T1_again.json \(item S1A_T1_20230602\): dup"):
        stac.build_catalog([path1, path2], tmp_path / "catalog.json")
    assert not (tmp_path / "catalog.json").exists() and not (tmp_path / "sentinel-1-rtc").exists()


def test_interrupted_build_leaves_no_catalog_json(tmp_path, monkeypatch):
    paths = _two_tiles(tmp_path)
    calls = []
    real_save = pystac.Item.save_object

    def failing_save(self, *args, **kwargs):
        calls.append(self.id)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(pystac.Item, "save_object", failing_save)
    with pytest.raises(OSError, match="disk full"):
        stac.build_catalog(paths, tmp_path / "catalog.json")
    assert not (tmp_path / "catalog.json").exists()
    leftovers = [p.name for p in tmp_path.rglob(".*")]
    assert leftovers == []  # no temporary files either


def test_read_catalog_errors(tmp_path):
    with pytest.raises(InputDataError, match="catalog.json: STAC catalog does not exist"):
        stac.read_catalog_items(tmp_path / "catalog.json")
    paths = _two_tiles(tmp_path)
    catalog_path = tmp_path / "catalog.json"
    stac.build_catalog(paths, catalog_path)
    with pytest.raises(InputDataError, match="no collection 'landsat'"):
        stac.read_catalog_items(catalog_path, collection_id="landsat")
    gone = tmp_path / "sentinel-1-rtc" / "S1A_T2_20230604" / "S1A_T2_20230604.json"
    gone.unlink()
    with pytest.raises(InputDataError, match="S1A_T2_20230604.json: unreadable STAC item"):
        stac.read_catalog_items(catalog_path)


def test_tile_item_declares_the_grid_and_item_grid_reads_it_back():
    from ecoembed.io.grid import GridSpec

    t = Affine(10.0, 0.0, 640_000.0, 0.0, -10.0, 5_650_000.0)
    item = stac.make_tile_item(
        "tile07", epsg=32632, transform=t, shape=(128, 96), start="2022-01-01", end="2022-12-31"
    )
    assert item.collection_id == stac.TILES_COLLECTION_ID and item.datetime is None
    grid = stac.item_grid(item)
    assert grid == GridSpec(32632, t, 128, 96)
    assert grid.bounds == (640_000.0, 5_648_720.0, 640_960.0, 5_650_000.0)
    assert grid.x_coords()[0] == 640_005.0 and grid.y_coords()[-1] == 5_648_725.0
    assert [w.width for w in grid.windows(64)] == [64, 32, 64, 32]


def test_item_without_projection_is_an_error_naming_the_item():
    t = Affine(10.0, 0.0, 640_000.0, 0.0, -10.0, 5_650_000.0)
    item = stac.make_tile_item(
        "tile07", epsg=32632, transform=t, shape=(8, 8), start="2022-01-01", end="2022-12-31"
    )
    del item.properties["proj:code"]
    with pytest.raises(InputDataError, match=r"tile07.*no projection information"):
        stac.item_grid(item, "catalog.json")


# --- catalogs someone gave us: nothing outside their folder, nothing over the network ------


def _collection_with(tmp_path, href: str, item_id: str = "S1A_T1_20230602") -> object:
    path = tmp_path / "tiles" / "T1" / "items.json"
    stac.write_item_collection([_s1(tmp_path / "tiles" / "T1", item_id=item_id)], path)
    d = json.loads(path.read_text())
    d["features"][0]["assets"]["vv"]["href"] = href
    path.write_text(json.dumps(d))
    return path


@pytest.mark.parametrize(
    "href, problem",
    [
        ("../../../outside/vv.tif", "points outside the folder"),
        ("/etc/passwd", "points outside the folder"),
        ("http://example.org/vv.tif", "is a URL, not a file"),
        ("s3://bucket/vv.tif", "is a URL, not a file"),
    ],
)
def test_item_collection_asset_outside_its_folder_is_refused(tmp_path, href, problem):
    path = _collection_with(tmp_path, href)
    with pytest.raises(InputDataError, match=r"items.json \(item S1A_T1_20230602\): asset href"):
        stac.read_item_collection(path)
    with pytest.raises(InputDataError, match=problem):
        stac.read_item_collection(path)
    # a folder above that holds it is allowed when the caller says so
    if href.startswith("../"):
        assert stac.read_item_collection(path, within=tmp_path.parent.parent)


@pytest.mark.parametrize("bad_id", ["../../evil", "a/b", ".hidden", "x/../../y", ""])
def test_unsafe_item_ids_are_refused_before_anything_is_written(tmp_path, bad_id):
    path = tmp_path / "tiles" / "T1" / "items.json"
    stac.write_item_collection([_s1(tmp_path / "tiles" / "T1")], path)
    d = json.loads(path.read_text())
    d["features"][0]["id"] = bad_id
    path.write_text(json.dumps(d))
    with pytest.raises(InputDataError, match="cannot name a file"):
        stac.build_catalog([path], tmp_path / "raw" / "catalog.json")
    assert not (tmp_path / "raw").exists() and not (tmp_path.parent / "evil").exists()


def _catalog(tmp_path):
    paths = _two_tiles(tmp_path)
    catalog_path = tmp_path / "catalog.json"
    stac.build_catalog(paths, catalog_path)
    return catalog_path


def test_catalog_links_to_urls_are_refused_not_fetched(tmp_path, monkeypatch):
    catalog_path = _catalog(tmp_path)
    d = json.loads(catalog_path.read_text())
    for link in d["links"]:
        if link["rel"] == "child":
            link["href"] = "http://example.org/sentinel-2-l2a/collection.json"
    catalog_path.write_text(json.dumps(d))
    fetched = []
    monkeypatch.setattr(
        pystac.stac_io.DefaultStacIO,
        "_read_text_from_url"
        if hasattr(pystac.stac_io.DefaultStacIO, "_read_text_from_url")
        else "read_text_from_href",
        lambda self, href, *a, **k: fetched.append(href) or "{}",
    )
    with pytest.raises(InputDataError, match="links to a URL"):
        stac.read_catalog_items(catalog_path)
    assert fetched == []


def test_catalog_links_and_assets_outside_its_folder_are_refused(tmp_path):
    catalog_path = _catalog(tmp_path / "raw")
    # an item link that climbs out of the catalog's folder
    coll = tmp_path / "raw" / "sentinel-1-rtc" / "collection.json"
    d = json.loads(coll.read_text())
    outside = tmp_path / "elsewhere.json"
    item = next(lk for lk in d["links"] if lk["rel"] == "item")
    shutil.copy(coll.parent / item["href"], outside)
    item["href"] = "../../elsewhere.json"
    coll.write_text(json.dumps(d))
    with pytest.raises(InputDataError, match="link points outside the catalog's folder"):
        stac.read_catalog_items(catalog_path)
    # an asset that does
    item["href"] = "./S1A_T1_20230602/S1A_T1_20230602.json"
    coll.write_text(json.dumps(d))
    item_path = coll.parent / "S1A_T1_20230602" / "S1A_T1_20230602.json"
    di = json.loads(item_path.read_text())
    di["assets"]["vv"]["href"] = "../../../elsewhere.tif"
    item_path.write_text(json.dumps(di))
    with pytest.raises(InputDataError, match=r"asset href .* points outside the folder"):
        stac.read_catalog_items(catalog_path)
