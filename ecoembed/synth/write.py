"""Write a simulated tile in the formats real products have.

Raw layout of one tile (``tile_dir``)::

    items.json                                  STAC ItemCollection of the tile
    sentinel-2-l2a/<item id>/<B02..B12|SCL>.tif  uint16 DN COGs (10 m / 20 m), SCL uint8 (20 m)
    sentinel-1-rtc/<item id>/<vv|vh>.tif         float32 linear gamma0 COGs, NaN = no data

plus one FLUXNET2015 FULLSET DD file per tower and a partial site table in ``flux_dir``, and
the truth store (``truth_path``, Zarr) that only evaluations may read.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from ecoembed.io import fluxnet, names, products, stac, zarrio
from ecoembed.io.sentinel import S2_BAND_NAMES, S2_BANDS, S2_OFFSET
from ecoembed.synth.grid import S2_OVERPASS_UTC_HOURS
from ecoembed.synth.landscape import IGBP_CODES
from ecoembed.synth.towers import FOOTPRINT_SIGMA_PX, footprint_series
from ecoembed.synth.world import BAND10, BAND20, TileSimulation

FLUX_VERSION = "1-4"


def _timestamp(day: pd.Timestamp, hour_utc: float) -> dt.datetime:
    h = int(hour_utc)
    m = int(round((hour_utc - h) * 60))
    return dt.datetime.combine(day.date(), dt.time(h, m), tzinfo=dt.UTC)


def s2_times(sim: TileSimulation) -> np.ndarray:
    """Acquisition times of the S2 items (UTC, as datetime64 without zone), for the truth."""
    return np.array(
        [_timestamp(sim.days[d], S2_OVERPASS_UTC_HOURS).replace(tzinfo=None) for d in sim.s2.day],
        dtype="datetime64[ns]",
    )


def _write_s2(sim: TileSimulation, root: Path, progress: bool) -> list:
    grid, s2 = sim.grid, sim.s2
    items = []
    for i, d in enumerate(tqdm(s2.day, desc=f"{grid.tile} write S2", disable=not progress)):
        when = _timestamp(sim.days[d], S2_OVERPASS_UTC_HOURS)
        item_id = f"S{s2.platform[i][-2:].upper()}_MSIL2A_{when:%Y%m%dT%H%M%S}_{grid.tile}"
        bands = {
            band.name: s2.dn10[i, BAND10.index(k)]
            if band.resolution_m == 10
            else s2.dn20[i, BAND20.index(k)]
            for k, band in enumerate(S2_BANDS)
        }
        assets, cover = products.write_s2_cogs(
            root / stac.S2_COLLECTION_ID / item_id,
            bands,
            s2.scl[i],
            epsg=grid.epsg,
            transform10=grid.transform_at(10.0),
            transform20=grid.transform_at(20.0),
            offset=S2_OFFSET,
        )
        items.append(
            stac.make_s2_item(
                item_id,
                tile=grid.tile,
                datetime=when,
                epsg=grid.epsg,
                bbox=grid.bounds,
                assets=assets,
                cloud_cover=cover,
                platform=s2.platform[i],
            )
        )
    return items


def _write_s1(sim: TileSimulation, root: Path, progress: bool) -> list:
    grid, s1 = sim.grid, sim.s1
    items = []
    for i, d in enumerate(tqdm(s1.day, desc=f"{grid.tile} write S1", disable=not progress)):
        orbit = s1.orbit[i]
        when = _timestamp(sim.days[d], orbit.hour_utc)
        item_id = f"S1A_IW_GRDH_{when:%Y%m%dT%H%M%S}_{orbit.state[:3].upper()}_{grid.tile}"
        assets = products.write_s1_cogs(
            root / stac.S1_COLLECTION_ID / item_id,
            {"vv": s1.vv[i], "vh": s1.vh[i]},
            epsg=grid.epsg,
            transform=grid.transform,
        )
        items.append(
            stac.make_s1_item(
                item_id,
                tile=grid.tile,
                datetime=when,
                epsg=grid.epsg,
                bbox=grid.bounds,
                assets=assets,
                orbit_state=orbit.state,
                relative_orbit=orbit.relative_orbit,
                platform=s1.platform[i],
            )
        )
    return items


def write_raw(sim: TileSimulation, tile_dir: Path, progress: bool = False) -> None:
    """COGs and the tile's STAC ItemCollection, written into a temporary folder then renamed."""
    from ecoembed.io.atomic import atomic_path

    with atomic_path(tile_dir, replace="any") as tmp:
        tmp.mkdir(parents=True)
        grid = sim.grid
        tile_item = stac.make_tile_item(
            grid.tile,
            epsg=grid.epsg,
            transform=grid.transform,
            shape=grid.shape,
            start=_timestamp(sim.days[0], 0.0),
            end=_timestamp(sim.days[-1], 23.99),
        )
        items = [tile_item, *_write_s2(sim, tmp, progress), *_write_s1(sim, tmp, progress)]
        # Stored relative to items.json, so the hrefs survive the rename of the folder.
        stac.write_item_collection(items, tmp / "items.json")


def _flag_attrs(mapping: dict[int, str], description: str) -> dict:
    return {
        "flag_values": list(mapping),
        "flag_meanings": " ".join(mapping.values()),
        "description": description,
    }


def truth_dataset(sim: TileSimulation, provenance: dict) -> xr.Dataset:
    """Everything the evaluations may compare against; never an input to learning."""
    g, st, s2 = sim.grid, sim.state, sim.s2
    coords = {
        "y": ("y", g.y_coords()),
        "x": ("x", g.x_coords()),
        "time": ("time", s2_times(sim)),
        "band": ("band", list(S2_BAND_NAMES)),
        "day": ("day", sim.days.values),
    }
    yx, dyx = ("y", "x"), ("day", "y", "x")
    lc_names = {v: k for k, v in IGBP_CODES.items()}
    ds = xr.Dataset(coords=coords)
    ds["landcover"] = (
        yx,
        sim.landscape.landcover,
        _flag_attrs(dict(sorted(lc_names.items())), "IGBP land-cover class (MCD12Q1 type-1 codes)"),
    )
    ds["parcel"] = (yx, sim.landscape.parcel, {"description": "parcel (field, stand) id"})
    for name, units, desc in (
        ("soil_capacity_mm", "mm", "plant-available water capacity of the root zone"),
        ("soil_brightness", "1", "dry-soil brightness factor"),
        ("roughness_db", "dB", "soil roughness term of the backscatter model"),
        ("vigour", "1", "sub-parcel leaf-area factor"),
        ("texture", "1", "static reflectance texture factor"),
    ):
        ds[name] = (yx, getattr(sim.landscape, name), {"units": units, "description": desc})
    ds["s2_clear"] = (
        ("time", "band", "y", "x"),
        s2.clear,
        {
            "units": "1",
            "description": "clear-sky surface reflectance on every S2 date, also "
            "under clouds (noise-free)",
        },
    )
    ds["cloud"] = (
        ("time", "y", "x"),
        s2.cloud,
        _flag_attrs(
            {0: "clear", 1: "cloud", 2: "cloud_shadow"},
            "true cloud / cloud shadow (opacity >= 0.03), whatever SCL says",
        ),
    )
    ds["cloud_fraction"] = (("time",), s2.cloud_fraction, {"units": "1"})
    daily = {
        "lai": ("m2 m-2", "green leaf area index"),
        "brown": ("m2 m-2", "senescent or dead standing area index"),
        "cab": ("ug cm-2", "leaf chlorophyll content"),
        "cw": ("cm", "leaf equivalent water thickness"),
        "sm_surface": ("1", "relative water content of the 0-5 cm soil layer"),
        "sm_root": ("1", "relative plant-available root-zone water"),
        "gpp": ("gC m-2 d-1", "gross primary production"),
    }
    for name, (units, desc) in daily.items():
        ds[name] = (dyx, getattr(st, name), {"units": units, "description": desc})
    w = sim.weather
    for name, units in (
        ("sw_in", "W m-2"),
        ("ta", "degC"),
        ("vpd", "hPa"),
        ("precip", "mm d-1"),
        ("cloudiness", "1"),
    ):
        ds[f"weather_{name}"] = (("day",), getattr(w, name), {"units": units})
    ds["weather_drought"] = (
        ("day",),
        w.drought.astype(np.uint8),
        {"description": "1 inside the imposed drought"},
    )
    ev = sim.phenology.events
    ds["event_parcel"] = (("event",), ev["parcel"].to_numpy(np.int32))
    ds["event_date"] = (("event",), ev["date"].to_numpy("datetime64[ns]"))
    ds["event_kind"] = (("event",), ev["kind"].astype(str).to_numpy())
    ds["event_crop"] = (("event",), ev["crop"].astype(str).to_numpy())
    tw = sim.towers
    ds = ds.assign_coords(site=("site", [t.site.site_id for t in tw]))
    ds["site_row"] = (("site",), np.array([t.row for t in tw], np.int32))
    ds["site_col"] = (("site",), np.array([t.col for t in tw], np.int32))
    ds["site_igbp"] = (("site",), np.array([t.site.igbp for t in tw], dtype=str))
    ds["site_gpp"] = (
        ("site", "day"),
        np.array([t.gpp_true for t in tw]).reshape(len(tw), -1),
        {"units": "gC m-2 d-1", "description": "footprint-weighted true GPP"},
    )
    for name in ("lai", "sm_root", "sm_surface"):
        ds[f"site_{name}"] = (
            ("site", "day"),
            np.array([footprint_series(getattr(st, name), t.row, t.col) for t in tw]).reshape(
                len(tw), -1
            ),
        )
    ds.attrs.update(
        {
            "title": f"ecoembed synthetic world: truth of {g.tile}",
            "footprint": (
                f"isotropic Gaussian, sigma {FOOTPRINT_SIGMA_PX * 10:.0f} m, cut at 3 sigma"
            ),
            "fapar": "0.95 * (1 - exp(-0.5 * lai))  (ecoembed.synth.state.fapar)",
            "provenance": json.dumps(provenance, sort_keys=True),
        }
    )
    return ds


# CF packing (int16 with scale_factor) of the truth: s2_clear at the DN step of L2A
# (1e-4, so nothing is lost that the sensor could record); daily states at a precision far
# below any evaluation error. Bit-shuffled zstd then compresses the smooth fields well.
PACKING: dict[str, float] = {
    "s2_clear": 1e-4,
    "lai": 1e-3,
    "brown": 1e-3,
    "cab": 1e-2,
    "cw": 1e-6,
    "sm_surface": 1e-4,
    "sm_root": 1e-4,
    "gpp": 1e-3,
}


PACKED_FILL = np.int16(-32768)


def pack_int16(values: np.ndarray, scale: float, slab: int = 32) -> np.ndarray:
    """CF packing done here, slab by slab in float32: xarray's encoder would make float64
    copies of multi-GB arrays."""
    out = np.empty(values.shape, np.int16)
    inv = np.float32(1.0 / scale)
    for i in range(0, values.shape[0], slab):
        v = np.rint(values[i : i + slab] * inv)
        np.clip(v, -32767, 32767, out=v)
        out[i : i + slab] = v
    return out


def packed_dataset(ds: xr.Dataset) -> xr.Dataset:
    """Replace the PACKING variables by int16 with CF scale_factor/_FillValue attributes,
    which every CF reader (xarray included) decodes back to float32."""
    out = ds.copy(deep=False)
    for name, scale in PACKING.items():
        if name in out:
            var = out[name]
            attrs = {
                **var.attrs,
                "scale_factor": np.float32(scale),
                "add_offset": np.float32(0.0),
                "_FillValue": PACKED_FILL,
            }
            out[name] = (var.dims, pack_int16(var.values, scale), attrs)
    return out


def truth_encoding(ds: xr.Dataset) -> dict:
    """Chunks that serve both whole-tile maps and single-pixel time series."""
    from zarr.codecs import BloscCodec

    compressor = BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle")
    enc = {}
    for name, var in ds.data_vars.items():
        if var.dims == ("day", "y", "x"):
            chunks = (min(366, var.shape[0]), 64, 64)
        elif var.dims == ("time", "band", "y", "x"):
            chunks = (min(32, var.shape[0]), var.shape[1], 64, 64)
        elif var.dims == ("time", "y", "x"):
            chunks = (min(64, var.shape[0]), 64, 64)
        else:
            continue
        enc[name] = {"chunks": chunks, "compressors": [compressor]}
    return enc


def write_flux(sim: TileSimulation, flux_dir: Path) -> None:
    first, last = int(sim.days[0].year), int(sim.days[-1].year)
    rows = []
    for t in sim.towers:
        fluxnet.write_fluxnet_dd(
            t.flux, flux_dir / names.fluxnet_dd_filename(t.site.site_id, first, last, FLUX_VERSION)
        )
        rows.append(
            {
                "SITE_ID": t.site.site_id,
                "LOCATION_LAT": round(t.lat, 6),
                "LOCATION_LONG": round(t.lon, 6),
                "IGBP": t.site.igbp,
            }
        )
    table = pd.DataFrame(rows, columns=["SITE_ID", "LOCATION_LAT", "LOCATION_LONG", "IGBP"])
    fluxnet.write_site_table(table, flux_dir / f"sites_{sim.grid.tile}.csv")


def write_truth(sim: TileSimulation, truth_path: Path, provenance: dict) -> None:
    ds = packed_dataset(truth_dataset(sim, provenance))
    zarrio.write_zarr(
        ds, truth_path, crs=sim.grid.epsg, transform=sim.grid.transform, encoding=truth_encoding(ds)
    )
