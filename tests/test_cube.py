"""Analysis-ready cubes (issue #3): values against truth, masking, co-registration, and
every kind of bad input the issue names."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject
from scipy.special import polygamma

from ecoembed.config import validate_config
from ecoembed.cube import build_cube
from ecoembed.cube.masking import s2_valid_mask
from ecoembed.cube.sentinel1 import temporal_multilook
from ecoembed.io import stac, zarrio
from ecoembed.io.atomic import OutputExistsError
from ecoembed.io.errors import InputDataError
from ecoembed.io.raster import write_cog

CUBE_CFG = validate_config({})["cube"]
BAND10 = ["B02", "B03", "B04", "B08"]
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def catalog_of(tile_dir: Path) -> Path:
    catalog = tile_dir.parents[1] / "catalog.json"
    stac.build_catalog([tile_dir / "items.json"], catalog)
    return catalog


def cube_of(catalog: Path, out: Path, **cfg) -> object:
    build_cube(catalog, "tile00", out, cube_cfg={**CUBE_CFG, **cfg}, progress=False)
    return zarrio.open_zarr(out)


@pytest.fixture(scope="module")
def built(products, products_cube):
    """The products world catalogued and cubed once (conftest) for the read-only tests."""
    catalog, cube = products_cube
    return {
        "catalog": catalog,
        "cube": zarrio.open_zarr(cube),
        "truth": zarrio.open_zarr(products["truth_path"]),
    }


def world_copy(products, tmp_path: Path) -> tuple[Path, list]:
    """A private copy of the raw tile to damage, with its items."""
    tile_dir = tmp_path / "raw" / "tiles" / "tile00"
    shutil.copytree(products["tile_dir"], tile_dir)
    return tile_dir, stac.read_item_collection(tile_dir / "items.json")


def save(items, tile_dir: Path) -> Path:
    stac.write_item_collection(items, tile_dir / "items.json")
    return catalog_of(tile_dir)


def s2_of(items):
    return [i for i in items if i.collection_id == stac.S2_COLLECTION_ID]


def s1_of(items):
    return [i for i in items if i.collection_id == stac.S1_COLLECTION_ID]


# --- values -------------------------------------------------------------------------


def test_clear_pixels_equal_the_truth(built):
    cube, truth = built["cube"], built["truth"]
    clear = truth["cloud"].values == 0
    for band in cube["band"].values.tolist():
        err = (cube["s2"].sel(band=band).values - truth["s2_clear"].sel(band=band).values)[clear]
        rmse = float(np.sqrt(np.nanmean(err**2)))
        # 10 m bands: sensor noise only; 20 m bands also lose the 10 m detail of the truth
        assert rmse < (0.005 if band in BAND10 else 0.02), (band, rmse)


def test_clear_view_mask_keeps_clear_pixels_and_drops_clouds(built):
    """The dilation removes nearly all cloud; what slips through is faint shadow that SCL
    never flags (as Sen2Cor does), and it barely moves the reflectance."""
    cube, truth = built["cube"], built["truth"]
    valid = cube["s2_valid"].values
    cloud = truth["cloud"].values
    assert (valid & (cloud == 1)).sum() / valid.sum() < 0.005
    assert (valid & (cloud > 0)).sum() / valid.sum() < 0.05
    assert (valid & (cloud == 0)).sum() / (cloud == 0).sum() > 0.7
    idx = [cube["band"].values.tolist().index(b) for b in BAND10]
    err = (cube["s2"].values[:, idx] - truth["s2_clear"].values[:, idx]).transpose(1, 0, 2, 3)
    assert float(np.sqrt(np.mean(err[:, valid] ** 2))) < 0.006


def vh_power(item) -> np.ndarray:
    with rasterio.open(item.assets["vh"].href) as src:
        return src.read(1).astype(np.float64)


def test_s1_is_db_of_the_linear_files(built):
    cube, items = built["cube"], s1_of(stac.read_catalog_items(built["catalog"]))
    s1 = cube["s1"].values
    assert not np.isinf(s1).any() and cube["s1"].attrs["temporal_looks"] == 1
    for t in (0, len(items) - 1):
        want = 10 * np.log10(vh_power(items[t]))
        np.testing.assert_allclose(s1[t, 1], want, rtol=0, atol=1e-4)
    assert set(cube["orbit"].values.tolist()) == {"ascending", "descending"}


def test_s1_multilooked_in_linear_power(built, tmp_path):
    """Three looks: each date the mean power of itself and its neighbours (two at the ends)."""
    items = s1_of(stac.read_catalog_items(built["catalog"]))
    cube = cube_of(built["catalog"], tmp_path / "c.zarr", s1_temporal_looks=3)
    assert cube["s1"].attrs["temporal_looks"] == 3
    last = len(items) - 1
    for t, around in ((0, [0, 1]), (5, [4, 5, 6]), (last, [last - 1, last])):
        want = 10 * np.log10(np.mean([vh_power(items[k]) for k in around], axis=0))
        np.testing.assert_allclose(cube["s1"].values[t, 1], want, rtol=0, atol=1e-4)
    # S2 is untouched
    np.testing.assert_array_equal(cube["s2"].values, built["cube"]["s2"].values)


def test_temporal_multilook_cuts_speckle_as_gamma_statistics_say():
    """Gamma speckle of L looks on a constant target: in dB its standard deviation is
    10/ln(10) sqrt(trigamma(L)); the mean of three dates has 3L looks."""
    looks_grd = 4.4
    rng = np.random.default_rng(0)
    power = rng.gamma(looks_grd, 1 / looks_grd, size=(60, 1, 40, 40))
    db = (10 * np.log10(power)).astype(np.float32)
    out = temporal_multilook(db, 3)[1:-1]  # interior dates: three looks each
    db_std = 10 / np.log(10)
    assert db.std() == pytest.approx(db_std * np.sqrt(polygamma(1, looks_grd)), rel=0.03)
    assert out.std() == pytest.approx(db_std * np.sqrt(polygamma(1, 3 * looks_grd)), rel=0.03)
    # the mean in linear power is kept (dB means are not)
    assert np.mean(10 ** (out / 10)) == pytest.approx(np.mean(power), rel=0.01)


def test_temporal_multilook_averages_neighbours_in_power_and_keeps_gaps():
    db = np.array([0.0, 10.0, 0.0, np.nan, 20.0, 10.0], np.float32).reshape(6, 1, 1, 1)
    got = temporal_multilook(db, 3).ravel()
    want = 10 * np.log10([5.5, 4.0, 5.5, np.nan, 55.0, 55.0])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)  # NaN stays NaN
    np.testing.assert_array_equal(temporal_multilook(db, 1), db)
    with pytest.raises(ValueError, match="odd"):
        temporal_multilook(db, 2)


def test_cube_layout_crs_chunks_and_provenance(built):
    cube = built["cube"]
    assert cube.rio.crs.to_epsg() == 32632
    assert cube.rio.transform() == Affine(10, 0, 640_000, 0, -10, 5_650_000)
    assert cube["s2"].dims == ("time", "band", "y", "x") and cube["s2"].dtype == np.float32
    assert cube["s1"].dims == ("time_s1", "pol", "y", "x")
    assert cube["pol"].values.tolist() == ["VV", "VH"]
    assert cube["s2"].encoding["chunks"] == (32, 10, 64, 64)
    assert cube["s2_item"].values[0].startswith("S2A_MSIL2A_20220101")
    assert cube.attrs["tile"] == "tile00"


def test_threads_give_the_same_cube(built, tmp_path):
    build_cube(
        built["catalog"],
        "tile00",
        tmp_path / "t.zarr",
        cube_cfg=CUBE_CFG,
        progress=False,
        threads=3,
    )
    threaded = zarrio.open_zarr(tmp_path / "t.zarr")
    for name in ("s2", "s2_valid", "s1"):
        np.testing.assert_array_equal(threaded[name].values, built["cube"][name].values)


def test_windows_and_their_halo_give_the_same_cube(built, tmp_path):
    """64-px windows (96-px tile: windows of 64 and 32) and one window agree exactly, also
    where a dilated cloud crosses a window edge."""
    small = cube_of(built["catalog"], tmp_path / "w.zarr", window_px=64)
    for name in ("s2", "s2_valid", "s1"):
        np.testing.assert_array_equal(small[name].values, built["cube"][name].values)


def test_rebuild_removes_what_a_killed_cube_job_left_and_only_that(built, tmp_path):
    """A cube job killed mid-write (SIGKILL: no cleanup ran) left its hidden temporary; the
    next build of that cube removes it, not the temporaries of other cubes beside it."""
    out = tmp_path / "tile00.zarr"
    stale = tmp_path / ".tile00.zarr.tmp-0badc0de"
    (stale / "s2" / "c").mkdir(parents=True)
    (stale / "s2" / "c" / "0").write_bytes(b"half a chunk")
    other = tmp_path / ".tile01.zarr.tmp-0badc0de"  # another job's, maybe still running
    other.mkdir()
    cube = cube_of(built["catalog"], out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "tile00.zarr"]
    for name in ("s2", "s2_valid", "s1"):
        np.testing.assert_array_equal(cube[name].values, built["cube"][name].values)


def test_cube_is_written_only_over_a_cube(built, tmp_path):
    """out_path on a folder of the user's, or on another product: refused before any read."""
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.tex").write_text("results")
    with pytest.raises(OutputExistsError, match="exists and is not an ecoembed product"):
        cube_of(built["catalog"], folder)
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]
    assert (folder / "thesis.tex").read_text() == "results"
    out = tmp_path / "c.zarr"
    cube_of(built["catalog"], out)
    cube_of(built["catalog"], out, window_px=64)  # a cube: replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.zarr", "thesis"]


# --- co-registration ----------------------------------------------------------------


def rewrite(href: str, data: np.ndarray, crs, transform, nodata) -> None:
    with rasterio.open(href) as src:
        scale, offset = src.scales[0], src.offsets[0]
    write_cog(
        href,
        data,
        crs=crs,
        transform=transform,
        nodata=nodata,
        scale=None if scale == 1 else scale,
        offset=None if offset == 0 else offset,
    )


def declare(item, key: str, crs: int, transform: Affine, shape: tuple[int, int]) -> None:
    """Make the item say what its rewritten asset now is, as a real archive's item would."""
    fields = item.assets[key].extra_fields
    if crs != stac.item_epsg(item):
        fields["proj:code"] = f"EPSG:{crs}"
    fields["proj:transform"] = list(transform)[:6]
    fields["proj:shape"] = list(shape)


def test_shifted_asset_is_put_back_on_the_grid(built, products, tmp_path):
    """B04 of one date on a grid starting 2 pixels further east (same ground, shifted
    extent): unchanged where the asset covers the tile, no data where it does not."""
    tile_dir, items = world_copy(products, tmp_path)
    item = s2_of(items)[5]
    with rasterio.open(item.assets["B04"].href) as src:
        dn, t, crs = src.read(1), src.transform, src.crs
    # the asset's first column now lies on the tile's third: same ground, other extent
    rewrite(item.assets["B04"].href, dn[:, 2:], crs, t @ Affine.translation(2, 0), 0)
    declare(item, "B04", 32632, t @ Affine.translation(2, 0), dn[:, 2:].shape)
    cube = cube_of(save(items, tile_dir), tmp_path / "c.zarr")
    got = cube["s2"].sel(band="B04").values[5]
    want = built["cube"]["s2"].sel(band="B04").values[5]
    np.testing.assert_array_equal(got[:, 2:], want[:, 2:])
    assert np.isnan(got[:, :2]).all() and not cube["s2_valid"].values[5][:, :2].any()


def test_asset_in_another_crs_and_resolution_is_reprojected(built, products, tmp_path):
    """All 10 m bands of one date delivered in the neighbouring UTM zone at 12 m: the cube
    still matches the original within resampling error."""
    tile_dir, items = world_copy(products, tmp_path)
    item = s2_of(items)[5]
    for band in BAND10:
        with rasterio.open(item.assets[band].href) as src:
            dn = src.read(1).astype(np.float32)
            dst_t, w, h = rasterio.warp.calculate_default_transform(
                src.crs, "EPSG:32633", src.width, src.height, *src.bounds, resolution=12.0
            )
            out = np.zeros((h, w), np.float32)
            reproject(
                dn,
                out,
                src_transform=src.transform,
                src_crs=src.crs,
                src_nodata=0,
                dst_transform=dst_t,
                dst_crs="EPSG:32633",
                dst_nodata=0,
                resampling=Resampling.bilinear,
            )
        rewrite(item.assets[band].href, np.rint(out).astype(np.uint16), 32633, dst_t, 0)
        declare(item, band, 32633, dst_t, out.shape)
    cube = cube_of(save(items, tile_dir), tmp_path / "c.zarr")
    inner = (slice(3, -3), slice(3, -3))
    for band in BAND10:
        got = cube["s2"].sel(band=band).values[5][inner]
        want = built["cube"]["s2"].sel(band=band).values[5][inner]
        diff = got - want
        assert np.isfinite(diff).all()
        # two bilinear resamplings blur parcel edges; within parcels they agree closely
        assert np.median(np.abs(diff)) < 0.003, band
        assert np.sqrt(np.mean(diff**2)) < 0.02, band


# --- bad input ----------------------------------------------------------------------


def assert_fails_cleanly(catalog: Path, out: Path, *patterns: str) -> None:
    """The error names what it must, with one or several reading threads."""
    for threads in (1, 2):
        assert_fails_cleanly_with(catalog, out, threads, *patterns)


def assert_fails_cleanly_with(catalog: Path, out: Path, threads: int, *patterns: str) -> None:
    with pytest.raises(InputDataError) as err:
        build_cube(catalog, "tile00", out, cube_cfg=CUBE_CFG, progress=False, threads=threads)
    for p in patterns:
        assert p in str(err.value), (p, str(err.value))
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.tmp-*"))  # no partial store left behind


def test_missing_asset_file(products, tmp_path):
    tile_dir, items = world_copy(products, tmp_path)
    item = s2_of(items)[3]
    Path(item.assets["B03"].href).unlink()
    assert_fails_cleanly(
        save(items, tile_dir),
        tmp_path / "c.zarr",
        item.id,
        item.assets["B03"].href,
        "does not exist",
    )


def test_truncated_geotiff(products, tmp_path):
    tile_dir, items = world_copy(products, tmp_path)
    item = s2_of(items)[3]
    path = Path(item.assets["B08"].href)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_fails_cleanly(save(items, tile_dir), tmp_path / "c.zarr", item.id, str(path), "corrupt")


def test_asset_with_wrong_number_of_bands(products, tmp_path):
    tile_dir, items = world_copy(products, tmp_path)
    item = s2_of(items)[3]
    with rasterio.open(item.assets["B02"].href) as src:
        dn, t = src.read(1), src.transform
    write_cog(item.assets["B02"].href, np.stack([dn, dn, dn]), crs=32632, transform=t, nodata=0)
    assert_fails_cleanly(
        save(items, tile_dir), tmp_path / "c.zarr", item.id, "expected 1 band(s), the file has 3"
    )


def test_item_without_projection(products, tmp_path):
    tile_dir, items = world_copy(products, tmp_path)
    item = s1_of(items)[2]
    del item.properties["proj:code"]
    catalog = save(items, tile_dir)
    assert_fails_cleanly(
        catalog, tmp_path / "c.zarr", item.id, "no projection information", str(catalog)
    )


def test_asset_in_another_zone_than_its_item_says_is_refused(products, tmp_path):
    """B04 of one date written in UTM zone 10 with the same numbers (thousands of km away):
    before, that date silently became all-NaN; now the error names file, item, both CRSs."""
    tile_dir, items = world_copy(products, tmp_path)
    item = s2_of(items)[5]
    href = item.assets["B04"].href
    with rasterio.open(href) as src:
        dn, t = src.read(1), src.transform
    rewrite(href, dn, 32610, t, 0)
    assert_fails_cleanly(
        save(items, tile_dir),
        tmp_path / "c.zarr",
        href,
        item.id,
        "does not match its STAC item: CRS EPSG:32610 in the file, EPSG:32632 in the item",
    )


def test_asset_shifted_off_its_declared_grid_is_refused(products, tmp_path):
    """SCL of one date shifted 5 km east (off the tile) while its item declares the tile."""
    tile_dir, items = world_copy(products, tmp_path)
    item = s2_of(items)[4]
    href = item.assets["SCL"].href
    with rasterio.open(href) as src:
        scl, t = src.read(1), src.transform
    shifted = Affine.translation(5000, 0) @ t
    write_cog(href, scl, crs=32632, transform=shifted, nodata=0, overview_resampling="nearest")
    declared = item.assets["SCL"].extra_fields["proj:transform"]
    assert_fails_cleanly(
        save(items, tile_dir),
        tmp_path / "c.zarr",
        href,
        item.id,
        f"transform (20, 0, {shifted.c:.10g}, 0, -20, {t.f:.10g}) in the file, "
        f"(20, 0, {declared[2]:.10g}, 0, -20, {declared[5]:.10g}) in the item",
    )


def test_float_reflectance_instead_of_dns_is_refused(products, tmp_path):
    """B03 of one date delivered as float32 reflectance (NaN nodata) where the item says
    uint16 DNs: read with the DN scaling it would be -0.1 everywhere, counted as clear."""
    tile_dir, items = world_copy(products, tmp_path)
    item = s2_of(items)[3]
    href = item.assets["B03"].href
    with rasterio.open(href) as src:
        dn, t = src.read(1), src.transform
    reflectance = np.where(dn > 0, dn * 1e-4 - 0.1, np.nan).astype(np.float32)
    write_cog(href, reflectance, crs=32632, transform=t, nodata=np.nan)
    assert_fails_cleanly(
        save(items, tile_dir),
        tmp_path / "c.zarr",
        href,
        item.id,
        "data type float32 in the file, uint16 in the item",
        "nodata nan in the file, 0 in the item",
    )


def test_s1_scene_covering_part_of_the_tile(built, products, tmp_path):
    """A scene that ends at the middle of the tile: masked beyond, unchanged before."""
    tile_dir, items = world_copy(products, tmp_path)
    t_idx = 4
    item = s1_of(items)[t_idx]
    for key in ("vv", "vh"):
        with rasterio.open(item.assets[key].href) as src:
            data, t = src.read(1), src.transform
        write_cog(item.assets[key].href, data[:, :40], crs=32632, transform=t, nodata=np.nan)
        declare(item, key, 32632, t, data[:, :40].shape)
    cube = cube_of(save(items, tile_dir), tmp_path / "c.zarr")
    got, want = cube["s1"].values[t_idx], built["cube"]["s1"].values[t_idx]
    np.testing.assert_array_equal(got[:, :, :40], want[:, :, :40])
    assert np.isnan(got[:, :, 40:]).all()
    np.testing.assert_array_equal(
        cube["s1"].values[t_idx + 1], built["cube"]["s1"].values[t_idx + 1]
    )


def test_entirely_cloudy_date_is_masked_not_an_error(built, products, tmp_path):
    tile_dir, items = world_copy(products, tmp_path)
    t_idx = 7
    item = s2_of(items)[t_idx]
    with rasterio.open(item.assets["SCL"].href) as src:
        scl, t = src.read(1), src.transform
    write_cog(
        item.assets["SCL"].href,
        np.full_like(scl, 9),
        crs=32632,
        transform=t,
        nodata=0,
        overview_resampling="nearest",
    )
    cube = cube_of(save(items, tile_dir), tmp_path / "c.zarr")
    assert not cube["s2_valid"].values[t_idx].any()
    np.testing.assert_array_equal(
        cube["s2_valid"].values[t_idx + 1], built["cube"]["s2_valid"].values[t_idx + 1]
    )
    np.testing.assert_array_equal(cube["s2"].values[t_idx], built["cube"]["s2"].values[t_idx])


def test_missing_scale_offset_falls_back_to_the_baseline_rule(built, products, tmp_path, caplog):
    tile_dir, items = world_copy(products, tmp_path)
    item = s2_of(items)[2]
    for asset in item.assets.values():
        asset.extra_fields.pop("raster:bands", None)
    with caplog.at_level(logging.WARNING, logger="ecoembed.cube"):
        cube = cube_of(save(items, tile_dir), tmp_path / "c.zarr")
    assert any(
        item.id in r.getMessage() and "processing-baseline" in r.getMessage()
        for r in caplog.records
    )
    np.testing.assert_array_equal(cube["s2"].values[2], built["cube"]["s2"].values[2])


# --- real scene classification -------------------------------------------------------


@pytest.mark.skipif(not REALDATA.exists(), reason="../shared/realdata not present")
def test_masking_on_real_sen2cor_scl():
    """36 real L2A SCL maps near Ljubljana (codes 2-11) against s2cloudless masks."""
    z = np.load(REALDATA / "s2_eolearn_slovenia" / "s2_timeseries.npz")
    scl, clm = z["scl"], z["clm"][z["scl_time_index"]]
    cfg = {"valid_classes": CUBE_CFG["s2_valid_scl"], "dilate_classes": CUBE_CFG["s2_dilate_scl"]}
    valid = np.stack([s2_valid_mask(s, dilation_px=3, **cfg) for s in scl])
    flagged = np.isin(scl, (3, 8, 9, 10))
    assert not valid[flagged].any()
    assert not valid[np.isin(scl, (0, 1, 2))].any()  # no data, saturated, dark area
    undilated = np.stack([s2_valid_mask(s, dilation_px=0, **cfg) for s in scl])
    assert undilated[np.isin(scl, (4, 5, 6, 7, 11))].all()
    assert valid.sum() < undilated.sum()  # the dilation removes cloud edges
    # where the two cloud detectors agree the sky is clear or overcast, so does the mask
    overcast = clm.reshape(36, -1).mean(axis=1) == 1.0
    clear = clm.reshape(36, -1).mean(axis=1) == 0.0
    per_date = valid.reshape(36, -1).mean(axis=1)
    assert np.median(per_date[overcast]) < 0.05 and np.median(per_date[clear]) > 0.9
