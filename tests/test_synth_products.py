"""What synthesize_tile writes: real formats, readable by real libraries, equal to truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension

from ecoembed.io import fluxnet, stac, zarrio
from ecoembed.io.names import fluxnet_dd_filename
from ecoembed.io.sentinel import S2_BAND_NAMES, S2_BANDS
from tests.conftest import PRODUCTS_CFG, write_products


@pytest.fixture(scope="module")
def items(products):
    return stac.read_item_collection(products["tile_dir"] / "items.json")


@pytest.fixture(scope="module")
def truth(products):
    return zarrio.open_zarr(products["truth_path"])


def s2_items(items):
    return [
        i
        for i in items
        if i.collection_id == stac.S2_COLLECTION_ID or "s2:processing_baseline" in i.properties
    ]


def s1_items(items):
    return [i for i in items if "sar:instrument_mode" in i.properties]


def test_every_raster_opens_with_the_right_grid_dtype_and_nodata(items):
    assert len(s2_items(items)) == 37 and len(s1_items(items)) == 2 * 15  # 181 days
    res = {b.name: b.resolution_m for b in S2_BANDS} | {"SCL": 20, "vv": 10, "vh": 10}
    for item in items:
        assert item.properties[stac.TILE_PROPERTY] == "tile00"
        assert ProjectionExtension.ext(item).code == "EPSG:32632"
        for key, asset in item.assets.items():
            with rasterio.open(asset.href) as src:
                assert src.crs.to_epsg() == 32632
                assert src.res == (res[key], res[key])
                assert src.bounds.left == 640_000.0 and src.bounds.top == 5_650_000.0
                assert src.width * res[key] == PRODUCTS_CFG["tile_size"] * 10
                if key in S2_BAND_NAMES:
                    assert src.dtypes[0] == "uint16" and src.nodata == 0
                    assert src.scales[0] == pytest.approx(1e-4)
                    assert src.offsets[0] == pytest.approx(-0.1)
                    band = RasterExtension.ext(asset).bands[0]
                    assert band.scale == pytest.approx(1e-4) and band.offset == -0.1
                elif key == "SCL":
                    assert src.dtypes[0] == "uint8" and src.nodata == 0
                else:
                    assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
                assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def read_reflectance(href: str) -> np.ndarray:
    """DN to reflectance with the scale/offset recorded in the file, as a reader must."""
    with rasterio.open(href) as src:
        return src.read(1).astype(np.float64) * src.scales[0] + src.offsets[0]


def test_recorded_scale_offset_gives_truth_reflectance_on_clear_pixels(items, truth):
    s2 = sorted(s2_items(items), key=lambda i: i.datetime)
    clear_truth = truth["s2_clear"].values
    cloud = truth["cloud"].values
    errs = {b: [] for b in S2_BAND_NAMES}
    for t, item in enumerate(s2):
        clear = cloud[t] == 0
        for k, band in enumerate(S2_BAND_NAMES):
            refl = read_reflectance(item.assets[band].href)
            want = clear_truth[t, k]
            if refl.shape != want.shape:  # 20 m band: compare with the 20 m mean of truth
                want = want.reshape(refl.shape[0], 2, refl.shape[1], 2).mean(axis=(1, 3))
                ok = clear.reshape(refl.shape[0], 2, refl.shape[1], 2).all(axis=(1, 3))
            else:
                ok = clear
            errs[band].append(refl[ok] - want[ok])
    for band, e in errs.items():
        e = np.concatenate(e)
        assert e.size > 10_000
        assert np.sqrt(np.mean(e**2)) < 0.005, band  # sensor + atmospheric residual noise
        assert abs(e.mean()) < 0.001, band  # and no bias: the offset really is -0.1


def test_truth_times_are_the_item_datetimes(items, truth):
    item_times = sorted(i.datetime.replace(tzinfo=None) for i in s2_items(items))
    np.testing.assert_array_equal(
        truth["time"].values, np.array(item_times, dtype="datetime64[ns]")
    )


def test_cloudy_pixels_differ_from_truth_and_scl_codes_are_esa(items, truth):
    s2 = sorted(s2_items(items), key=lambda i: i.datetime)
    codes = set()
    for item in s2:
        with rasterio.open(item.assets["SCL"].href) as src:
            codes |= set(np.unique(src.read(1)).tolist())
    assert codes <= set(range(12)) and {4, 8}.issubset(codes)
    cloudy = truth["cloud"].values == 1
    b04 = np.stack([read_reflectance(i.assets["B04"].href) for i in s2])
    assert np.abs(b04 - truth["s2_clear"].values[:, 2])[cloudy].mean() > 0.05


def test_s1_is_linear_gamma0_with_orbits(items):
    states = {i.properties["sat:orbit_state"] for i in s1_items(items)}
    assert states == {"ascending", "descending"}
    item = s1_items(items)[0]
    assert item.properties["sar:polarizations"] == ["VV", "VH"]
    with rasterio.open(item.assets["vv"].href) as src:
        vv = src.read(1)
    assert np.nanmedian(vv) > 0 and np.nanmedian(10 * np.log10(vv)) > -25  # linear power


def test_flux_files_are_fluxnet_fullset_dd(products):
    flux_dir = products["flux_dir"]
    sites = fluxnet.read_site_table(flux_dir / "sites_tile00.csv")
    assert list(sites["IGBP"]) == ["DBF", "CRO"]
    assert sites["LOCATION_LAT"].between(50.9, 51.1).all()
    for site in sites["SITE_ID"]:
        path = flux_dir / fluxnet_dd_filename(site, 2022, 2022)
        text = path.read_text()
        header = text.splitlines()[0].split(",")
        for col in (
            "TIMESTAMP",
            "GPP_NT_VUT_REF",
            "GPP_DT_VUT_REF",
            "NEE_VUT_REF",
            "NEE_VUT_REF_QC",
            "SW_IN_F",
            "TA_F",
            "VPD_F",
            "P_F",
            "SWC_F_MDS_1",
        ):
            assert col in header
        assert text.splitlines()[1].startswith("20220101,")
        assert ",-9999," in text or text.rstrip().endswith(",-9999")
        df = fluxnet.read_fluxnet(path)
        assert len(df) == 181 and df["GPP_NT_VUT_REF"].isna().any()


def test_truth_store_has_crs_and_documented_variables(truth):
    assert truth.rio.crs.to_epsg() == 32632
    assert truth["s2_clear"].dims == ("time", "band", "y", "x")
    assert list(truth["band"].values) == list(S2_BAND_NAMES)
    assert truth["gpp"].dims == ("day", "y", "x") and truth["gpp"].attrs["units"] == "gC m-2 d-1"
    assert set(np.unique(truth["landcover"].values)) <= {1, 4, 10, 12, 13, 17}
    assert "flag_meanings" in truth["landcover"].attrs and "flag_meanings" in truth["cloud"].attrs
    assert set(truth["event_kind"].values.tolist()) <= {"harvest", "mowing"}
    assert json.loads(truth.attrs["provenance"])["seed"] == 3


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_outputs(tmp_path):
    cfg = {**PRODUCTS_CFG, "tile_size": 64, "end": "2022-02-28", "n_sites": 1}
    a, b = tmp_path / "a", tmp_path / "b"
    write_products(a, cfg)
    write_products(b, cfg)
    da, db = tree_digest(a), tree_digest(b)
    assert len(da) > 50
    assert da == db
    write_products(c := tmp_path / "c", cfg, seed=4)
    assert tree_digest(c) != da
