"""Real-data acquisition (issue #8), offline: a static STAC catalog of local COGs in another
UTM zone and at other resolutions than the tile grid, searched and loaded through the same
client code (pystac-client, odc-stac) that talks to a STAC API, then catalogued and cubed
as the workflow does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.warp import transform as warp_transform

from ecoembed.acquire import load
from ecoembed.acquire.batches import acquire_batch, write_tile_items
from ecoembed.acquire.load import acquire_acquisition
from ecoembed.acquire.manifest import acquisition_batches
from ecoembed.acquire.remote import with_retries
from ecoembed.acquire.search import NoAcquisitionsError, search_tile
from ecoembed.config import validate_config
from ecoembed.cube import build_cube
from ecoembed.io import stac, zarrio
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import site_grid
from tests.stac_archive import COMMON, Archive, field_dn, field_power, tile_centres, utc

# A site in UTM zone 32 (EPSG:32632); the "archive" delivers its scenes in zone 33.
SITE = {"id": "DE-Xyz", "lat": 50.95, "lon": 11.70, "igbp": "GRA"}
BUFFER_M = 640  # 128 x 128 tile


def study_cfg(catalog: Path, **over) -> dict:
    cfg = validate_config(
        {
            "data_source": "stac",
            "stac": {
                "sites": [SITE],
                "buffer_m": BUFFER_M,
                "start": "2019-01-01",
                "end": "2022-12-31",
                "flux_dir": "unused",
                "retries": 1,
                "backoff_s": 0,
                "s2": {"api": str(catalog), "asset_names": "common", "max_cloud_cover": 60},
                "s1": {"api": str(catalog), "asset_names": "band", "sign": "none"},
            },
            "gpp": {"input_sets": ["fused", "s2"]},
        }
    )["stac"]
    return {**cfg, **over}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    grid = site_grid(SITE["lat"], SITE["lon"], BUFFER_M)
    a = Archive(root, grid)
    # one overpass in two scenes (adjacent granules): north and south parts of the tile
    a.s2_scene(
        "S2B_A_north",
        utc(2019, 6, 1, 10, 20, 31),
        baseline="02.12",
        cloud=10,
        rows=slice(0, 90),
        with_offset=False,
    )
    a.s2_scene(
        "S2B_A_south",
        utc(2019, 6, 1, 10, 20, 31),
        baseline="02.12",
        cloud=12,
        rows=slice(70, None),
        with_offset=False,
    )
    # after processing baseline 04.00: DN offset -1000; cloud over the east half
    a.s2_scene(
        "S2B_B",
        utc(2022, 7, 1, 10, 20, 29),
        baseline="04.00",
        cloud=30,
        cloud_east=True,
        boa_offset_applied=False,
    )
    # 04.00 with the DNs shifted by Element 84 (raster:bands still says -0.1)
    a.s2_scene(
        "S2B_D", utc(2022, 8, 1, 10, 20, 29), baseline="04.00", cloud=5, boa_offset_applied=True
    )
    a.s2_scene("S2B_cloudy", utc(2019, 6, 11, 10, 20, 31), baseline="02.12", cloud=85)
    a.s2_scene("S2B_before", utc(2018, 12, 30, 10, 20, 31), baseline="02.12", cloud=5)
    a.s2_scene(
        "S2B_elsewhere", utc(2019, 7, 1, 10, 20, 31), baseline="02.12", cloud=5, shift_m=40_000
    )
    a.s1_scene("S1A_asc", utc(2019, 6, 3, 17, 5, 0), orbit="ascending")
    a.s1_scene("S1A_desc", utc(2019, 6, 4, 5, 40, 0), orbit="descending", rows=slice(0, 120))
    return {"catalog": a.save(), "grid": grid, "centre": a.centre}


@pytest.fixture(scope="module")
def acquired(archive, tmp_path_factory):
    """Search, acquire every acquisition, gather the tile's items, catalogue and cube it:
    the rules stac_search, acquire, tile_items, stac_catalog and cube in a row."""
    raw = tmp_path_factory.mktemp("raw")
    study = study_cfg(archive["catalog"], resampling="bilinear")
    manifest = raw / "manifests" / f"{SITE['id']}.json"
    search_tile(SITE["id"], SITE, study, manifest)
    tile_dir = raw / "tiles" / SITE["id"]
    batches = []
    for batch in acquisition_batches(manifest, 2):
        out = tile_dir / "batches" / f"{batch}.json"
        acquire_batch(
            manifest, batch, tile_dir, out, batch_size=2, resampling="bilinear", backoff_s=0
        )
        batches.append(out)
    items_json = tile_dir / "items.json"
    write_tile_items(manifest, batches, items_json)
    catalog = raw / "catalog.json"
    stac.build_catalog([items_json], catalog)
    cube_path = raw.parent / "cube.zarr"
    build_cube(catalog, SITE["id"], cube_path, cube_cfg=validate_config({})["cube"], progress=False)
    return {
        "manifest": json.loads(manifest.read_text()),
        "manifest_path": manifest,
        "items": stac.read_item_collection(items_json),
        "cube": zarrio.open_zarr(cube_path),
        "raw": raw,
    }


def test_site_grid_is_the_towers_utm_square_on_20m_edges():
    g = site_grid(SITE["lat"], SITE["lon"], BUFFER_M)
    assert g.epsg == 32632 and g.shape == (128, 128) and g.resolution == 10
    assert g.transform.c % 20 == 0 and g.transform.f % 20 == 0
    x, y = warp_transform("EPSG:4326", "EPSG:32632", [SITE["lon"]], [SITE["lat"]])
    col, row = ~g.transform * (x[0], y[0])
    assert abs(col - 64) <= 1 and abs(row - 64) <= 1  # the tower in the middle
    assert site_grid(-18.07, -62.09, 1000).epsg == 32720  # southern hemisphere, zone 20


def test_search_keeps_what_intersects_the_period_and_cloud_limit(acquired):
    acqs = acquired["manifest"]["acquisitions"]
    by_kind = {k: [a for a in acqs if a["kind"] == k] for k in ("s2", "s1")}
    # not the 85 % cloudy scene, nor the one before the period, nor the one 40 km away
    assert [len(a["items"]) for a in by_kind["s2"]] == [2, 1, 1]  # two granules: one overpass
    assert {i["id"] for i in by_kind["s2"][0]["items"]} == {"S2B_A_north", "S2B_A_south"}
    assert [a["id"] for a in by_kind["s1"]] == [
        "S1A_IW_GRDH_20190603T170500_ASC_DE-Xyz",
        "S1A_IW_GRDH_20190604T054000_DES_DE-Xyz",
    ]
    assert acquired["manifest"]["grid"]["epsg"] == 32632


def test_acquired_layout_is_the_synthetic_worlds(acquired):
    tile_dir = acquired["raw"] / "tiles" / SITE["id"]
    s2_id = "S2B_MSIL2A_20190601T102031_DE-Xyz"
    folder = tile_dir / "sentinel-2-l2a" / s2_id
    names = sorted(p.name for p in folder.glob("*.tif"))
    assert names == sorted(f"{b}.tif" for b in COMMON)
    with rasterio.open(folder / "B04.tif") as src:
        assert src.crs.to_epsg() == 32632 and src.res == (10, 10) and src.shape == (128, 128)
        assert src.dtypes[0] == "uint16" and src.nodata == 0
    with rasterio.open(folder / "B11.tif") as src:
        assert src.res == (20, 20) and src.shape == (64, 64)
    with rasterio.open(folder / "SCL.tif") as src:
        assert src.dtypes[0] == "uint8" and src.res == (20, 20)
    ids = [i.id for i in acquired["items"]]
    assert ids[0] == SITE["id"] and s2_id in ids  # grid item first, as the world writes
    # no temporary folders left behind
    assert not [p for p in tile_dir.rglob(".*") if "tmp" in p.name]


def test_scenes_in_another_zone_are_resampled_onto_the_tile(acquired, archive):
    """The DN plane, delivered at 15/30 m in EPSG:32633, is on the tile grid within the
    rounding of DNs; both granules of one overpass fill the tile together."""
    grid, centre = archive["grid"], archive["centre"]
    folder = acquired["raw"] / "tiles" / SITE["id"] / "sentinel-2-l2a"
    for band, res in (("B04", 10.0), ("B11", 20.0)):
        with rasterio.open(folder / "S2B_MSIL2A_20190601T102031_DE-Xyz" / f"{band}.tif") as src:
            dn = src.read(1).astype(float)
        x, y = tile_centres(grid, res)
        assert (dn > 0).all(), band  # mosaic of the two granules covers everything
        err = np.abs(dn - field_dn(x, y, centre))
        # DN rounding (twice); up to 2 DN on the granules' seam, where bilinear has only
        # part of its support and the plane's slope shows
        assert np.percentile(err, 99) <= 1.0 and err.max() <= 2.0, (band, err.max())
    # SCL nearest: cloud (9) exactly east of the centre, away from the edge by a pixel
    with rasterio.open(folder / "S2B_MSIL2A_20220701T102029_DE-Xyz" / "SCL.tif") as src:
        scl = src.read(1)
    x, _ = tile_centres(grid, 20.0)
    far = np.abs(x - centre[0]) > 30
    np.testing.assert_array_equal(scl[far], np.where(x[far] > centre[0], 9, 4))


def test_cube_reads_the_acquired_tile_with_each_scenes_dn_offset(acquired, archive):
    """Baseline 02.12 (no raster:bands: the baseline rule, offset 0), 04.00 (raster:bands
    -0.1, flag false) and 04.00 with Earth Search's DNs already shifted (flag true, while
    raster:bands still says -0.1): all three give the same reflectance plane in the cube,
    so each scene's offset was decided from what its item says and went into our item."""
    cube, grid, centre = acquired["cube"], archive["grid"], archive["centre"]
    assert cube.rio.crs.to_epsg() == 32632 and cube.rio.transform() == grid.transform
    x, y = tile_centres(grid, 10.0)
    want = field_dn(x, y, centre) * 1e-4
    assert cube.sizes["time"] == 3
    old = cube["s2"].sel(band="B08").values[0]
    np.testing.assert_allclose(old, want, atol=2e-4)
    new = cube["s2"].sel(band="B08").values[1]
    np.testing.assert_allclose(new, want - 0.1, atol=2e-4)
    shifted = cube["s2"].sel(band="B08").values[2]
    np.testing.assert_allclose(shifted, want - 0.1, atol=2e-4)  # not want - 0.2
    items = [i for i in acquired["items"] if i.collection_id == stac.S2_COLLECTION_ID]
    offsets = [i.assets["B08"].extra_fields["raster:bands"][0]["offset"] for i in items]
    assert offsets == [0.0, -0.1, 0.0]
    rules = [i.properties["ecoembed:dn_offset_rule"] for i in items]
    assert rules == [
        "s2:processing_baseline 02.12",
        "raster:bands",
        "earthsearch:boa_offset_applied: true",
    ]
    assert all("earthsearch:boa_offset_applied" not in i.properties for i in items)
    # the MGRS tile from Earth Search's grid:code
    assert {i.properties["s2:mgrs_tile"] for i in items} == {"33UUS"}
    # the cloud of the second date is masked (east half, with the dilation), not the first
    valid = cube["s2_valid"].values
    assert valid[0].all()
    assert not valid[1][:, 68:].any() and valid[1][:, :56].all()
    # eo:cloud_cover over the tile from its SCL, not the scene's figure
    covers = [i.properties["eo:cloud_cover"] for i in items]
    assert covers[0] == 0.0 and covers[1] == pytest.approx(50.0, abs=1.0)  # scenes: 10, 30


def test_s1_linear_power_becomes_db_and_nodata_nan(acquired, archive):
    cube, grid, centre = acquired["cube"], archive["grid"], archive["centre"]
    x, y = tile_centres(grid, 10.0)
    vv = cube["s1"].sel(pol="VV").values
    vh = cube["s1"].sel(pol="VH").values
    np.testing.assert_allclose(vv[0], 10 * np.log10(field_power(x, y, centre)), atol=0.01)
    np.testing.assert_allclose(vh[0] - vv[0], 10 * np.log10(0.2), atol=0.01)
    # the descending scene ends inside the tile: -32768 there became no data, not -inf
    assert np.isnan(vv[1][-20:]).all() and np.isfinite(vv[1][:20]).all()
    assert cube["orbit"].values.tolist() == ["ascending", "descending"]
    assert cube["relative_orbit"].values.tolist() == [117, 22]


def test_empty_search_names_site_dates_and_collection(archive, tmp_path):
    study = study_cfg(archive["catalog"], start="2020-01-01", end="2020-12-31")
    manifest = tmp_path / "m.json"
    with pytest.raises(NoAcquisitionsError) as err:
        search_tile(SITE["id"], SITE, study, manifest)
    msg = str(err.value)
    for part in (SITE["id"], "2020-01-01", "2020-12-31", "sentinel-2-l2a", "60"):
        assert part in msg, (part, msg)
    assert not manifest.exists()


def test_download_retries_then_succeeds_or_leaves_nothing(acquired, tmp_path, monkeypatch):
    manifest = acquired["manifest_path"]
    acq = acquired["manifest"]["acquisitions"][0]["id"]
    real_load = load._load
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise RasterioIOError("HTTP response code: 503")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(load, "_load", flaky)
    out = tmp_path / "ok" / acq
    acquire_acquisition(manifest, acq, out, retries=2, backoff_s=0)
    assert (out / "B04.tif").is_file() and calls["n"] == 2 + 3  # 3 loads: 10 m, 20 m, SCL

    def broken(*args, **kwargs):
        raise RasterioIOError("HTTP response code: 503")

    monkeypatch.setattr(load, "_load", broken)
    out = tmp_path / "bad" / acq
    with pytest.raises(RuntimeError, match=rf"acquisition {acq}.*3 attempt\(s\).*503"):
        acquire_acquisition(manifest, acq, out, retries=2, backoff_s=0)
    assert not out.exists() and not list(out.parent.iterdir())  # no partial folder


def test_backoff_doubles():
    waits = []

    def fail():
        raise OSError("connection reset")

    with pytest.raises(RuntimeError, match="x: failed after 4 attempt"):
        with_retries(fail, what="x", retries=3, backoff_s=1.5, sleep=waits.append)
    assert waits == [1.5, 3.0, 6.0]


# --- the user's FLUXNET files -------------------------------------------------------------

FLUXNET_REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "fluxnet2015"


@pytest.mark.skipif(not FLUXNET_REAL.is_dir(), reason="../shared/realdata not present")
def test_real_daily_file_found_and_cut_to_the_study_years(tmp_path):
    from ecoembed.io.fluxnet import find_site_file, read_fluxnet, write_study_period

    source = find_site_file(FLUXNET_REAL, "US-AR1")  # the SUBSET DD file; FR-Pue is MM
    assert source.name == "FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.csv"
    out = tmp_path / "FLX_US-AR1_FLUXNET2015_FULLSET_DD_2010-2011_1-4.csv"
    assert write_study_period(source, out, 2010, 2011) == 730
    got, full = read_fluxnet(out), read_fluxnet(source)
    assert got.index[0] == pd.Timestamp("2010-01-01") and got.index[-1] == pd.Timestamp(
        "2011-12-31"
    )
    assert list(got.columns) == list(full.columns)  # every column, -9999 kept as missing
    want = full.loc["2010":"2011"]
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-5, equal_nan=True)
    with pytest.raises(InputDataError, match=r"no day in the study years 2019-2020.*2009-01-01"):
        write_study_period(source, tmp_path / "x.csv", 2019, 2020)
    with pytest.raises(InputDataError, match="no FLUXNET DD/HH/HR CSV file of site FR-Pue"):
        find_site_file(FLUXNET_REAL, "FR-Pue")  # only a monthly file there


def test_site_file_names_of_the_releases_and_ties(tmp_path):
    from ecoembed.io.fluxnet import find_site_file

    for name in (
        "ICOSETC_DE-Hai_FLUXNET_DD_L2.csv",
        "FLX_DE-Tha_FLUXNET2015_FULLSET_DD_1996-2020_beta-3.csv",
        "FLX_DE-Tha_FLUXNET2015_FULLSET_HH_1996-2020_beta-3.csv",
        "FLX_DE-Tha_FLUXNET2015_SUBSET_DD_1996-2020_beta-3.csv",
        "FLX_DE-Gri_FLUXNET2015_FULLSET_DD_2004-2020_beta-3.csv",
        "FLX_DE-Gri_FLUXNET2015_FULLSET_DD_2004-2014_1-4.csv",
    ):
        (tmp_path / name).write_text("TIMESTAMP\n")
    assert find_site_file(tmp_path, "DE-Hai").name == "ICOSETC_DE-Hai_FLUXNET_DD_L2.csv"
    # daily before half-hourly, FULLSET before SUBSET
    assert "FULLSET_DD" in find_site_file(tmp_path, "DE-Tha").name
    with pytest.raises(InputDataError, match="several FLUXNET files of site DE-Gri"):
        find_site_file(tmp_path, "DE-Gri")


# --- sources that refuse, keys that are missing, catalogs that point elsewhere ------------


def test_missing_key_stops_the_acquisition_before_any_download(acquired, tmp_path, monkeypatch):
    from ecoembed.acquire.credentials import MissingCredentialsError

    manifest = dict(acquired["manifest"])
    manifest["sources"] = {
        **manifest["sources"],
        "s1": {**manifest["sources"]["s1"], "key_env": "ECOEMBED_TEST_KEY"},
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    monkeypatch.delenv("ECOEMBED_TEST_KEY", raising=False)
    monkeypatch.setattr(load, "_load", lambda *a, **k: pytest.fail("downloaded"))
    acq = next(a["id"] for a in manifest["acquisitions"] if a["kind"] == "s1")
    with pytest.raises(MissingCredentialsError, match="stac.s1: ECOEMBED_TEST_KEY is not set"):
        acquire_acquisition(path, acq, tmp_path / "out")
    # a batch stops at once too, rather than trying every acquisition
    with pytest.raises(MissingCredentialsError):
        acquire_batch(
            path, "sentinel-1-rtc-001", tmp_path / "tile", tmp_path / "b.json", batch_size=25
        )
    assert not (tmp_path / "out").exists() and not (tmp_path / "b.json").exists()


def test_refused_download_is_not_retried(acquired, tmp_path, monkeypatch):
    from ecoembed.acquire.remote import AccessRefusedError

    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise RasterioIOError("HTTP response code: 403")

    monkeypatch.setattr(load, "_load", refuse)
    acq = acquired["manifest"]["acquisitions"][0]["id"]
    with pytest.raises(AccessRefusedError, match=r"access refused \(HTTP 403\), not retried"):
        acquire_acquisition(acquired["manifest_path"], acq, tmp_path / "x", retries=4, backoff_s=30)
    assert calls == [1] and not (tmp_path / "x").exists()


def test_static_source_catalog_linking_to_the_network_is_refused(archive, tmp_path):
    import shutil

    root = Path(archive["catalog"]).parent
    copy = tmp_path / "stac"
    shutil.copytree(root, copy)
    catalog = copy / "catalog.json"
    d = json.loads(catalog.read_text())
    for link in d["links"]:
        if link["rel"] == "child" and "sentinel-2" in link["href"]:
            link["href"] = "https://example.org/sentinel-2-l2a/collection.json"
    catalog.write_text(json.dumps(d))
    study = study_cfg(catalog)
    with pytest.raises(InputDataError, match="links to a URL"):
        search_tile(SITE["id"], SITE, study, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_batches_reuse_finished_acquisitions_and_redo_changed_ones(acquired, tmp_path):
    """A batch re-run after a failure fetches only the missing acquisition; one whose
    settings changed (resampling) is acquired again, not reused."""
    manifest = acquired["manifest_path"]
    tile = tmp_path / "tile"
    out = tmp_path / "batch.json"
    first = acquire_batch(manifest, "sentinel-2-l2a-001", tile, out, batch_size=3)
    assert [i.id for i in first] == [
        a["id"] for a in acquired["manifest"]["acquisitions"] if a["kind"] == "s2"
    ]
    import shutil

    stamps = {i.id: (tile / "sentinel-2-l2a" / i.id / "B04.tif").stat().st_mtime_ns for i in first}
    lost = tile / "sentinel-2-l2a" / first[1].id
    shutil.rmtree(lost)
    again = acquire_batch(manifest, "sentinel-2-l2a-001", tile, out, batch_size=3)
    assert [i.id for i in again] == [i.id for i in first]
    new = {i.id: (tile / "sentinel-2-l2a" / i.id / "B04.tif").stat().st_mtime_ns for i in first}
    assert new[first[0].id] == stamps[first[0].id] and new[first[2].id] == stamps[first[2].id]
    assert lost.is_dir()
    acquire_batch(manifest, "sentinel-2-l2a-001", tile, out, batch_size=3, resampling="bilinear")
    redone = {i.id: (tile / "sentinel-2-l2a" / i.id / "B04.tif").stat().st_mtime_ns for i in first}
    assert all(redone[k] != new[k] for k in redone)
    with pytest.raises(InputDataError, match="no batch 'sentinel-2-l2a-009'"):
        acquire_batch(manifest, "sentinel-2-l2a-009", tile, out, batch_size=3)


@pytest.mark.parametrize("fault", ["float32", "shifted"])
def test_source_asset_unlike_its_item_is_refused_before_loading(acquired, tmp_path, fault):
    """A source COG that holds float32 reflectance where the item says uint16 DNs, or that
    lies elsewhere than the item's proj:transform says, is refused naming the file; no
    acquisition folder is left."""
    import shutil

    from ecoembed.io.raster import write_cog

    manifest = json.loads(acquired["manifest_path"].read_text())
    acq = manifest["acquisitions"][0]
    src = Path(acq["items"][0]["assets"]["red"]["href"])
    copy = tmp_path / "red.tif"
    shutil.copy(src, copy)
    with rasterio.open(copy) as f:
        data, t, crs = f.read(1), f.transform, f.crs
    if fault == "float32":
        write_cog(copy, data.astype(np.float32) * 1e-4, crs=crs, transform=t, nodata=np.nan)
        want = r"data type float32 in the file, uint16 in the item"
    else:
        write_cog(copy, data, crs=crs, transform=t * t.translation(500, 0), nodata=0)
        want = r"transform .* in the file, .* in the item"
    acq["items"][0]["assets"]["red"]["href"] = str(copy)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    with pytest.raises(InputDataError, match=rf"red.tif \(item S2B_A_north\).*{want}"):
        acquire_acquisition(path, acq["id"], tmp_path / "out", retries=0)
    assert not (tmp_path / "out").exists()
