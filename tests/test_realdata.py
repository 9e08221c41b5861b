"""Real samples (../shared/realdata, README there) through the readers where they test real
quirks: Sentinel-1 dB GeoTIFFs at 30 m in EPSG:32720 with all-nodata dates, co-registered
onto a 10 m grid of another zone; real cloud masks hiding the synthetic clear-sky truth in
a reconstruction test; the Spanish field's per-pixel L2A NetCDF through the S2 reading
path. The flux files and the real SCL codes are tested in test_io_fluxnet / test_cube.

Every test skips with the reason when the folder is absent (a user's clone lacks it);
nothing from it is copied into the repository.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from ecoembed.cube.masking import s2_valid_mask
from ecoembed.cube.sentinel1 import read_s1_window
from ecoembed.cube.sentinel2 import read_scl, scale_offset
from ecoembed.embed.baselines import choose_lambda, linear_fill, whittaker_fill
from ecoembed.evaluation.reconstruction import ErrorSums, score
from ecoembed.io import stac, zarrio
from ecoembed.io.grid import GridSpec
from ecoembed.io.raster import read_on_grid, write_cog
from ecoembed.io.timeaxis import day_numbers

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
S1_DIR = REALDATA / "s1_bayts_bolivia_vv"
S2_CLOUDS = REALDATA / "s2_eolearn_slovenia" / "s2_timeseries.npz"
SPAIN = REALDATA / "s1s2_fusets_spain_field"


def needs(path: Path):
    return pytest.mark.skipif(
        not path.exists(),
        reason=f"real sample {path.relative_to(REALDATA.parent)} not present "
        "(../shared/realdata is not part of a clone)",
    )


# --- Sentinel-1 VV dB GeoTIFFs, Bolivia ------------------------------------------------


def bolivia_items() -> tuple[list, dict]:
    """One STAC item per real GeoTIFF, as a catalog would hold them (VV only, dB)."""
    meta = json.loads((S1_DIR / "metadata.json").read_text())["s1vv_tseries"]
    items = []
    for rec in meta["per_file"]:
        path = S1_DIR / rec["file"]
        with rasterio.open(path) as src:
            t, shape, bounds = src.transform, src.shape, tuple(src.bounds)
        item = stac.make_s1_item(
            f"S1_VV_{rec['date']}",
            tile="bolivia",
            datetime=f"{rec['date']}T10:00:00Z",
            epsg=32720,
            bbox=bounds,
            assets={"vv": (str(path), t, shape)},
            orbit_state="descending",
            relative_orbit=1,
        )
        band = item.assets["vv"].extra_fields["raster:bands"][0]
        band.update({"unit": "dB", "nodata": -3.4e38})
        items.append(item)
    return items, {r["date"]: r for r in meta["per_file"]}


def grid_in_zone_21() -> GridSpec:
    """A 10 m grid in EPSG:32721 over the middle 2 km of the 3 km scenes (UTM 20S)."""
    cx, cy = 594555.0 + 1500.0, 8003065.0 - 1500.0
    xs, ys = warp_transform("EPSG:32720", "EPSG:32721", [cx], [cy])
    left, top = round(xs[0] - 1000.0, -1), round(ys[0] + 1000.0, -1)
    return GridSpec(32721, Affine(10, 0, left, 0, -10, top), 200, 200)


@needs(S1_DIR)
def test_real_s1_db_geotiffs_coregistered_onto_another_zone():
    items, meta = bolivia_items()
    grid = grid_in_zone_21()
    window = Window(0, 0, grid.width, grid.height)
    # where each 10 m pixel centre falls in the 30 m source, by hand
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    x, y = grid.transform @ (cols, rows)
    sx, sy = warp_transform("EPSG:32721", "EPSG:32720", x.ravel(), y.ravel())
    src_col = np.floor((np.asarray(sx) - 594555.0) / 30.0).astype(int).reshape(x.shape)
    src_row = np.floor((8003065.0 - np.asarray(sy)) / 30.0).astype(int).reshape(x.shape)
    assert src_col.min() >= 0 and src_row.max() < 100  # the grid lies inside the scenes

    empty = [d for d, r in meta.items() if r["valid_fraction"] == 0.0]
    assert empty == ["2016-01-12", "2016-02-16", "2016-03-24", "2016-04-17", "2016-05-11"]
    for item in items:
        date = item.id.removeprefix("S1_VV_")
        db = read_s1_window(item, grid, window, Resampling.nearest, "bolivia")
        assert db.shape == (2, 200, 200) and np.isnan(db[1]).all()  # no VH delivered
        vv = db[0]
        if date in empty:
            assert np.isnan(vv).all(), date  # all-nodata dates masked, -3.4e38 never leaks
            continue
        with rasterio.open(item.assets["vv"].href) as src:
            source = src.read(1)
            ok = src.read_masks(1) > 0
        want = np.where(ok[src_row, src_col], source[src_row, src_col], np.nan)
        same = (vv == want) | (np.isnan(vv) & np.isnan(want))
        # nearest: the very source pixel, except for centres on a source pixel edge
        assert same.mean() > 0.995, (date, same.mean())
        valid = np.isfinite(vv)
        # the forest mask: about half the scene (47 %), 58 % of this part of it
        assert 0.5 < valid.mean() < 0.65 and abs(valid.mean() - np.isfinite(want).mean()) < 0.005
        assert (
            meta[date]["min_db"] - 1e-3
            <= np.nanmin(vv)
            <= np.nanmax(vv)
            <= meta[date]["max_db"] + 1e-3
        )
        # bilinear interpolates dB within the date's range and never across the mask
        smooth = read_s1_window(item, grid, window, Resampling.bilinear, "bolivia")[0]
        assert np.nanmin(smooth) >= meta[date]["min_db"] - 1e-3
        assert np.nanmax(smooth) <= meta[date]["max_db"] + 1e-3
        assert abs(np.isfinite(smooth).mean() - valid.mean()) < 0.03


# --- real cloud masks hiding the synthetic truth -----------------------------------------


def reconstruct_under(hidden: np.ndarray, truth: np.ndarray, days: np.ndarray) -> dict:
    """Hide ``truth`` (T, C, H, W) where ``hidden`` (T, H, W), fill it with the
    reconstruction evaluation's baselines, and score them with its own scorer: RMSE on the
    hidden and on the visible pixel-dates, and how many were scored."""
    t, c, h, w = truth.shape
    obs = np.where(hidden[:, None], np.nan, truth).reshape(t, c, -1).astype(np.float32)
    lam, _ = choose_lambda(obs, days, [10.0, 100.0, 1000.0], np.random.default_rng(0))
    preds = {
        "linear": linear_fill(obs, days, days).reshape(truth.shape),
        "whittaker": whittaker_fill(obs, days, days, lam).reshape(truth.shape),
    }
    bands = ["B02", "B03", "B04", "B08"]  # the 10 m bands: no 2 x 2 block averaging
    sums = ErrorSums()
    score(
        sums,
        "s2_dates",
        {k: v[:, :4] for k, v in preds.items()},
        truth[:, :4],
        {"hidden": hidden, "visible": ~hidden},
        bands,
    )
    table = sums.table(bands)
    rows = table[table["band"] == "all"].set_index(["subset", "method"])
    return {k: (float(r["rmse"]), int(r["n"])) for k, r in rows.iterrows()}


def gap_days(hidden: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(T, H, W): days between the visible views before and after each pixel-date."""
    t = hidden.shape[0]
    vis = ~hidden.reshape(t, -1)
    out = np.zeros(vis.shape)
    for p in range(vis.shape[1]):
        seen = np.flatnonzero(vis[:, p])
        after = np.searchsorted(seen, np.arange(t))
        before = seen[np.clip(after - 1, 0, None)]
        after = seen[np.clip(after, None, seen.size - 1)]
        out[:, p] = days[after] - days[before]
    return out.reshape(hidden.shape)


@needs(S2_CLOUDS)
def test_real_cloud_masks_as_hiding_patterns(products, record_property):
    """The synthetic world's clear-sky reflectance hidden under the real s2cloudless masks
    of the first 36 dates near Ljubljana (cloud shapes, edges and overcast runs as they
    are), beside the same under the world's own clouds: the two RMSEs are reported side by
    side (-s output, and the junit properties)."""
    truth = zarrio.open_zarr(products["truth_path"])
    clear = truth["s2_clear"].values.astype(np.float32)  # (T, band, 96, 96)
    t, _, h, w = clear.shape
    days = day_numbers(truth["time"].values)
    real = np.load(S2_CLOUDS)["clm"][:t, :h, :w].astype(bool)  # chronological frames
    synthetic = truth["cloud"].values > 0
    for mask in (real, synthetic):
        mask[0] = mask[-1] = False  # both ends seen, so filling never extrapolates

    got = {
        "real": reconstruct_under(real, clear, days),
        "synthetic": reconstruct_under(synthetic, clear, days),
    }
    for name, res in got.items():
        for method in ("linear", "whittaker"):
            record_property(f"rmse_{name}_clouds_{method}", round(res[("hidden", method)][0], 4))
        print(
            f"\n{name} clouds: {res[('hidden', 'linear')][1] // 4} hidden pixel-dates, RMSE "
            f"linear {res[('hidden', 'linear')][0]:.4f}, "
            f"whittaker {res[('hidden', 'whittaker')][0]:.4f}"
        )
    # the real masks are real: overcast frames, clear frames, partial clouds in between
    per_frame = real.reshape(t, -1).mean(axis=1)
    assert (per_frame == 1).sum() >= 10 and (per_frame == 0).sum() >= 10
    assert ((per_frame > 0) & (per_frame < 1)).sum() >= 5
    # every hidden 10 m pixel-date is scored, for every band
    assert got["real"][("hidden", "linear")][1] == 4 * real.sum()
    assert got["synthetic"][("hidden", "linear")][1] == 4 * synthetic.sum()
    # linear interpolation passes through what it saw
    assert got["real"][("visible", "linear")][0] < 1e-6
    for name in got:
        for method in ("linear", "whittaker"):
            assert 0.003 < got[name][("hidden", method)][0] < 0.05, (name, method)
    # under the real masks, pixel-dates in gaps of three weeks or more are filled worse
    # than those in gaps of up to ten days
    gaps = gap_days(real, days)
    obs = np.where(real[:, None], np.nan, clear[:, :4]).reshape(t, 4, -1)
    err = (linear_fill(obs, days, days).reshape(t, 4, h, w) - clear[:, :4]) ** 2
    short = real & (gaps <= 10)
    long_ = real & (gaps >= 21)
    assert short.sum() > 1000 and long_.sum() > 1000
    rmse_short = np.sqrt(err.transpose(1, 0, 2, 3)[:, short].mean())
    rmse_long = np.sqrt(err.transpose(1, 0, 2, 3)[:, long_].mean())
    assert rmse_long > 1.1 * rmse_short, (rmse_short, rmse_long)


# --- the Spanish field's per-pixel L2A (NetCDF) -------------------------------------------


@needs(SPAIN)
def test_real_l2a_netcdf_through_the_s2_reading_path(tmp_path, caplog):
    """B04, B08 and SCL of 31 clear dates of one field (2019, openEO NetCDF, CF grid
    mapping EPSG:32630) as the raw layout holds them (one uint16 COG per band and date,
    nodata 0), read back on the field's 10 m grid through the cube's S2 functions: the
    processing-baseline rule must give offset 0 for 2019 (NDVI equals the file's NDVI
    only then), and the real SCL codes (4, 5; NaN outside the field) give the clear mask."""
    nc = SPAIN / "raw_s2_ndvi_field.nc"
    dates = json.loads((SPAIN / "metadata.json").read_text())["raw_s2_ndvi_field"]["time"]
    layers = {}
    for var in ("B04", "B08", "SCL", "NDVI"):
        with rasterio.open(f'NETCDF:"{nc}":{var}') as src:  # GDAL reads the CF grid mapping
            assert src.crs.to_epsg() == 32630 and src.count == len(dates) == 31
            transform, shape = src.transform, src.shape
            layers[var] = src.read()
    assert transform == Affine(10, 0, 344150, 0, -10, 4626440) and shape == (19, 21)
    grid = GridSpec(32630, transform, *shape)
    window = Window(0, 0, shape[1], shape[0])

    for t in (0, 12, 30):  # winter, spring, the last date
        folder = tmp_path / f"S2_{dates[t]}"
        assets = {}
        for band in ("B04", "B08", "SCL"):
            values = layers[band][t]
            dn = np.where(np.isnan(values), 0, values).astype(
                np.uint8 if band == "SCL" else np.uint16
            )
            write_cog(folder / f"{band}.tif", dn, crs=32630, transform=transform, nodata=0)
            assets[band] = (str(folder / f"{band}.tif"), transform, shape)
        item = stac.make_s2_item(
            f"S2_{dates[t]}",
            tile="spain",
            datetime=f"{dates[t]}T11:00:00Z",
            epsg=32630,
            bbox=grid.bounds,
            assets=assets,
            cloud_cover=0.0,
        )
        # as a 2019 archive item: neither raster:bands scale/offset nor a baseline
        del item.properties["s2:processing_baseline"]
        for asset in item.assets.values():
            asset.extra_fields.pop("raster:bands", None)
        refl = {}
        for band in ("B04", "B08"):
            with caplog.at_level(logging.WARNING, logger="ecoembed.cube"):
                scale, offset = scale_offset(item, band)
            assert (scale, offset) == (1e-4, 0.0)
            dn, ok = read_on_grid(item.assets[band].href, grid, window, item=item.id)
            refl[band] = np.where(ok, dn * scale + offset, np.nan)
        assert "processing-baseline rule" in caplog.text
        ndvi = (refl["B08"] - refl["B04"]) / (refl["B08"] + refl["B04"])
        np.testing.assert_allclose(ndvi, layers["NDVI"][t], atol=1e-6, equal_nan=True)
        scl = read_scl(item, grid, window)
        assert set(np.unique(scl)) <= {0, 4, 5}
        clear = s2_valid_mask(
            scl, valid_classes=[4, 5, 6, 7, 11], dilate_classes=[3, 8, 9, 10], dilation_px=3
        )
        np.testing.assert_array_equal(clear, np.isfinite(layers["NDVI"][t]))
        assert 0.7 < clear.mean() < 0.95  # the field polygon inside its bounding box
