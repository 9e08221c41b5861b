"""Parcels, land cover, soils and tower sites of one tile.

Parcels are Voronoi cells of jittered seed points (fields of a few hectares); the class of
each parcel follows smooth land-use potentials, so forests, lakes and villages cluster as
they do in real landscapes. Flux towers get a homogeneous stand of their ecosystem
(towers are sited that way), painted over the landscape before anything else is simulated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_erosion
from scipy.spatial import cKDTree

from ecoembed.io.rng import stream
from ecoembed.io.sites import SitePlan
from ecoembed.synth.fields import gaussian_field, multiscale_field

# IGBP land-cover codes (MODIS MCD12Q1 type 1 numbering).
IGBP_CODES: dict[str, int] = {"ENF": 1, "DBF": 4, "GRA": 10, "CRO": 12, "URB": 13, "WAT": 17}
IGBP_NAMES: dict[int, str] = {v: k for k, v in IGBP_CODES.items()}

TOWER_STAND_HALF_PX = 22  # towers sit in a homogeneous stand of about 450 m x 450 m
TOWER_EDGE_MARGIN_PX = 24


@dataclass
class Landscape:
    parcel: np.ndarray  # (y, x) int32 parcel id
    landcover: np.ndarray  # (y, x) uint8 IGBP code
    parcel_class: np.ndarray  # (n_parcels,) uint8 IGBP code per parcel
    vigour: np.ndarray  # (y, x) multiplicative LAI factor (sub-parcel variation), ~1
    soil_capacity_mm: np.ndarray  # (y, x) plant-available water capacity of the root zone
    soil_brightness: np.ndarray  # (y, x) dry-soil brightness factor, ~1
    roughness_db: np.ndarray  # (y, x) soil surface roughness effect on backscatter
    texture: np.ndarray  # (y, x) small static reflectance texture factor, ~1
    tower_rc: dict[str, tuple[int, int]]  # site id -> (row, col) of the tower

    @property
    def n_parcels(self) -> int:
        return int(self.parcel_class.size)


def _voronoi_parcels(rng: np.random.Generator, size: int, mean_parcel_px: float) -> np.ndarray:
    """Parcel ids from nearest seed point, with anisotropic distance so fields are elongated."""
    n_seeds = max(8, int(size * size / mean_parcel_px))
    seeds = rng.uniform(0, size, (n_seeds, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    stretch = np.array([1.0, 0.6])  # fields longer east-west than north-south
    tree = cKDTree(seeds * stretch)
    _, idx = tree.query(np.column_stack([yy.ravel(), xx.ravel()]) * stretch)
    return idx.reshape(size, size).astype(np.int32)


def _classify_parcels(rng: np.random.Generator, parcel: np.ndarray) -> np.ndarray:
    size = parcel.shape[0]
    forest = gaussian_field(rng, parcel.shape, size / 6)
    needle = gaussian_field(rng, parcel.shape, size / 5)
    wet = gaussian_field(rng, parcel.shape, size / 8)
    town = gaussian_field(rng, parcel.shape, size / 10)
    arable = gaussian_field(rng, parcel.shape, size / 7)
    n = int(parcel.max()) + 1
    cls = np.empty(n, np.uint8)
    for p in range(n):
        m = parcel == p
        if not m.any():
            cls[p] = IGBP_CODES["CRO"]
            continue
        f, nd, w, t, a = (float(g[m].mean()) for g in (forest, needle, wet, town, arable))
        if w > 1.2:
            cls[p] = IGBP_CODES["WAT"]
        elif t > 1.3:
            cls[p] = IGBP_CODES["URB"]
        elif f > 0.6:
            cls[p] = IGBP_CODES["ENF"] if nd > 0.2 else IGBP_CODES["DBF"]
        elif a > -0.3:
            cls[p] = IGBP_CODES["CRO"]
        else:
            cls[p] = IGBP_CODES["GRA"]
    return cls


def _place_towers(
    rng: np.random.Generator, size: int, sites: list[SitePlan]
) -> dict[str, tuple[int, int]]:
    """Tower positions well inside the tile, stands not overlapping (rejection sampling,
    restarted from scratch when an unlucky early tower leaves no room for the rest)."""
    lo, hi = TOWER_EDGE_MARGIN_PX, size - TOWER_EDGE_MARGIN_PX
    min_sep = 2 * TOWER_STAND_HALF_PX + 2
    if hi <= lo:
        raise ValueError(
            f"synth.tile_size {size} is too small for flux towers "
            f"(need more than {2 * TOWER_EDGE_MARGIN_PX} pixels)"
        )
    for _ in range(500):
        placed: dict[str, tuple[int, int]] = {}
        for s in sites:
            for _ in range(200):
                rc = (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))
                if all(
                    max(abs(rc[0] - q[0]), abs(rc[1] - q[1])) >= min_sep for q in placed.values()
                ):
                    placed[s.site_id] = rc
                    break
            else:
                break
        if len(placed) == len(sites):
            return placed
    raise ValueError(
        f"cannot fit {len(sites)} towers with homogeneous stands of "
        f"{2 * TOWER_STAND_HALF_PX + 1} px into a {size} x {size} tile; use fewer "
        "synth.n_sites per tile or a larger synth.tile_size"
    )


def simulate_landscape(seed: int, tile_index: int, size: int, sites: list[SitePlan]) -> Landscape:
    rng = stream(seed, "landscape", tile_index)
    parcel = _voronoi_parcels(rng, size, mean_parcel_px=650.0)
    parcel_class = _classify_parcels(rng, parcel)

    tower_rc = _place_towers(rng, size, sites)
    for s in sites:  # each tower stand becomes a parcel of its own
        r, c = tower_rc[s.site_id]
        h = TOWER_STAND_HALF_PX
        new_id = parcel_class.size
        parcel[r - h : r + h + 1, c - h : c + h + 1] = new_id
        parcel_class = np.append(parcel_class, np.uint8(IGBP_CODES[s.igbp]))

    # Relabel to contiguous ids (painting may have swallowed whole parcels).
    used, parcel = np.unique(parcel, return_inverse=True)
    parcel = parcel.reshape(size, size).astype(np.int32)
    parcel_class = parcel_class[used]
    landcover = parcel_class[parcel]

    vigour = 1.0 + 0.08 * gaussian_field(rng, parcel.shape, 4.0)
    soil = multiscale_field(rng, parcel.shape, (size / 5, 6.0), (1.0, 0.3))
    soil_capacity = np.clip(140.0 + 40.0 * soil, 60.0, 240.0)
    soil_brightness = np.clip(1.0 + 0.12 * gaussian_field(rng, parcel.shape, size / 8), 0.7, 1.3)
    # Roughness: one value per parcel (tillage, stand structure) plus a little within-field noise.
    rough_parcel = rng.normal(0.0, 1.2, parcel_class.size)
    roughness_db = rough_parcel[parcel] + 0.3 * gaussian_field(rng, parcel.shape, 3.0)
    texture = 1.0 + 0.02 * gaussian_field(rng, parcel.shape, 1.0)
    return Landscape(
        parcel,
        landcover.astype(np.uint8),
        parcel_class.astype(np.uint8),
        vigour.astype(np.float32),
        soil_capacity.astype(np.float32),
        soil_brightness.astype(np.float32),
        roughness_db.astype(np.float32),
        texture.astype(np.float32),
        tower_rc,
    )


def parcel_interior(landscape: Landscape, parcel_id: int, erode_px: int = 2) -> np.ndarray:
    """Pixels of a parcel away from its edges (for homogeneous-area statistics)."""
    m = landscape.parcel == parcel_id
    return binary_erosion(m, iterations=erode_px) if erode_px else m
