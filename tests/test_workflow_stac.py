"""The workflow in real-data mode (data_source: stac), offline, end to end: the checkpoint
stac_search, one acquire job per batch of acquisitions, tile_items, stac_catalog, flux_real,
the plan and the cubes, run by Snakemake against a static STAC catalog of local COGs
(tests/stac_archive.py) and the sites' FLUXNET files in a folder of their own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

from ecoembed.io import fluxnet, stac, zarrio
from ecoembed.io.grid import site_grid
from ecoembed.io.names import fluxnet_dd_filename
from tests.stac_archive import (
    COMMON,
    Archive,
    field_dn,
    field_power,
    tile_centre,
    tile_centres,
    utc,
)
from tests.test_workflow import snakemake

pytestmark = pytest.mark.slow

# Two towers, each its own tile: one in UTM zone 32 (the archive's scenes, in zone 33, are
# reprojected onto it), one in zone 33 (same CRS, other resolutions).
SITES = [
    {"id": "DE-Xyz", "lat": 50.95, "lon": 11.70, "igbp": "GRA"},
    {"id": "DE-Abc", "lat": 51.20, "lon": 13.90, "igbp": "ENF"},
]
BUFFER_M = 640  # 128 x 128 tiles
START, END = "2019-01-01", "2020-12-31"
FLUX_YEARS = (2018, 2021)  # the source files span more than the study
TARGETS = ("acquired", "cubes")

# What the searches must find, by tile and collection (acquisition ids as the library names
# them: sensor and unit, UTC time of the first scene, orbit direction for S1, tile).
EXPECTED = {
    "DE-Xyz": {
        "sentinel-2-l2a": [
            "S2B_MSIL2A_20190601T102031_DE-Xyz",  # two granules of one overpass
            "S2B_MSIL2A_20200701T102029_DE-Xyz",  # baseline 04.00: DN offset -0.1
        ],
        "sentinel-1-rtc": [
            "S1A_IW_GRDH_20190603T170500_ASC_DE-Xyz",
            "S1A_IW_GRDH_20200604T054000_DES_DE-Xyz",  # ends inside the tile
        ],
    },
    "DE-Abc": {
        "sentinel-2-l2a": ["S2B_MSIL2A_20190810T101019_DE-Abc"],
        "sentinel-1-rtc": ["S1A_IW_GRDH_20190812T165000_ASC_DE-Abc"],
    },
}


def build_archive(root: Path) -> tuple[Path, dict]:
    """The static catalog: the expected scenes, and some the searches must leave out."""
    grids = {s["id"]: site_grid(s["lat"], s["lon"], BUFFER_M) for s in SITES}
    a = Archive(root, grids["DE-Xyz"])
    kw = {"baseline": "02.12", "with_offset": False}
    a.s2_scene("S2B_A_north", utc(2019, 6, 1, 10, 20, 31), cloud=10, rows=slice(0, 90), **kw)
    a.s2_scene("S2B_A_south", utc(2019, 6, 1, 10, 20, 31), cloud=12, rows=slice(70, None), **kw)
    a.s2_scene("S2B_B", utc(2020, 7, 1, 10, 20, 29), baseline="04.00", cloud=30, cloud_east=True)
    a.s2_scene("S2B_cloudy", utc(2019, 6, 11, 10, 20, 31), cloud=85, **kw)  # over the limit
    a.s2_scene("S2B_before", utc(2018, 12, 30, 10, 20, 31), cloud=5, **kw)  # before the study
    a.s1_scene("S1A_asc", utc(2019, 6, 3, 17, 5, 0), orbit="ascending")
    a.s1_scene("S1A_desc", utc(2020, 6, 4, 5, 40, 0), orbit="descending", rows=slice(0, 120))
    a.over(grids["DE-Abc"])
    a.s2_scene("S2B_C", utc(2019, 8, 10, 10, 10, 19), baseline="02.14", cloud=5)
    a.s2_scene("S2B_after", utc(2021, 1, 2, 10, 10, 19), baseline="04.00", cloud=5)  # after
    a.s1_scene("S1A_C_asc", utc(2019, 8, 12, 16, 50, 0), orbit="ascending")
    return a.save(), grids


def flux_frame(seed: int) -> pd.DataFrame:
    """A daily FLUXNET table over FLUX_YEARS, with gaps (written as -9999)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(f"{FLUX_YEARS[0]}-01-01", f"{FLUX_YEARS[1]}-12-31", freq="D")
    doy = days.day_of_year.to_numpy()
    gpp = np.maximum(0, 6 * np.sin(np.pi * (doy - 80) / 200)) + rng.random(len(days))
    df = pd.DataFrame(
        {
            "GPP_NT_VUT_REF": gpp,
            "GPP_DT_VUT_REF": gpp * 1.05,
            "NEE_VUT_REF": 2.0 - gpp,
            "NEE_VUT_REF_QC": rng.uniform(0.4, 1.0, len(days)),
            "SW_IN_F": 150 + 100 * np.sin(2 * np.pi * (doy - 80) / 365),
            "TA_F": 9 + 10 * np.sin(2 * np.pi * (doy - 110) / 365),
        },
        index=pd.DatetimeIndex(days, name="TIMESTAMP"),
    )
    df.loc[rng.random(len(days)) < 0.05, "GPP_NT_VUT_REF"] = np.nan
    return df


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Archive, FLUXNET folder and config written; the workflow run on TARGETS."""
    root = tmp_path_factory.mktemp("stac_study")
    catalog, grids = build_archive(root / "archive")
    flux_dir = root / "fluxdata"
    flux_dir.mkdir()
    # as the ONEFlux and ICOS releases name them (found by site id, FLUXNET and _DD_)
    names = {
        "DE-Xyz": f"FLX_DE-Xyz_FLUXNET2015_FULLSET_DD_{FLUX_YEARS[0]}-{FLUX_YEARS[1]}_beta-3.csv",
        "DE-Abc": "ICOSETC_DE-Abc_FLUXNET_DD_L2.csv",
    }
    sources = {}
    for i, site in enumerate(SITES):
        sources[site["id"]] = flux_frame(i)
        fluxnet.write_fluxnet_dd(sources[site["id"]], flux_dir / names[site["id"]])
    cfg = {
        "data_source": "stac",
        "raw_dir": "results/raw",
        "stac": {
            "sites": SITES,
            "buffer_m": BUFFER_M,
            "start": START,
            "end": END,
            "flux_dir": str(flux_dir),
            "resampling": "bilinear",
            "retries": 0,
            "backoff_s": 0,
            "s2": {"api": str(catalog), "asset_names": "common", "max_cloud_cover": 60},
            "s1": {"api": str(catalog), "asset_names": "band", "sign": "none"},
        },
        "gpp": {"input_sets": ["fused", "s2"]},
    }
    configfile = root / "stac.yaml"
    configfile.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    work = root / "work"
    work.mkdir()
    args = ("--cores", "2", "--configfile", str(configfile))
    # first a download that fails (an asset gone from the archive), the rest kept going;
    # then the asset back and the workflow run again, as a user would after a network fault
    broken = root / "archive" / "scenes" / "S1A_desc" / "vh.tif"
    broken.rename(broken.with_suffix(".away"))
    failed = snakemake(work, *TARGETS, *args, "--keep-going", timeout=600)
    broken.with_suffix(".away").rename(broken)
    assert failed.returncode != 0, failed.stdout + failed.stderr
    run = snakemake(work, *TARGETS, *args, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    return {
        "work": work,
        "raw": work / "results" / "raw",
        "configfile": configfile,
        "grids": grids,
        "flux_sources": sources,
        "failed_log": failed.stdout + failed.stderr,
        "log": run.stdout + run.stderr,
    }


def jobs_of(log: str) -> dict[str, int]:
    """Rule -> number of jobs run (or planned, in a dry run), from the jobs' headers."""
    found = re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", log, re.MULTILINE)
    return {rule: found.count(rule) for rule in set(found)}


def test_one_search_per_site_and_one_job_per_batch(study):
    """A site is a few jobs, not one per acquisition: here one batch per collection."""
    jobs = jobs_of(study["failed_log"])
    n_batches = sum(len(by) for by in EXPECTED.values())
    assert jobs["stac_search"] == len(SITES) and jobs["acquire"] == n_batches, jobs
    # the tile with the failed download waits; the other tile is gathered
    assert jobs["tile_items"] == 1 and "stac_catalog" not in jobs and "cube" not in jobs, jobs


def test_a_failed_download_fails_its_batch_and_the_rerun_fetches_only_it(study):
    lost = EXPECTED["DE-Xyz"]["sentinel-1-rtc"][1]
    kept = EXPECTED["DE-Xyz"]["sentinel-1-rtc"][0]
    failed = study["failed_log"]
    assert "Error in rule acquire:" in failed and "batch=sentinel-1-rtc-001" in failed
    log_dir = study["work"] / "results" / "logs" / "acquire" / "DE-Xyz"
    jobs = jobs_of(study["log"])
    assert jobs["acquire"] == 1 and "batch=sentinel-1-rtc-001" in study["log"], jobs
    assert "stac_search" not in jobs and "flux_real" not in jobs, jobs  # nothing searched again
    assert jobs["tile_items"] == 1 and jobs["stac_catalog"] == 1, jobs
    assert jobs["cube"] == len(SITES), jobs
    # the re-run kept what the failed run had finished and fetched only the lost one
    rerun = (log_dir / "sentinel-1-rtc-001.log").read_text()
    assert "2 acquisitions, 1 reused from an earlier run, 1 acquired, 0 failed" in rerun, rerun
    # the failed run named the lost acquisition and kept the finished one
    assert "1 of 2 acquisitions failed" in failed and f"{lost}: " in failed, failed
    assert kept in (study["raw"] / "manifests" / "DE-Xyz.json").read_text()


def test_plan_tells_acquisitions_and_bytes_per_site(study):
    args = ("--cores", "1", "--configfile", str(study["configfile"]))
    run = snakemake(study["work"], "plan", *args)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert jobs_of(out) == {"plan": 1}, out  # the searches are done: no network again
    table = pd.read_csv(study["raw"] / "plan.csv")
    got = {(r.tile, r.collection): r.acquisitions for r in table.itertuples()}
    want = {(t, c): len(ids) for t, by in EXPECTED.items() for c, ids in by.items()}
    assert got == want
    # S1 from the items' file:size, S2 (no file:size) from the tile's pixels
    s1 = table[table.collection == "sentinel-1-rtc"]
    assert (s1.share_from_file_size == 1.0).all() and (s1.approx_bytes > 0).all()
    s2 = table[table.collection == "sentinel-2-l2a"]
    assert (s2.share_from_file_size == 0.0).all()
    # the tile's share of each source asset: (1280 m)^2 of 4 uint16 bands at 15 m, 6 at 30 m
    # and the uint8 SCL at 30 m per scene; DE-Abc is in the archive's zone, DE-Xyz is not
    # (its tile's bounds in zone 33 are a larger, rotated box)
    per_scene = 1280**2 * (4 * 2 / 15**2 + 6 * 2 / 30**2 + 1 / 30**2)
    size = s2.set_index("tile").approx_bytes
    scenes = s2.set_index("tile").scenes
    assert size["DE-Abc"] == pytest.approx(per_scene * scenes["DE-Abc"], abs=1)
    assert 1.0 < size["DE-Xyz"] / (per_scene * scenes["DE-Xyz"]) < 1.25
    assert "total: 6 acquisitions" in out


def test_manifests_list_the_acquisitions_in_the_period_under_the_cloud_limit(study):
    for tile, by_collection in EXPECTED.items():
        manifest = json.loads((study["raw"] / "manifests" / f"{tile}.json").read_text())
        assert manifest["tile"] == tile and manifest["start"] == START
        found = {c: [] for c in by_collection}
        for a in manifest["acquisitions"]:
            found[a["collection"]].append(a["id"])
        assert found == by_collection, tile
        grid = study["grids"][tile]
        assert manifest["grid"]["epsg"] == grid.epsg
        assert manifest["grid"]["shape"] == [128, 128]
    first = json.loads((study["raw"] / "manifests" / "DE-Xyz.json").read_text())
    assert {i["id"] for i in first["acquisitions"][0]["items"]} == {"S2B_A_north", "S2B_A_south"}


def test_every_acquisition_folder_holds_its_cogs_and_item(study):
    for tile, by_collection in EXPECTED.items():
        grid = study["grids"][tile]
        tile_dir = study["raw"] / "tiles" / tile
        for collection, ids in by_collection.items():
            on_disk = sorted(p.name for p in (tile_dir / collection).iterdir())
            assert on_disk == sorted(ids), (tile, collection)  # nothing temporary left
            for acq in ids:
                folder = tile_dir / collection / acq
                want = [*COMMON] if collection == stac.S2_COLLECTION_ID else ["vv", "vh"]
                assert sorted(p.stem for p in folder.glob("*.tif")) == sorted(want), acq
                (item,) = stac.read_item_collection(folder / "item.json")
                assert item.id == acq
                assert all(Path(a.get_absolute_href()).is_file() for a in item.assets.values())
                with rasterio.open(folder / ("B04.tif" if "S2" in acq else "vv.tif")) as src:
                    assert src.crs.to_epsg() == grid.epsg and src.shape == (128, 128)
                    assert src.transform == grid.transform
            log = study["work"] / "results" / "logs" / "acquire" / tile
            assert (log / f"{collection}-001.log").is_file()
            (batch,) = (tile_dir / "batches").glob(f"{collection}-*.json")
            assert [i.id for i in stac.read_item_collection(batch, within=tile_dir)] == ids


def test_items_and_catalog_hold_every_acquisition(study):
    every = set()
    for tile, by_collection in EXPECTED.items():
        items = stac.read_item_collection(study["raw"] / "tiles" / tile / "items.json")
        ids = [i.id for i in items]
        assert ids[0] == tile  # the grid item first, as the synthetic world writes
        acqs = {a for collection in by_collection.values() for a in collection}
        assert sorted(ids[1:]) == sorted(acqs)
        every |= acqs
    items = stac.read_catalog_items(study["raw"] / "catalog.json")
    by_collection = {
        c: {i.id for i in items if i.collection_id == c}
        for c in (stac.S2_COLLECTION_ID, stac.S1_COLLECTION_ID)
    }
    for c, ids in by_collection.items():
        assert ids == {a for by in EXPECTED.values() for a in by[c]}, c
    assert all(Path(a.href).is_file() for i in items for a in i.assets.values())
    assert every == by_collection[stac.S2_COLLECTION_ID] | by_collection[stac.S1_COLLECTION_ID]


def test_cubes_have_the_acquisitions_on_the_tile_grid_with_the_source_values(study):
    for tile, by_collection in EXPECTED.items():
        grid = study["grids"][tile]
        cube = zarrio.open_zarr(study["work"] / "results" / "cube" / f"{tile}.zarr")
        assert cube.rio.crs.to_epsg() == grid.epsg and cube.rio.transform() == grid.transform
        assert (cube.sizes["y"], cube.sizes["x"]) == (128, 128)
        assert cube["s2_item"].values.tolist() == by_collection[stac.S2_COLLECTION_ID]
        assert cube["s1_item"].values.tolist() == by_collection[stac.S1_COLLECTION_ID]
        # reflectance and backscatter at a few pixels (row, col) are the archive's planes
        x, y = tile_centres(grid, 10.0)
        centre = tile_centre(grid)
        pixels = ([5, 64, 100, 120], [7, 64, 30, 110])
        want = field_dn(x, y, centre)[pixels] * 1e-4
        s2 = cube["s2"].sel(band="B08").values
        offsets = [0.0, -0.1] if tile == "DE-Xyz" else [0.0]  # baseline 04.00: -0.1
        for t, offset in enumerate(offsets):
            np.testing.assert_allclose(s2[t][pixels], want + offset, atol=2e-4)
        vv = cube["s1"].sel(pol="VV").values
        np.testing.assert_allclose(
            vv[0][pixels], 10 * np.log10(field_power(x, y, centre)[pixels]), atol=0.01
        )
    vv = zarrio.open_zarr(study["work"] / "results" / "cube" / "DE-Xyz.zarr")["s1"].values
    assert np.isnan(vv[1, 0, -20:]).all()  # the descending scene's nodata, not -inf


def test_flux_files_are_cut_to_the_study_years(study):
    flux = study["raw"] / "flux"
    for site in SITES:
        got = fluxnet.read_fluxnet(flux / fluxnet_dd_filename(site["id"], 2019, 2020))
        assert got.index[0] == pd.Timestamp(START) and got.index[-1] == pd.Timestamp(END)
        assert len(got) == 731
        want = study["flux_sources"][site["id"]].loc[START:END]
        assert list(got.columns) == list(want.columns)
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-5, equal_nan=True)
    sites = fluxnet.read_site_table(flux / "sites.csv")
    assert sites["SITE_ID"].tolist() == [s["id"] for s in SITES]
    assert sites["IGBP"].tolist() == [s["igbp"] for s in SITES]


def test_second_run_has_nothing_to_do(study):
    args = ("-n", "--cores", "1", "--configfile", str(study["configfile"]))
    again = snakemake(study["work"], *TARGETS, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout + again.stderr
    # the rest of the workflow plans on the acquired tiles, without what needs the
    # synthetic truth, and without searching or downloading again
    plan = snakemake(study["work"], "all", *args)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    jobs = jobs_of(plan.stdout + plan.stderr)
    assert jobs["pretrain"] == 2 and jobs["embed"] == len(SITES) and jobs["gpp_eval"] == 1, jobs
    assert jobs["site_embeddings"] == 1 and jobs["gpp_inputs"] == 1, jobs
    truth = {"eval_reconstruction", "figure_reconstruction", "figure_temporal_fidelity"}
    raw = {"stac_search", "acquire", "tile_items", "stac_catalog", "flux_real", "cube"}
    assert not (truth | raw) & set(jobs), jobs
