"""The physics the synthetic world must show (issue #2, section 3), asserted on generated
data. Thresholds are the issue's; each would fail if a sensor model were wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from ecoembed.synth.landscape import IGBP_CODES, parcel_interior
from tests.conftest import PHYSICS_CFG


def parcels_of(world, igbp: str, min_px: int = 150, erode: int = 2) -> list[np.ndarray]:
    land = world.landscape
    masks = [
        parcel_interior(land, p, erode)
        for p in np.flatnonzero(land.parcel_class == IGBP_CODES[igbp])
    ]
    return [m for m in masks if m.sum() >= min_px]


def clear_ndvi(world) -> np.ndarray:
    red, nir = world.s2.clear[:, 2], world.s2.clear[:, 6]
    return (nir - red) / (nir + red)


def s2_dates(world) -> pd.DatetimeIndex:
    return world.days[world.s2.day]


def db_of_mean(stack: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Parcel backscatter per acquisition: mean of linear power (averages speckle out)."""
    return 10 * np.log10(np.nanmean(stack[:, mask], axis=1))


# --- Sentinel-2 ---------------------------------------------------------------------


@pytest.mark.parametrize("igbp", ["DBF", "CRO"])
def test_peak_season_ndvi_of_forest_and_crops_above_0_7(world, igbp):
    ndvi = clear_ndvi(world)
    parcels = parcels_of(world, igbp)
    assert parcels, f"no {igbp} parcel in the test world"
    dates = s2_dates(world)
    for year in (2022, 2023):
        in_year = np.asarray(dates.year == year)
        for m in parcels:
            peak = max(np.median(ndvi[i][m]) for i in np.flatnonzero(in_year))
            assert peak > 0.7, f"{igbp} parcel peaks at NDVI {peak:.2f} in {year}"


def test_deciduous_forest_in_winter_below_0_45(world):
    ndvi = clear_ndvi(world)
    winter = np.flatnonzero(np.asarray(s2_dates(world).month.isin([12, 1, 2])))
    assert winter.size > 20
    for m in parcels_of(world, "DBF"):
        worst = max(np.median(ndvi[i][m]) for i in winter)
        assert worst < 0.45, f"DBF winter NDVI reaches {worst:.2f}"


def test_water_ndvi_negative_everywhere(world):
    water = world.landscape.landcover == IGBP_CODES["WAT"]
    assert water.sum() > 50
    assert clear_ndvi(world)[:, water].max() < 0.0


# --- Sentinel-1 ---------------------------------------------------------------------


def test_water_vh_below_minus_20_db(world):
    for m in parcels_of(world, "WAT", min_px=50):
        vh = db_of_mean(world.s1.vh, m)
        assert np.nanmax(vh) < -20.0


@pytest.mark.parametrize("igbp", ["DBF", "ENF"])
def test_forest_vh_between_minus_17_and_minus_10_db(world, igbp):
    for m in parcels_of(world, igbp):
        vh = db_of_mean(world.s1.vh, m)
        assert -17.0 < np.nanmin(vh) and np.nanmax(vh) < -10.0, (np.nanmin(vh), np.nanmax(vh))


def test_crop_vh_rises_with_biomass(world):
    """Spearman correlation between standing plant area and VH, over fields and dates; per
    field the soil-moisture signal blurs it on bare-soil dates but the trend stays."""
    st = world.state
    area_all, vh_all, rhos = [], [], []
    for m in parcels_of(world, "CRO"):
        vh = db_of_mean(world.s1.vh, m)
        area = (st.lai[world.s1.day][:, m] + st.brown[world.s1.day][:, m]).mean(axis=1)
        ok = np.isfinite(vh)
        rhos.append(spearmanr(area[ok], vh[ok]).statistic)
        area_all.append(area[ok])
        vh_all.append(vh[ok])
    assert len(rhos) >= 3
    assert spearmanr(np.concatenate(area_all), np.concatenate(vh_all)).statistic > 0.6
    assert np.median(rhos) > 0.6 and min(rhos) > 0.3, rhos
    # a real dynamic range: several dB between bare soil and full canopy
    m = parcels_of(world, "CRO")[0]
    vh = db_of_mean(world.s1.vh, m)
    assert np.nanpercentile(vh, 95) - np.nanpercentile(vh, 5) > 3.0


def test_equivalent_number_of_looks_over_homogeneous_parcels_is_3_to_6(world):
    """ENL = mean^2 / variance of linear intensity inside a field, on single dates."""
    enls = []
    for igbp in ("GRA", "CRO", "DBF", "ENF"):
        for m in parcels_of(world, igbp, min_px=300, erode=3):
            for i in (5, 40, 80):
                x = world.s1.vv[i][m]
                if np.isfinite(x).all():
                    enls.append(x.mean() ** 2 / x.var())
    assert len(enls) > 10
    assert 3.0 <= np.median(enls) <= 6.0
    assert 3.0 <= min(enls) and max(enls) <= 6.0, (min(enls), max(enls))


# --- clouds -------------------------------------------------------------------------


def test_scene_cloud_cover_averages_to_configured_mean_per_year(world):
    frac = pd.Series(world.s2.cloud_fraction, index=s2_dates(world))
    for year, mean in frac.groupby(frac.index.year).mean().items():
        assert abs(mean - PHYSICS_CFG["cloud_cover_mean"]) < 0.1, (year, mean)
    assert frac.min() < 0.05 and frac.max() > 0.9  # clear and overcast days both occur


def test_scl_flags_80_to_97_percent_of_truly_cloudy_or_shadowed_pixels(world):
    s2 = world.s2
    scl10 = s2.scl.repeat(2, axis=1).repeat(2, axis=2)
    flagged = np.isin(scl10, (3, 8, 9, 10))
    truly = s2.cloud > 0
    detected = (flagged & truly).sum() / truly.sum()
    assert 0.80 <= detected <= 0.97, detected
    # what SCL misses is the thin edge, not the cloud cores
    missed = truly & ~flagged
    assert np.median(world_opacity_where(world, missed)) < 0.3
    # few false alarms over clear ground
    assert (flagged & ~truly).sum() / (~truly).sum() < 0.02


def world_opacity_where(world, mask: np.ndarray) -> np.ndarray:
    """Apparent cloud/shadow strength of missed pixels, from the truth reflectance change."""
    from ecoembed.synth.world import BAND10

    s2 = world.s2
    observed = s2.dn10.astype(np.float32) * 1e-4 - 0.1
    change = np.abs(observed - s2.clear[:, BAND10]).mean(axis=1)
    return change[mask] / 0.4  # cloud brightens/darkens by about 0.4 at full opacity


# --- GPP at towers ------------------------------------------------------------------

PEAK_RANGES = {"DBF": (8, 16), "GRA": (4, 12), "CRO": (8, 20), "ENF": (4, 9)}


def annual_peaks(gpp: pd.Series) -> pd.Series:
    """Annual peak: the highest 7-day mean, as read off a tower's record."""
    weekly = gpp.rolling(7, min_periods=4).mean()
    return weekly.groupby(weekly.index.year).max()


def test_tower_gpp_peaks_by_ecosystem(world):
    seen = set()
    for tower in world.towers:
        lo, hi = PEAK_RANGES[tower.site.igbp]
        for year, peak in annual_peaks(tower.flux["GPP_NT_VUT_REF"]).items():
            assert lo <= peak <= hi, (tower.site.site_id, year, peak)
        seen.add(tower.site.igbp)
    assert seen == set(PEAK_RANGES)


def test_tower_gpp_never_negative_and_has_gaps(world):
    for tower in world.towers:
        for col in ("GPP_NT_VUT_REF", "GPP_DT_VUT_REF"):
            g = tower.flux[col]
            assert (g.dropna() >= 0).all()
            assert 0.02 < g.isna().mean() < 0.3
        # met drivers are gap-filled (_F) as in FULLSET
        assert tower.flux[["SW_IN_F", "TA_F", "VPD_F", "P_F"]].notna().all().all()


def test_tower_gpp_tracks_its_footprint_truth(world):
    for tower in world.towers:
        obs = tower.flux["GPP_NT_VUT_REF"]
        ok = obs.notna().to_numpy()
        r = np.corrcoef(obs.to_numpy()[ok], tower.gpp_true[ok])[0, 1]
        assert r > 0.9, (tower.site.site_id, r)


# --- drought ------------------------------------------------------------------------


def summer(days: pd.DatetimeIndex, year: int) -> np.ndarray:
    return np.asarray((days.year == year) & days.month.isin([6, 7, 8]))


def test_drought_lowers_summer_gpp(world, world_without_drought):
    jja = summer(world.days, 2023)
    dry = world.state.gpp[jja].mean()
    normal = world_without_drought.state.gpp[jja].mean()
    assert dry < 0.85 * normal, (dry, normal)
    before = ~summer(world.days, 2023) & np.asarray(world.days < "2023-06-01")
    np.testing.assert_array_equal(world.state.gpp[before], world_without_drought.state.gpp[before])


def drought_shifts(world, dry_free, classes: list[str]) -> tuple[pd.Series, pd.Series]:
    """What the drought changes over the given classes, on paired worlds (same seed,
    drought on/off): VV of the mean linear power in dB per S1 date, mean NDVI per S2 date."""
    mask = np.isin(world.landscape.landcover, [IGBP_CODES[c] for c in classes])
    assert mask.sum() > 500, classes

    def vv_db(w):
        return 10 * np.log10(np.nanmean(w.s1.vv[:, mask], axis=1))

    def ndvi(w):
        return clear_ndvi(w)[:, mask].mean(axis=1)

    dvv = pd.Series(vv_db(world) - vv_db(dry_free), index=world.days[world.s1.day])
    dndvi = pd.Series(ndvi(world) - ndvi(dry_free), index=s2_dates(world))
    return dvv, dndvi


def test_drought_shows_in_s1_soil_backscatter_before_s2(world, world_without_drought):
    """The first date the drought moves VV over grassland and crops by 1 dB comes weeks
    before the first date it moves their NDVI by 0.05 (leaf area responds to water stress
    with a lag; surface soil dries at once)."""
    dvv, dndvi = drought_shifts(world, world_without_drought, ["GRA", "CRO"])
    s1_first = dvv[dvv < -1.0].index.min()
    s2_first = dndvi[dndvi < -0.05].index.min()
    assert pd.Timestamp("2023-06-01") <= s1_first < pd.Timestamp("2023-08-01"), s1_first
    assert s2_first - s1_first >= pd.Timedelta(days=14), (s1_first, s2_first)


def test_drought_shows_in_forest_backscatter_before_forest_ndvi(world, world_without_drought):
    """Over forest the soil is hidden, so radar sees a drought through the water of leaves
    and stems, which follows root-zone water within days; NDVI follows leaf area, which is
    lost over weeks. VV drops by 0.3 dB at least a fortnight before NDVI drops by 0.02,
    and a dry forest stays below the wet one through July."""
    dvv, dndvi = drought_shifts(world, world_without_drought, ["DBF", "ENF"])
    s1_first = dvv[dvv < -0.3].index.min()
    s2_first = dndvi[dndvi < -0.02].index.min()
    assert pd.Timestamp("2023-06-01") <= s1_first < pd.Timestamp("2023-08-01"), s1_first
    assert s2_first - s1_first >= pd.Timedelta(days=14), (s1_first, s2_first)
    assert (dvv["2023-07-01":"2023-07-31"] < 0).all(), dvv["2023-07-01":"2023-07-31"]
