"""One synthetic tile, simulated in memory: the physics without any file formats.

``simulate_tile`` is what the tests of the physics call; ``write.py`` turns its result into
COGs, STAC items, FLUXNET files and the truth store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from ecoembed.io.rng import stream
from ecoembed.io.sentinel import S2_BANDS
from ecoembed.io.sites import SitePlan
from ecoembed.synth import grid as g
from ecoembed.synth.landscape import Landscape, simulate_landscape
from ecoembed.synth.phenology import Phenology, simulate_phenology
from ecoembed.synth.plan import sites_of_tile, tile_index
from ecoembed.synth.sentinel1 import backscatter_linear, speckle
from ecoembed.synth.sentinel2 import (
    apply_clouds,
    block_mean,
    cloud_scene,
    observation_noise,
    scene_classification,
    surface_reflectance,
    to_dn,
)
from ecoembed.synth.state import DailyState, simulate_state
from ecoembed.synth.towers import flux_table
from ecoembed.synth.weather import Weather, simulate_weather

BAND10 = [i for i, b in enumerate(S2_BANDS) if b.resolution_m == 10]
BAND20 = [i for i, b in enumerate(S2_BANDS) if b.resolution_m == 20]
CLOUD_HEIGHT_M = 1500.0
MAX_SHADOW_SHIFT_PX = 60


@dataclass
class S2Series:
    day: np.ndarray  # (date,) index into days
    platform: list[str]
    clear: np.ndarray  # (date, band, y, x) float32 clear-sky surface reflectance (truth)
    dn10: np.ndarray  # (date, 4, y, x) uint16 B02 B03 B04 B08
    dn20: np.ndarray  # (date, 6, y/2, x/2) uint16 B05 B06 B07 B8A B11 B12
    scl: np.ndarray  # (date, y/2, x/2) uint8
    cloud: np.ndarray  # (date, y, x) uint8 truth: 0 clear, 1 cloud, 2 shadow
    cloud_fraction: np.ndarray  # (date,) true cloud fraction of the scene
    cirrus: np.ndarray  # (date,) bool


@dataclass
class S1Series:
    day: np.ndarray  # (acq,)
    orbit: list[g.S1Orbit]
    platform: list[str]
    vv: np.ndarray  # (acq, y, x) float32 linear gamma0, NaN outside the swath
    vh: np.ndarray
    incidence: np.ndarray  # (acq, x) incidence angle per column, NaN outside the swath


@dataclass
class Tower:
    site: SitePlan
    row: int
    col: int
    lat: float
    lon: float
    flux: pd.DataFrame
    gpp_true: np.ndarray


@dataclass
class TileSimulation:
    grid: g.TileGrid
    days: pd.DatetimeIndex
    weather: Weather
    landscape: Landscape
    phenology: Phenology
    state: DailyState
    s2: S2Series
    s1: S1Series
    towers: list[Tower] = field(default_factory=list)


def sun_shadow_shift(day: pd.Timestamp, lat_deg: float) -> tuple[int, int]:
    """Row/col displacement of cloud shadows at the 10:30 overpass (shadows fall north-west)."""
    decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (day.day_of_year - 81) / 365)
    phi, h = np.deg2rad(lat_deg), np.deg2rad(-22.5)
    elev = np.arcsin(np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(h))
    az = np.arctan2(np.sin(h), np.cos(h) * np.sin(phi) - np.tan(decl) * np.cos(phi)) + np.pi
    dist = min(MAX_SHADOW_SHIFT_PX, CLOUD_HEIGHT_M / np.tan(elev) / g.PIXEL_M)
    return int(round(dist * np.cos(az))), int(round(-dist * np.sin(az)))


def _simulate_s2(synth_cfg, seed, grid, days, weather, land, state, lat, progress) -> S2Series:
    rng = stream(seed, "sentinel-2", grid.index)
    sel = g.s2_acquisitions(days, int(synth_cfg["s2_revisit_days"]), grid.index)
    n, size = sel.size, grid.size
    clear = np.empty((n, len(S2_BANDS), size, size), np.float32)
    dn10 = np.empty((n, len(BAND10), size, size), np.uint16)
    dn20 = np.empty((n, len(BAND20), size // 2, size // 2), np.uint16)
    scl = np.empty((n, size // 2, size // 2), np.uint8)
    cloud = np.empty((n, size, size), np.uint8)
    frac = np.empty(n, np.float32)
    cirrus = np.zeros(n, bool)
    lc20 = land.landcover[::2, ::2]
    for i, d in enumerate(tqdm(sel, desc=f"{grid.tile} Sentinel-2", disable=not progress)):
        clear[i] = surface_reflectance(
            state.lai[d], state.brown[d], state.cab[d], state.cw[d], state.sm_surface[d], land
        )
        scene = cloud_scene(rng, size, float(weather.cloudiness[d]), sun_shadow_shift(days[d], lat))
        observed = apply_clouds(clear[i], scene) + observation_noise(rng, (size, size))
        obs20 = block_mean(observed)
        dn10[i] = to_dn(observed[BAND10])
        dn20[i] = to_dn(obs20[BAND20])
        scl[i] = scene_classification(obs20, scene, lc20, rng)
        cloud[i] = scene.truth()
        frac[i] = float((cloud[i] == 1).mean())
        cirrus[i] = scene.cirrus
    platform = ["sentinel-2a" if k % 2 == 0 else "sentinel-2b" for k in range(n)]
    return S2Series(sel, platform, clear, dn10, dn20, scl, cloud, frac, cirrus)


def _simulate_s1(synth_cfg, seed, grid, days, land, state, progress) -> S1Series:
    rng = stream(seed, "sentinel-1", grid.index)
    revisit = int(synth_cfg["s1_revisit_days"])
    orbits = g.s1_orbits(revisit, int(synth_cfg["n_tiles"]), grid.size)
    acq = sorted((int(d), o) for o in orbits for d in g.s1_acquisitions(days, revisit, o))
    n, size = len(acq), grid.size
    vv = np.empty((n, size, size), np.float32)
    vh = np.empty((n, size, size), np.float32)
    inc = np.empty((n, size), np.float32)
    x = grid.x_coords()
    for i, (d, orbit) in enumerate(tqdm(acq, desc=f"{grid.tile} Sentinel-1", disable=not progress)):
        inc[i] = g.s1_incidence_deg(orbit, x)
        theta = np.broadcast_to(np.nan_to_num(inc[i], nan=38.0), (size, size))
        outside = np.broadcast_to(np.isnan(inc[i]), (size, size))
        for pol, out in (("VV", vv), ("VH", vh)):
            s = backscatter_linear(
                pol,
                state.lai[d],
                state.brown[d],
                state.plant_water[d],
                state.sm_surface[d],
                theta,
                land,
            )
            out[i] = np.where(outside, np.nan, s * speckle(rng, (size, size)))
    platform = ["sentinel-1a"] * n
    return S1Series(np.array([a[0] for a in acq]), [a[1] for a in acq], platform, vv, vh, inc)


def _towers(seed, grid, sites, weather, land, state) -> list[Tower]:
    from pyproj import Transformer

    to_wgs84 = Transformer.from_crs(grid.epsg, 4326, always_xy=True)
    towers = []
    for s in sites:
        r, c = land.tower_rc[s.site_id]
        x, y = grid.transform @ (c + 0.5, r + 0.5)
        lon, lat = to_wgs84.transform(x, y)
        df, truth = flux_table(state, weather, r, c, s.igbp, stream(seed, "tower", s.site_id))
        towers.append(Tower(s, r, c, float(lat), float(lon), df, truth))
    return towers


def simulate_tile(synth_cfg: dict, seed: int, tile: str, progress: bool = False) -> TileSimulation:
    """Simulate one tile of the synthetic world; deterministic in (config, seed, tile)."""
    size = int(synth_cfg["tile_size"])
    if size % 2:
        raise ValueError(f"synth.tile_size must be even (20 m bands), got {size}")
    grid = g.tile_grid(tile, tile_index(tile), size, int(synth_cfg.get("epsg", 32632)))
    days = g.simulation_days(synth_cfg["start"], synth_cfg["end"])
    lat = g.latitude_deg(grid)
    # Weather is regional: keyed on the seed only, identical for every tile.
    weather = simulate_weather(
        days, lat, float(synth_cfg["cloud_cover_mean"]), bool(synth_cfg["drought"]), seed
    )
    sites = sites_of_tile(synth_cfg, tile)
    land = simulate_landscape(seed, grid.index, size, sites)
    phen = simulate_phenology(days, land.parcel_class, stream(seed, "phenology", grid.index))
    state = simulate_state(land, phen, weather, progress=progress)
    s2 = _simulate_s2(synth_cfg, seed, grid, days, weather, land, state, lat, progress)
    s1 = _simulate_s1(synth_cfg, seed, grid, days, land, state, progress)
    towers = _towers(seed, grid, sites, weather, land, state)
    return TileSimulation(grid, days, weather, land, phen, state, s2, s1, towers)
