"""The acquisition against what the providers actually publish: every real STAC item in
../shared/realdata/stac_items/ (README section 5; Element 84 Earth Search v1 and Microsoft
Planetary Computer), offline.

Each item is kept exactly as published, except that the assets the acquisition reads are
replaced by small local COGs written on the item's own pixel grid (its CRS from
``proj:epsg``, its ``proj:transform`` shifted by whole pixels to a window over the test
tile, wherever the item keeps it: per asset for S2, on the item for S1 RTC), with the
dtype and nodata its ``raster:bands`` state, nodata outside the item's footprint, and
``file:size``/``file:checksum`` recomputed where the item has them. So the real
``raster:bands``, processing baseline, ``earthsearch:boa_offset_applied`` flag, MGRS
fields, orbit and projection fields drive the code. The DNs are a plane over tile-grid
coordinates, so what the cube reads back can be checked pixel by pixel against what each
item's semantics imply.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_bounds, transform_geom
from rasterio.windows import Window
from shapely.geometry import shape

from ecoembed.acquire.batches import acquire_batch
from ecoembed.acquire.load import acquire_acquisition, s2_dn_convention
from ecoembed.acquire.manifest import acquisition_batches
from ecoembed.acquire.plan import format_plan, plan_tile
from ecoembed.acquire.remote import DownloadCheckError
from ecoembed.acquire.search import NoAcquisitionsError, group_acquisitions, search_tile
from ecoembed.acquire.sources import ASSET_NAMING
from ecoembed.config import validate_config
from ecoembed.cube.sentinel2 import read_s2_window
from ecoembed.io import sentinel
from ecoembed.io.grid import grid_footprint, site_grid, wgs84_geometry
from ecoembed.io.raster import write_cog

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "stac_items"
pytestmark = pytest.mark.skipif(
    not REAL.is_dir(), reason="../shared/realdata/stac_items is not part of a clone"
)
ES_S2 = REAL / "earth_search_v1_sentinel-2-l2a"
PC_S2 = REAL / "planetary_computer_sentinel-2-l2a" / "sentinel-2-l2a-pc-4items.json"
PC_S1 = REAL / "planetary_computer_sentinel-1-rtc" / "sentinel-1-rtc-pc-4items.json"
PC_S1_CASSETTE = REAL / "planetary_computer_sentinel-1-rtc" / "sentinel-1-rtc-pc-cassette-item.json"
T01WCR = "S2A_OPER_MSI_L2A_TL_2APS_20230602T025701_A041483_T01WCR"

# The DN offset each real S2 item implies, and what in the item says so. Written out by
# hand from the items' metadata and the providers' documentation (README section 5), not
# computed by the code under test. Before baseline 04.00 Earth Search states offset 0 in
# raster:bands; from 04.00 on it states -0.1 on every band, also where
# earthsearch:boa_offset_applied says Element 84 already shifted the DNs (then the flag
# wins and the offset is 0). Planetary Computer states no raster:bands: its baseline
# 05.10 decides (-0.1).
EXPECTED_OFFSET = {
    "S2A_33TWN_20161202_0_L2A": (0.0, "raster:bands"),  # baseline 00.01
    "S2A_33TWN_20171005_0_L2A": (0.0, "raster:bands"),  # 00.01
    "S2B_33TWN_20180521_1_L2A": (0.0, "raster:bands"),  # 02.07
    "S2B_33TWN_20180806_0_L2A": (0.0, "raster:bands"),  # 00.01
    "S2B_33TWN_20181005_0_L2A": (0.0, "raster:bands"),  # 02.08
    "S2B_33TWN_20181104_0_L2A": (0.0, "raster:bands"),  # 02.09
    "S2A_33TWN_20181119_0_L2A": (0.0, "raster:bands"),  # 02.10
    "S2B_33TWN_20190503_0_L2A": (0.0, "raster:bands"),  # 02.11
    "S2A_33TWN_20190707_1_L2A": (0.0, "raster:bands"),  # 02.12
    "S2A_33TWN_20200202_0_L2A": (0.0, "raster:bands"),  # 02.13
    "S2A_33TWN_20210328_0_L2A": (0.0, "raster:bands"),  # 02.14
    "S2A_33TWN_20210629_0_L2A": (0.0, "raster:bands"),  # 03.00
    "S2A_33TWN_20220122_0_L2A": (0.0, "raster:bands"),  # 03.01
    "S2B_33TWN_20220130_0_L2A": (0.0, "earthsearch:boa_offset_applied: true"),  # 04.00
    "S2B_33TWN_20220226_0_L2A": (-0.1, "raster:bands"),  # 04.00, flag false
    T01WCR: (-0.1, "raster:bands"),  # other naming scheme: no baseline, no flag
    "S2B_MSIL2A_20240419T095549_R122_T47XML_20240419T123458": (
        -0.1,
        "s2:processing_baseline 05.10",
    ),
    "S2B_MSIL2A_20240419T095549_R122_T47XMJ_20240419T122756": (
        -0.1,
        "s2:processing_baseline 05.10",
    ),
    "S2B_MSIL2A_20240419T095549_R122_T46XES_20240419T123824": (
        -0.1,
        "s2:processing_baseline 05.10",
    ),
    "S2B_MSIL2A_20240419T095549_R122_T46XER_20240419T124342": (
        -0.1,
        "s2:processing_baseline 05.10",
    ),
}
EXPECTED_MGRS = {
    **{k: "33TWN" for k in EXPECTED_OFFSET if "_33TWN_" in k},
    T01WCR: "01WCR",  # grid:code MGRS-1WCR: the zone written with two digits, as ESA does
    "S2B_MSIL2A_20240419T095549_R122_T47XML_20240419T123458": "47XML",
    "S2B_MSIL2A_20240419T095549_R122_T47XMJ_20240419T122756": "47XMJ",
    "S2B_MSIL2A_20240419T095549_R122_T46XES_20240419T123824": "46XES",
    "S2B_MSIL2A_20240419T095549_R122_T46XER_20240419T124342": "46XER",
}


def features(path: Path) -> list[dict]:
    d = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(d, list):
        return d
    return d["features"] if d.get("type") == "FeatureCollection" else [d]


def es_items() -> list[dict]:
    return [f for p in sorted(ES_S2.glob("*.json")) for f in features(p)]


def all_s2_items() -> list[dict]:
    return es_items() + features(PC_S2)


def naming(item: dict) -> str:
    return "common" if "red" in item["assets"] else "band"


def source_of(kind: str, item: dict) -> dict:
    return {"assets": ASSET_NAMING[naming(item)][kind]}


# --------------------------------------------------------------------- metadata only


def test_every_real_s2_item_is_listed():
    assert {i["id"] for i in all_s2_items()} == set(EXPECTED_OFFSET)


@pytest.mark.parametrize("item_id", sorted(EXPECTED_OFFSET))
def test_dn_offset_and_mgrs_tile_of_each_real_s2_item(item_id):
    d = next(i for i in all_s2_items() if i["id"] == item_id)
    item = pystac.Item.from_dict(d, preserve_dict=True)
    conv = s2_dn_convention([item], source_of("s2", d), item_id)
    assert (conv.offset, conv.rule) == EXPECTED_OFFSET[item_id]
    assert conv.scale == pytest.approx(1e-4)
    assert sentinel.mgrs_tile(d["properties"]) == EXPECTED_MGRS[item_id]


def test_scenes_of_one_overpass_that_disagree_are_refused():
    """Two 04.00 granules of one date, one with Element 84's shifted DNs and one without:
    one set of mosaicked DNs cannot hold both."""
    flagged = next(i for i in es_items() if i["id"] == "S2B_33TWN_20220130_0_L2A")
    other = copy.deepcopy(flagged)
    other["id"] = "S2B_33TWN_20220130_0_L2A_other_granule"
    other["properties"]["earthsearch:boa_offset_applied"] = False
    items = [pystac.Item.from_dict(d, preserve_dict=True) for d in (flagged, other)]
    with pytest.raises(ValueError, match=r"different offsets.*boa_offset_applied.*raster:bands"):
        s2_dn_convention(items, source_of("s2", flagged), "acq")


# --------------------------------------------------------------------- through acquisition


def dn_plane(x: np.ndarray, y: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """S2 DN over tile-grid coordinates: gentle (0.02 DN/m), so that nearest resampling
    from another UTM zone stays within half a DN plus 0.3 DN."""
    return 2000.0 + 0.02 * (x - centre[0]) + 0.01 * (y - centre[1])


def power_plane(x: np.ndarray, y: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    return 0.04 + 1e-5 * (x - centre[0]) - 5e-6 * (y - centre[1])


def _proj_holder(item: dict, key: str) -> dict:
    """Where the item keeps the asset's grid: on the asset (S2) or on the item (S1 RTC)."""
    asset = item["assets"][key]
    return asset if "proj:transform" in asset else item["properties"]


def replicate(item: dict, keys: list[str], grid, folder: Path, field, nodata_outside=True):
    """The item as published, its assets ``keys`` replaced by local COGs over the tile.

    ``field(x, y)`` gives the value at tile-grid coordinates. Pixels outside the item's
    footprint get the asset's nodata, as a real scene's edge has it.
    """
    d = copy.deepcopy(item)
    epsg = int(d["properties"]["proj:epsg"])
    centre = (
        grid.transform.c + grid.width * grid.resolution / 2,
        grid.transform.f - grid.height * grid.resolution / 2,
    )
    done: dict[int, tuple] = {}
    folder.mkdir(parents=True, exist_ok=True)
    for key in keys:
        asset = d["assets"][key]
        holder = _proj_holder(d, key)
        if id(holder) not in done:
            t = Affine(*holder["proj:transform"][:6])
            rows, cols = holder["proj:shape"]
            left, bottom, right, top = transform_bounds(
                f"EPSG:{grid.epsg}", f"EPSG:{epsg}", *grid.bounds
            )
            margin = 3 * t.a
            c0 = max(0, math.floor((left - margin - t.c) / t.a))
            r0 = max(0, math.floor((t.f - top - margin) / -t.e))
            c1 = min(cols, math.ceil((right + margin - t.c) / t.a))
            r1 = min(rows, math.ceil((t.f - bottom + margin) / -t.e))
            if c1 <= c0 or r1 <= r0:  # a scene away from the tile: a token corner of it
                c0, r0, c1, r1 = 0, 0, 8, 8
            window_t = t @ Affine.translation(c0, r0)
            shape_ = (r1 - r0, c1 - c0)
            done[id(holder)] = (window_t, shape_)
            # the window's grid, where the item keeps it (9 numbers where it had 9)
            n = len(holder["proj:transform"])
            holder["proj:transform"] = (list(window_t)[:6] + [0.0, 0.0, 1.0])[:n]
            holder["proj:shape"] = list(shape_)
            if "proj:bbox" in holder:
                holder["proj:bbox"] = [
                    window_t.c,
                    window_t.f + shape_[0] * window_t.e,
                    window_t.c + shape_[1] * window_t.a,
                    window_t.f,
                ]
        window_t, shape_ = done[id(holder)]
        # Planetary Computer's S2 items state no raster:bands: L2A's uint16 (SCL uint8), 0
        default = {"data_type": "uint8" if key.lower() == "scl" else "uint16", "nodata": 0}
        band = (asset.get("raster:bands") or [default])[0]
        dtype = np.dtype(band["data_type"])
        nodata = band.get("nodata")
        cc, rr = np.meshgrid(np.arange(shape_[1]) + 0.5, np.arange(shape_[0]) + 0.5)
        xs, ys = window_t @ (cc, rr)
        gx, gy = warp_transform(f"EPSG:{epsg}", f"EPSG:{grid.epsg}", xs.ravel(), ys.ravel())
        values = field(np.reshape(gx, xs.shape), np.reshape(gy, xs.shape), centre)
        values = np.rint(values) if dtype.kind in "ui" else values
        values = values.astype(dtype)
        if nodata_outside:
            footprint = transform_geom("EPSG:4326", f"EPSG:{epsg}", wgs84_geometry(d["geometry"]))
            outside = geometry_mask([footprint], out_shape=shape_, transform=window_t)
            values[outside] = nodata
        path = folder / f"{key}.tif"
        write_cog(path, values, crs=epsg, transform=window_t, nodata=nodata)
        asset["href"] = str(path)
        if "file:size" in asset:
            asset["file:size"] = path.stat().st_size
        if "file:checksum" in asset:  # in the item's own form: a bare MD5 hex digest
            assert len(asset["file:checksum"]) == 32
            asset["file:checksum"] = hashlib.md5(path.read_bytes()).hexdigest()
    return d


def save_catalog(root: Path, collection: str, items: list[dict]) -> Path:
    catalog = pystac.Catalog("real-items", "real STAC items over local COGs")
    objs = [pystac.Item.from_dict(d, preserve_dict=True) for d in items]
    coll = pystac.Collection(collection, collection, pystac.Extent.from_items(objs))
    catalog.add_child(coll)
    coll.add_items(objs)
    catalog.normalize_hrefs(str(root / "stac"))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "stac" / "catalog.json"


def study(
    site: dict,
    s2_catalog: Path | None,
    s1_catalog: Path | None,
    start: str,
    end: str,
    s2_names: str = "common",
) -> dict:
    cfg = {
        "data_source": "stac",
        "stac": {
            "sites": [site],
            "buffer_m": 320,  # 64 x 64 pixels
            "start": start,
            "end": end,
            "flux_dir": "unused",
            "retries": 0,
            "backoff_s": 0,
        },
        "gpp": {"input_sets": ["fused", "s2"]},
    }
    if s2_catalog is not None:
        cfg["stac"]["s2"] = {
            "api": str(s2_catalog),
            "asset_names": s2_names,
            "max_cloud_cover": 100,
        }
    if s1_catalog is not None:
        cfg["stac"]["s1"] = {"api": str(s1_catalog), "asset_names": "band", "sign": "none"}
    return validate_config(cfg)["stac"]


def site_inside(geometries: list[dict], site_id: str) -> dict:
    """A site where every footprint in ``geometries`` holds the whole test tile."""
    region = None
    for g in geometries:
        s = shape(wgs84_geometry(g))
        region = s if region is None else region.intersection(s)
    p = region.buffer(-0.02).representative_point()
    return {"id": site_id, "lat": round(p.y, 5), "lon": round(p.x, 5), "igbp": "GRA"}


def acquire_all(manifest: Path, tile_dir: Path) -> list[pystac.Item]:
    items = []
    for batch in acquisition_batches(manifest, 25):
        out = tile_dir / "batches" / f"{batch}.json"
        items += acquire_batch(manifest, batch, tile_dir, out, batch_size=25)
    return items


def s2_keys(item: dict) -> list[str]:
    names = ASSET_NAMING[naming(item)]["s2"]
    return [names[b] for b in (*sentinel.S2_BAND_NAMES, "SCL")]


def scl_plane(x, y, centre):
    return np.full(x.shape, 4.0)  # vegetation: a clear view


def field_for(key: str):
    return scl_plane if key.lower() == "scl" else dn_plane


def replicate_s2(item: dict, grid, folder: Path) -> dict:
    d = item
    for key in s2_keys(item):
        d = replicate(d, [key], grid, folder, field_for(key))
    return d


def check_reflectance(acquired: list[pystac.Item], grid, source_ids: dict[str, str]):
    """Each acquired S2 item, read as the cube reads it, against DN x 1e-4 + the offset the
    source item implies (EXPECTED_OFFSET), within 1e-4 on every band and pixel."""
    from tests.stac_archive import tile_centre, tile_centres

    centre = tile_centre(grid)
    x, y = tile_centres(grid, 10.0)
    window = Window(0, 0, grid.width, grid.height)
    for item in acquired:
        src = source_ids[item.id]
        offset, rule = EXPECTED_OFFSET[src]
        refl, ok = read_s2_window(item, grid, window, Resampling.nearest, "test")
        assert ok.mean() > 0.99, (src, ok.mean())
        # The source DNs are the plane rounded at the source pixels' centres: within half
        # a DN, plus the plane's slope (0.02 DN/m) over the at most 14 m from a tile pixel's
        # centre to the source pixel it is read from (20 m bands, another UTM zone).
        want = dn_plane(x, y, centre) * 1e-4 + offset
        for k, band in enumerate(sentinel.S2_BAND_NAMES):
            err = np.abs(refl[k][ok] - want[ok])
            assert err.max() <= 1e-4, (src, band, float(err.max()))
        assert item.properties["ecoembed:dn_offset_rule"] == rule
        assert item.properties["s2:mgrs_tile"] == EXPECTED_MGRS[src]


@pytest.fixture(scope="module")
def earth_search(tmp_path_factory):
    """All 15 Earth Search items of tile 33TWN, over one site inside all their footprints."""
    root = tmp_path_factory.mktemp("es")
    items = [i for i in es_items() if i["id"] != T01WCR]
    site = site_inside([i["geometry"] for i in items], "AT-Twn")
    grid = site_grid(site["lat"], site["lon"], 320)
    reps = [replicate_s2(i, grid, root / "assets" / i["id"]) for i in items]
    cfg = study(site, save_catalog(root, "sentinel-2-l2a", reps), None, "2016-01-01", "2022-12-31")
    manifest = root / "raw" / "manifests" / "AT-Twn.json"
    search_tile("AT-Twn", site, cfg, manifest, kinds=("s2",))
    acquired = acquire_all(manifest, root / "raw" / "tiles" / "AT-Twn")
    return {"grid": grid, "items": acquired, "manifest": json.loads(manifest.read_text())}


def test_earth_search_items_found_one_acquisition_each(earth_search):
    acqs = earth_search["manifest"]["acquisitions"]
    assert len(acqs) == 15 and all(len(a["items"]) == 1 for a in acqs)
    assert earth_search["grid"].epsg == 32633  # the items' own proj:epsg: DNs copied
    assert len(earth_search["items"]) == 15


def test_earth_search_reflectance_as_each_item_implies(earth_search):
    sources = {a["id"]: a["items"][0]["id"] for a in earth_search["manifest"]["acquisitions"]}
    check_reflectance(earth_search["items"], earth_search["grid"], sources)


def test_antimeridian_item_found_and_read(tmp_path):
    """T01WCR straddles the antimeridian: its published geometry has longitudes near +178
    and -179, and its bbox spans the globe the other way round. A tower at 179.5 W inside
    it must find it, and read it with its raster:bands offset."""
    item = next(i for i in es_items() if i["id"] == T01WCR)
    site = {"id": "RU-Amd", "lat": 67.9, "lon": -179.5, "igbp": "GRA"}
    grid = site_grid(site["lat"], site["lon"], 320)
    assert grid.epsg == 32601
    rep = replicate_s2(item, grid, tmp_path / "assets")
    cfg = study(
        site, save_catalog(tmp_path, "sentinel-2-l2a", [rep]), None, "2023-01-01", "2023-12-31"
    )
    manifest = tmp_path / "raw" / "manifests" / "RU-Amd.json"
    search_tile("RU-Amd", site, cfg, manifest, kinds=("s2",))
    acqs = json.loads(manifest.read_text())["acquisitions"]
    # its solar date at 180 degrees, not at the bbox's midpoint near 0 (12 h earlier)
    assert [a["id"] for a in acqs] == ["S2A_MSIL2A_20230602T000724_RU-Amd"]
    acquired = acquire_all(manifest, tmp_path / "raw" / "tiles" / "RU-Amd")
    check_reflectance(acquired, grid, {acqs[0]["id"]: T01WCR})
    # and a tower on the other side of the globe at that latitude does not find it
    far = {"id": "NO-Far", "lat": 67.9, "lon": 0.5, "igbp": "GRA"}
    with pytest.raises(NoAcquisitionsError):
        search_tile(
            "NO-Far",
            far,
            study(far, cfg["s2"]["api"], None, "2023-01-01", "2023-12-31"),
            tmp_path / "far.json",
            kinds=("s2",),
        )


def test_planetary_computer_s2_overpass_across_two_utm_zones(tmp_path):
    """Four granules of one 2024 overpass (baseline 05.10, no raster:bands), tiles of UTM
    zones 46 and 47: a tower where 47XML and 46XER overlap gets one acquisition of both,
    mosaicked from two CRSs, with the baseline's offset -0.1."""
    items = features(PC_S2)
    pair = [i for i in items if i["id"].split("_")[4] in ("T47XML", "T46XER")]
    site = site_inside([i["geometry"] for i in pair], "RU-Xml")
    grid = site_grid(site["lat"], site["lon"], 320)
    reps = [replicate_s2(i, grid, tmp_path / "assets" / i["id"]) for i in items]
    cfg = study(
        site,
        save_catalog(tmp_path, "sentinel-2-l2a", reps),
        None,
        "2024-01-01",
        "2024-12-31",
        "band",
    )
    manifest = tmp_path / "raw" / "manifests" / "RU-Xml.json"
    search_tile("RU-Xml", site, cfg, manifest, kinds=("s2",))
    acqs = json.loads(manifest.read_text())["acquisitions"]
    assert len(acqs) == 1
    assert sorted(i["id"] for i in acqs[0]["items"]) == sorted(i["id"] for i in pair)
    acquired = acquire_all(manifest, tmp_path / "raw" / "tiles" / "RU-Xml")
    first = acqs[0]["items"][0]["id"]
    check_reflectance(acquired, grid, {acqs[0]["id"]: first})


# --------------------------------------------------------------------- Sentinel-1 RTC


@pytest.fixture(scope="module")
def rtc(tmp_path_factory):
    """The four frames of one descending pass and the 2025 frame elsewhere: a tower on
    the seam of frames 29 and 30 of the pass."""
    root = tmp_path_factory.mktemp("rtc")
    frames = features(PC_S1)
    other = features(PC_S1_CASSETTE)
    a, b = (shape(wgs84_geometry(f["geometry"])) for f in frames[:2])
    seam = a.buffer(0.01).intersection(b.buffer(0.01)).representative_point()
    site = {"id": "LY-Sea", "lat": round(seam.y, 5), "lon": round(seam.x, 5), "igbp": "BSV"}
    grid = site_grid(site["lat"], site["lon"], 320)
    reps = [
        replicate(f, ["vv", "vh"], grid, root / "assets" / f["id"], power_plane)
        for f in frames + other
    ]
    catalog = save_catalog(root, "sentinel-1-rtc", reps)
    cfg = study(site, None, catalog, "2024-01-01", "2025-12-31")
    manifest = root / "raw" / "manifests" / "LY-Sea.json"
    search_tile("LY-Sea", site, cfg, manifest, kinds=("s1",))
    acquired = acquire_all(manifest, root / "raw" / "tiles" / "LY-Sea")
    return {
        "grid": grid,
        "manifest_path": manifest,
        "manifest": json.loads(manifest.read_text()),
        "items": acquired,
        "frames": frames,
        "catalog": catalog,
        "reps": reps,
        "root": root,
    }


def test_rtc_frames_of_one_pass_are_one_acquisition(rtc):
    acqs = rtc["manifest"]["acquisitions"]
    assert len(acqs) == 1
    ids = sorted(i["id"] for i in acqs[0]["items"])
    assert ids == sorted(f["id"] for f in rtc["frames"][:2])  # slices 29 and 30, not 27-28
    # named after the first frame in time (slice 29, 04:58:51), descending
    assert acqs[0]["id"] == "S1A_IW_GRDH_20240419T045851_DES_LY-Sea"
    (item,) = rtc["items"]
    assert item.properties["sat:orbit_state"] == "descending"
    assert item.properties["sat:relative_orbit"] == 51
    assert rtc["grid"].epsg == 32633  # as the frames' item-level proj:epsg


def test_rtc_mosaic_of_two_frames_holds_the_source_power(rtc):
    """Each frame has data only inside its own footprint: the tile on their seam is filled
    by both, and 10 m RTC in the tile's zone is copied, not resampled."""
    from tests.stac_archive import tile_centre, tile_centres

    (item,) = rtc["items"]
    grid = rtc["grid"]
    x, y = tile_centres(grid, 10.0)
    want = power_plane(x, y, tile_centre(grid))
    for key in ("vv", "vh"):
        with rasterio.open(item.assets[key].href) as src:
            got = src.read(1)
            assert src.res == (10.0, 10.0) and src.dtypes[0] == "float32"
        ok = np.isfinite(got)
        assert ok.mean() > 0.99, ok.mean()
        np.testing.assert_allclose(got[ok], want[ok].astype(np.float32), rtol=1e-6)
    for f in rtc["frames"][:2]:  # each frame alone covers only part of the tile
        fp = shape(wgs84_geometry(f["geometry"]))
        tile = shape(grid_footprint(grid))
        assert 0.01 < fp.intersection(tile).area / tile.area < 0.99


def test_rtc_file_size_and_checksum_are_checked(rtc, tmp_path):
    """Planetary Computer states file:size and a bare MD5 file:checksum per asset: an asset
    truncated or altered after the item was written is refused, naming the file."""
    manifest = rtc["manifest_path"]
    acq = rtc["manifest"]["acquisitions"][0]
    vv = Path(acq["items"][0]["assets"]["vv"]["href"])
    original = vv.read_bytes()
    try:
        vv.write_bytes(original[:-100])  # truncated
        with pytest.raises(DownloadCheckError, match=r"bytes where its item says file:size"):
            acquire_acquisition(manifest, acq["id"], tmp_path / "a", retries=0)
        altered = bytearray(original)
        altered[-1] ^= 0xFF  # same size, other content
        vv.write_bytes(bytes(altered))
        with pytest.raises(DownloadCheckError, match=r"md5 .* file:checksum"):
            acquire_acquisition(manifest, acq["id"], tmp_path / "b", retries=0)
        # size only (what "auto" does for remote assets) does not read the whole file
        acquire_acquisition(manifest, acq["id"], tmp_path / "c", retries=0, verify="size")
    finally:
        vv.write_bytes(original)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert (tmp_path / "c" / "vv.tif").is_file()


def test_rtc_other_pass_found_alone(rtc, tmp_path):
    (frame,) = features(PC_S1_CASSETTE)
    site = site_inside([frame["geometry"]], "LY-Oth")
    cfg = study(site, None, rtc["catalog"], "2024-01-01", "2025-12-31")
    manifest = tmp_path / "m.json"
    search_tile("LY-Oth", site, cfg, manifest, kinds=("s1",))
    (acq,) = json.loads(manifest.read_text())["acquisitions"]
    assert [i["id"] for i in acq["items"]] == [frame["id"]]
    assert acq["id"].endswith("_DES_LY-Oth")
    assert acq["items"][0]["properties"]["sat:relative_orbit"] == 80


def test_plan_counts_acquisitions_and_bytes_from_file_size(rtc, tmp_path):
    """The plan of the seam tile from the frames as published (no replicas: the plan reads
    only metadata): one acquisition of two frames; its bytes from their file:size (about
    0.84-1.84 GB each), scaled by the tile's share of each frame's extent."""
    grid = rtc["grid"]
    frames = [pystac.Item.from_dict(f, preserve_dict=True) for f in rtc["frames"]]
    seam = [
        f for f in frames if f.id in {i["id"] for i in rtc["manifest"]["acquisitions"][0]["items"]}
    ]
    manifest = {
        **rtc["manifest"],
        "acquisitions": group_acquisitions("s1", seam, "LY-Sea"),
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    (row,) = plan_tile(path)
    assert row["collection"] == "sentinel-1-rtc"
    assert (row["acquisitions"], row["scenes"]) == (1, 2)
    assert row["share_from_file_size"] == 1.0
    want = 0.0
    for f in seam:
        t = Affine(*f.properties["proj:transform"][:6])
        h, w = f.properties["proj:shape"]
        left, bottom, right, top = transform_bounds(f"EPSG:{grid.epsg}", "EPSG:32633", *grid.bounds)
        dx = max(0, min(right, t.c + w * t.a) - max(left, t.c))
        dy = max(0, min(top, t.f) - max(bottom, t.f + h * t.e))
        share = dx * dy / (w * t.a * h * -t.e)
        want += share * sum(f.assets[k].extra_fields["file:size"] for k in ("vv", "vh"))
    # a 640 m tile of frames about 290 km wide: tens of kB, not the frames' 5 GB
    assert 1e4 < want < 1e6
    assert row["approx_bytes"] == pytest.approx(want, abs=1)
    text = format_plan([row])
    assert "LY-Sea" in text and "sentinel-1-rtc" in text and "total: 1 acquisitions" in text


@pytest.mark.parametrize("item_id", sorted(EXPECTED_OFFSET))
def test_cube_reads_a_real_item_as_the_acquisition_does(item_id):
    """A catalog of the providers' own items given to the cube directly (no acquisition):
    each band read with the same offset, by the same rule."""
    from ecoembed.cube.sentinel2 import scale_offset

    d = next(i for i in all_s2_items() if i["id"] == item_id)
    item = pystac.Item.from_dict(d, preserve_dict=True)
    names = ASSET_NAMING[naming(d)]["s2"]
    for band in sentinel.S2_BAND_NAMES:
        scale, offset = scale_offset(item, names[band])
        assert (scale, offset) == pytest.approx((1e-4, EXPECTED_OFFSET[item_id][0]))
