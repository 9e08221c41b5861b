"""Real Sentinel-1/2 acquisitions from a STAC API, written in the raw layout of the workflow.

Three steps, one Snakemake rule each (rules/acquire.smk):

1. :func:`search_tile` asks the STAC sources (pystac-client) for the items over a site's
   tile and period, groups them into acquisitions (the scenes of one overpass) and writes a
   manifest; the list of acquisitions is known only now, so the rule is a checkpoint.
2. :func:`acquire_acquisition` loads one acquisition's assets onto the tile grid (odc-stac:
   scenes of one overpass mosaicked, reprojected from their own CRS and resolution) and
   writes the COGs and its STAC item, exactly as the synthetic world writes them.
3. :func:`write_tile_items` gathers the tile's items (and its grid item) into
   ``items.json``, the tile's ItemCollection that the catalog and the cube read.

The same code talks to a STAC API (``/search``) and to a static catalog (a local
``catalog.json``, which the offline tests use): only the search call differs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from affine import Affine
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_geom

from ecoembed.io import products, sentinel, stac
from ecoembed.io.atomic import atomic_path, atomic_write_text
from ecoembed.io.credentials import MissingCredentialsError, check_credentials, key_env_of
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec
from ecoembed.io.remote import (  # noqa: F401  (with_retries, href_signer: the module's API)
    NETWORK_ERRORS,
    AccessRefusedError,
    href_signer,
    is_local,
    refused_hint,
    verify_asset,
    with_retries,
)

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
KINDS = ("s2", "s1")
COLLECTION_OF_KIND = {"s2": stac.S2_COLLECTION_ID, "s1": stac.S1_COLLECTION_ID}
S2_ASSETS_20M = tuple(b.name for b in sentinel.S2_BANDS if b.resolution_m == 20)
S2_ASSETS_10M = tuple(b.name for b in sentinel.S2_BANDS if b.resolution_m == 10)

# Source asset keys of our assets, by source naming: Planetary Computer keeps the band
# names (B02, SCL, vv), Element 84 Earth Search uses common names (blue, scl).
ASSET_NAMING: dict[str, dict[str, dict[str, str]]] = {
    "band": {
        "s2": {**{b: b for b in sentinel.S2_BAND_NAMES}, "SCL": "SCL"},
        "s1": {k: k for k in sentinel.S1_ASSET_KEYS},
    },
    "common": {
        "s2": {
            "B02": "blue",
            "B03": "green",
            "B04": "red",
            "B05": "rededge1",
            "B06": "rededge2",
            "B07": "rededge3",
            "B08": "nir",
            "B8A": "nir08",
            "B11": "swir16",
            "B12": "swir22",
            "SCL": "scl",
        },
        "s1": {k: k for k in sentinel.S1_ASSET_KEYS},
    },
}


class NoAcquisitionsError(ValueError):
    """A search found nothing: the message names the site, the dates and the collection."""


# ---------------------------------------------------------------------------- the tile grid


def utm_epsg(lat: float, lon: float) -> int:
    """EPSG code of the WGS 84 UTM zone holding a point (326xx north, 327xx south)."""
    if not (-80.0 <= lat <= 84.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"({lat}, {lon}) is outside the UTM latitudes or not lat/lon")
    zone = min(int((lon + 180.0) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def site_grid(lat: float, lon: float, buffer_m: float, resolution: float = 10.0) -> GridSpec:
    """The 10 m tile around a tower: a square of side 2 x buffer in its UTM zone.

    Edges snap to multiples of 20 m, so the 10 m and 20 m grids nest and fall on the
    pixel edges of Sentinel-2 products of the same zone (their origins are multiples of
    60 m): assets of that zone are copied, not resampled.
    """
    epsg = utm_epsg(lat, lon)
    xs, ys = warp_transform("EPSG:4326", f"EPSG:{epsg}", [lon], [lat])
    size = int(round(2 * buffer_m / resolution))
    if size % 2 or size < 2:
        raise ValueError(f"buffer {buffer_m} m gives {size} pixels of {resolution} m (need even)")
    snap = 2 * resolution
    left = math.floor((xs[0] - buffer_m) / snap + 0.5) * snap
    top = math.floor((ys[0] + buffer_m) / snap + 0.5) * snap
    return GridSpec(epsg, Affine(resolution, 0, left, 0, -resolution, top), size, size)


def grid_at(grid: GridSpec, resolution: float) -> GridSpec:
    """The same extent at another pixel size (the 20 m grid of a 10 m tile)."""
    factor = resolution / grid.resolution
    h, w = int(round(grid.height / factor)), int(round(grid.width / factor))
    return GridSpec(grid.epsg, grid.transform @ Affine.scale(factor), h, w)


def grid_footprint(grid: GridSpec) -> dict[str, Any]:
    """The tile as a WGS 84 GeoJSON polygon (densified edges), for STAC searches."""
    left, bottom, right, top = grid.bounds
    n = 8
    ring = (
        [(left + (right - left) * i / n, bottom) for i in range(n)]
        + [(right, bottom + (top - bottom) * i / n) for i in range(n)]
        + [(right - (right - left) * i / n, top) for i in range(n)]
        + [(left, top - (top - bottom) * i / n) for i in range(n)]
    )
    ring.append(ring[0])
    return wgs84_geometry(
        transform_geom(f"EPSG:{grid.epsg}", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
    )


def wgs84_geometry(geometry: Mapping[str, Any]) -> dict[str, Any]:
    """A WGS 84 GeoJSON geometry split at the antimeridian, as GeoJSON asks: a tile or
    scene there has longitudes near +180 and -180, and taken as it is its polygon would
    wrap the other way round the globe (real items there carry such rings)."""
    import antimeridian

    return antimeridian.fix_geojson(dict(geometry), fix_winding=True)


# ---------------------------------------------------------------------------- network


@dataclass(frozen=True)
class Source:
    """One STAC source: where to search, which collection, how its assets are named."""

    kind: str  # s2 or s1
    api: str  # STAC API root URL, or the path of a static catalog.json
    collection: str
    assets: Mapping[str, str]  # our asset key -> the source's asset key
    sign: str = "none"
    max_cloud_cover: float | None = None
    key_env: str | None = None  # environment variable holding the account key, if one

    @classmethod
    def from_config(cls, kind: str, cfg: Mapping[str, Any]) -> Source:
        assets = dict(ASSET_NAMING[cfg["asset_names"]][kind])
        return cls(
            kind=kind,
            api=str(cfg["api"]),
            collection=str(cfg["collection"]),
            assets=assets,
            sign=str(cfg.get("sign", "none")),
            max_cloud_cover=cfg.get("max_cloud_cover") if kind == "s2" else None,
            key_env=cfg.get("key_env"),
        )

    def as_dict(self) -> dict[str, Any]:
        """The source as the manifest records it (what the acquisition jobs read)."""
        return {
            "api": self.api,
            "collection": self.collection,
            "assets": dict(self.assets),
            "sign": self.sign,
            "max_cloud_cover": self.max_cloud_cover,
            "key_env": self.key_env,
        }


def _static_catalog_items(source: Source) -> list[pystac.Item]:
    """The collection's items of a static catalog on disk. Its links are read through
    :class:`ecoembed.io.stac.LocalStacIO`: a link to a URL or outside the catalog's folder
    is an error, not a download."""
    path = Path(source.api).absolute()
    if not path.is_file():
        raise InputDataError(path, "static STAC catalog does not exist")
    try:
        catalog = pystac.Catalog.from_file(str(path), stac_io=stac.LocalStacIO(path.parent))
        collection = catalog.get_child(source.collection)
        if collection is None:
            raise NoAcquisitionsError(f"{source.api}: no collection {source.collection!r}")
        return list(collection.get_items(recursive=True))
    except (pystac.STACError, KeyError, TypeError, ValueError, OSError) as exc:
        if isinstance(exc, NoAcquisitionsError):
            raise
        raise stac.refusal_behind(exc) or InputDataError(
            path, f"not a readable STAC catalog ({exc!r})"
        ) from exc


def _open_client(source: Source):  # -> pystac_client.Client
    from pystac_client import Client

    return Client.open(source.api)


def _when(item: pystac.Item) -> dt.datetime:
    when = item.datetime or pystac.utils.str_to_datetime(item.properties["start_datetime"])
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _matches(
    item: pystac.Item, footprint, start: dt.datetime, end: dt.datetime, max_cloud: float | None
) -> bool:
    """The search predicate, also applied to API results (some APIs ignore ``query``)."""
    from shapely.geometry import shape

    if item.geometry is None or not shape(wgs84_geometry(item.geometry)).intersects(footprint):
        return False
    if not start <= _when(item) < end:
        return False
    cover = item.properties.get("eo:cloud_cover")
    return max_cloud is None or cover is None or float(cover) <= max_cloud


def search_items(
    source: Source,
    grid: GridSpec,
    start: dt.date,
    end: dt.date,
    *,
    retries: int = 4,
    backoff_s: float = 2.0,
) -> list[pystac.Item]:
    """Items of ``source`` over the tile between ``start`` and ``end`` (inclusive days).

    A STAC API is asked through ``/search`` (intersects, datetime, eo:cloud_cover query);
    a static catalog has no search endpoint, so its collection is walked and the same
    predicate applied here.
    """
    from pystac_client import ConformanceClasses
    from shapely.geometry import shape

    footprint_geojson = grid_footprint(grid)
    footprint = shape(footprint_geojson)
    t0 = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    t1 = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    def run() -> list[pystac.Item]:
        if is_local(source.api):
            found = _static_catalog_items(source)
        else:
            client = _open_client(source)
            if client.conforms_to(ConformanceClasses.ITEM_SEARCH):
                query = None
                if source.max_cloud_cover is not None:
                    query = {"eo:cloud_cover": {"lte": source.max_cloud_cover}}
                search = client.search(
                    collections=[source.collection],
                    intersects=footprint_geojson,
                    datetime=[t0, t1 - dt.timedelta(microseconds=1)],
                    query=query,
                )
                found = list(search.items())
            else:
                collection = client.get_collection(source.collection)
                if collection is None:
                    raise NoAcquisitionsError(f"{source.api}: no collection {source.collection!r}")
                found = list(collection.get_items(recursive=True))
        return [i for i in found if _matches(i, footprint, t0, t1, source.max_cloud_cover)]

    items = with_retries(
        run,
        what=f"search of {source.collection} at {source.api}",
        retries=retries,
        backoff_s=backoff_s,
        refused_hint=refused_hint(source.as_dict()),
    )
    return sorted(items, key=lambda i: (_when(i), i.id))


# ---------------------------------------------------------------------------- acquisitions


def solar_date(item: pystac.Item) -> dt.date:
    """Local solar date of the item's centre: scenes of one overpass share it. The centre
    is taken on the sphere's side where the item lies (items across the antimeridian)."""
    lon = 0.0
    if item.geometry is not None:
        import antimeridian
        from shapely.geometry import shape

        lon = antimeridian.centroid(shape(wgs84_geometry(item.geometry))).x
    elif item.bbox:
        lon = (item.bbox[0] + item.bbox[2]) / 2
    return (_when(item) + dt.timedelta(hours=lon / 15.0)).date()


def group_key(kind: str, item: pystac.Item) -> tuple:
    """Scenes of one overpass: same solar day (and, for S1, same orbit and direction)."""
    p = item.properties
    if kind == "s1":
        return (
            solar_date(item),
            str(p.get("sat:orbit_state", "")),
            int(p.get("sat:relative_orbit", -1)),
        )
    return (solar_date(item), str(p.get("platform", "")))


def acquisition_id(kind: str, items: list[pystac.Item], tile: str) -> str:
    """Like the synthetic world's item ids: sensor, UTC time of the first scene, tile."""
    first = items[0]
    when = _when(first)
    platform = str(first.properties.get("platform", "")).lower()
    unit = platform[-1:].upper() if platform[-1:].isalpha() else "X"
    if kind == "s2":
        return f"S2{unit}_MSIL2A_{when:%Y%m%dT%H%M%S}_{tile}"
    orbit = str(first.properties.get("sat:orbit_state", "unk"))[:3].upper()
    return f"S1{unit}_IW_GRDH_{when:%Y%m%dT%H%M%S}_{orbit}_{tile}"


def group_acquisitions(kind: str, items: Iterable[pystac.Item], tile: str) -> list[dict]:
    """Acquisitions (dicts for the manifest): id, collection, datetime and source items."""
    groups: dict[tuple, list[pystac.Item]] = {}
    for item in sorted(items, key=lambda i: (_when(i), i.id)):
        groups.setdefault(group_key(kind, item), []).append(item)
    out = []
    for members in groups.values():
        out.append(
            {
                "id": acquisition_id(kind, members, tile),
                "kind": kind,
                "collection": COLLECTION_OF_KIND[kind],
                "datetime": _when(members[0]).isoformat(),
                "items": [
                    m.to_dict(include_self_link=False, transform_hrefs=False) for m in members
                ],
            }
        )
    return sorted(out, key=lambda a: (a["datetime"], a["id"]))


def _absolute_hrefs(item: pystac.Item) -> pystac.Item:
    """Asset hrefs absolute (static catalogs hold them relative to the item file)."""
    item.make_asset_hrefs_absolute()
    return item


def search_tile(
    tile: str,
    site: Mapping[str, Any],
    study: Mapping[str, Any],
    manifest_path: str | os.PathLike[str],
    kinds: Iterable[str] = KINDS,
) -> dict:
    """Search every source (of ``kinds``) over the site's tile and write the manifest
    (atomically).

    ``study`` is the config's ``stac`` section. A source without any item over the tile
    and period is an error naming the site, the dates and the collection.
    """
    grid = site_grid(float(site["lat"]), float(site["lon"]), float(study["buffer_m"]))
    start = dt.date.fromisoformat(str(study["start"]))
    end = dt.date.fromisoformat(str(study["end"]))
    kinds = tuple(kinds)
    acquisitions = []
    for kind in kinds:
        source = Source.from_config(kind, study[kind])
        items = [
            _absolute_hrefs(i)
            for i in search_items(
                source,
                grid,
                start,
                end,
                retries=int(study["retries"]),
                backoff_s=float(study["backoff_s"]),
            )
        ]
        if not items:
            cloud = (
                f" with at most {source.max_cloud_cover} % cloud cover"
                if source.max_cloud_cover is not None
                else ""
            )
            raise NoAcquisitionsError(
                f"site {tile} ({site['lat']}, {site['lon']}): no item of collection "
                f"{source.collection!r} at {source.api} between {start} and {end}{cloud}"
            )
        found = group_acquisitions(kind, items, tile)
        log.info(
            "site %s: %d %s items in %d acquisitions",
            tile,
            len(items),
            source.collection,
            len(found),
        )
        acquisitions += found
    manifest = {
        "version": MANIFEST_VERSION,
        "tile": tile,
        "site": dict(site),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "grid": {
            "epsg": grid.epsg,
            "transform": list(grid.transform)[:6],
            "shape": [grid.height, grid.width],
        },
        "sources": {kind: Source.from_config(kind, study[kind]).as_dict() for kind in kinds},
        "acquisitions": acquisitions,
    }
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n", replace="any")
    return manifest


def read_manifest(path: str | os.PathLike[str]) -> dict:
    """The manifest of a tile, checked for what the later steps read."""
    p = Path(path)
    if not p.is_file():
        raise InputDataError(path, "manifest does not exist")
    try:
        manifest = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(path, f"manifest is not valid JSON ({exc})") from exc
    missing = [
        k for k in ("version", "tile", "grid", "sources", "acquisitions") if k not in manifest
    ]
    if missing:
        raise InputDataError(path, f"manifest lacks {missing}")
    if manifest["version"] != MANIFEST_VERSION:
        raise InputDataError(path, f"manifest version {manifest['version']} != {MANIFEST_VERSION}")
    return manifest


def manifest_grid(manifest: Mapping[str, Any]) -> GridSpec:
    g = manifest["grid"]
    return GridSpec(int(g["epsg"]), Affine(*g["transform"][:6]), *map(int, g["shape"]))


def acquisition_ids(manifest_path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """collection -> acquisition ids of a tile (what the Snakemake input functions need)."""
    out: dict[str, list[str]] = {c: [] for c in COLLECTION_OF_KIND.values()}
    for a in read_manifest(manifest_path)["acquisitions"]:
        out[a["collection"]].append(a["id"])
    return out


# ---------------------------------------------------------------------------- loading


def _load(
    items: list[pystac.Item],
    bands: dict[str, str],
    grid: GridSpec,
    *,
    dtype: str,
    resampling: dict[str, str],
    patch_url: Callable[[str], str] | None,
    threads: int,
) -> dict[str, np.ndarray]:
    """Our band -> (h, w) array of ``items`` mosaicked on ``grid`` (odc-stac)."""
    import odc.stac
    from odc.geo.geobox import GeoBox

    geobox = GeoBox((grid.height, grid.width), grid.transform, f"EPSG:{grid.epsg}")
    source_keys = list(bands.values())
    ds = odc.stac.load(
        items,
        bands=source_keys,
        geobox=geobox,
        groupby="solar_day",
        resampling={bands[k]: v for k, v in resampling.items() if k in bands},
        dtype=dtype,
        chunks=None,
        pool=max(1, threads),
        patch_url=patch_url,
        fail_on_error=True,
    )
    if ds.sizes.get("time", 0) != 1:
        raise ValueError(f"items {[i.id for i in items]} did not form one overpass")
    return {ours: ds[theirs].values[0] for ours, theirs in bands.items()}


def _nodata_of(item: pystac.Item, key: str) -> float | None:
    bands = item.assets[key].extra_fields.get("raster:bands") or []
    if bands and bands[0].get("nodata") is not None:
        value = bands[0]["nodata"]
        return float("nan") if str(value).lower() == "nan" else float(value)
    return None


def _raster_band(item: pystac.Item, key: str) -> dict[str, Any] | None:
    bands = item.assets[key].extra_fields.get("raster:bands") or []
    return bands[0] if bands else None


def s2_dn_convention(
    items: list[pystac.Item], source: Mapping[str, Any], acq: str
) -> sentinel.DnConvention:
    """How the source DNs of one overpass read as reflectance, decided per scene and band
    from what each item says (:func:`ecoembed.io.sentinel.l2a_dn_convention`). The scenes
    of one overpass are mosaicked into one set of DNs, so they must agree; the scale must
    be L2A's 1e-4."""
    found: dict[tuple[float, float], list[str]] = {}
    rules: set[str] = set()
    for item in items:
        for ours in sentinel.S2_BAND_NAMES:
            conv = sentinel.l2a_dn_convention(
                item.properties, _raster_band(item, source["assets"][ours]), _when(item)
            )
            if not math.isclose(conv.scale, sentinel.S2_SCALE):
                raise ValueError(
                    f"acquisition {acq}, item {item.id}, asset {ours}: DN scale {conv.scale} "
                    f"is not Sentinel-2 L2A's {sentinel.S2_SCALE}"
                )
            found.setdefault((conv.offset, conv.scale), []).append(
                f"{item.id} {ours}: {conv.offset:g} ({conv.rule})"
            )
            rules.add(conv.rule)
    if len(found) != 1:
        detail = "; ".join(v[0] for v in found.values())
        raise ValueError(
            f"acquisition {acq}: its scenes' DNs read with different offsets ({detail}); "
            "they cannot be mosaicked into one overpass"
        )
    (offset, scale), _ = found.popitem()
    return sentinel.DnConvention(scale, offset, "; ".join(sorted(rules)))


def _check_assets(items: list[pystac.Item], keys: Iterable[str], acq: str) -> None:
    for item in items:
        missing = [k for k in keys if k not in item.assets]
        if missing:
            raise ValueError(f"acquisition {acq}, item {item.id}: no asset(s) {missing}")


def _write_s2(
    acq: dict,
    items: list[pystac.Item],
    source: Mapping[str, Any],
    grid: GridSpec,
    tile: str,
    folder: Path,
    load: Callable[..., dict[str, np.ndarray]],
    resampling: str,
) -> pystac.Item:
    names = source["assets"]
    _check_assets(
        items, [names[k] for k in (*sentinel.S2_BAND_NAMES, stac.SCL_ASSET_KEY)], acq["id"]
    )
    convention = s2_dn_convention(items, source, acq["id"])
    grid20 = grid_at(grid, 20.0)
    rs = {k: resampling for k in sentinel.S2_BAND_NAMES} | {stac.SCL_ASSET_KEY: "nearest"}
    data = load({k: names[k] for k in S2_ASSETS_10M}, grid, dtype="uint16", resampling=rs)
    data |= load({k: names[k] for k in S2_ASSETS_20M}, grid20, dtype="uint16", resampling=rs)
    data |= load({"SCL": names["SCL"]}, grid20, dtype="uint8", resampling=rs)
    if not (data["SCL"] > 0).any():
        raise ValueError(f"acquisition {acq['id']}: no scene covers the tile")
    assets, cover = products.write_s2_cogs(
        folder,
        {band: data[band] for band in sentinel.S2_BAND_NAMES},
        data[stac.SCL_ASSET_KEY],
        epsg=grid.epsg,
        transform10=grid.transform,
        transform20=grid20.transform,
        offset=convention.offset,
    )
    first = items[0]
    return stac.make_s2_item(
        acq["id"],
        tile=tile,
        datetime=_when(first),
        epsg=grid.epsg,
        bbox=grid.bounds,
        assets=assets,
        cloud_cover=cover,
        platform=str(first.properties.get("platform", "sentinel-2")),
        processing_baseline=str(first.properties.get("s2:processing_baseline", "unknown")),
        mgrs_tile=sentinel.mgrs_tile(first.properties),
        offset=convention.offset,
        dn_offset_rule=convention.rule,
    )


def _write_s1(
    acq: dict,
    items: list[pystac.Item],
    source: Mapping[str, Any],
    grid: GridSpec,
    tile: str,
    folder: Path,
    load: Callable[..., dict[str, np.ndarray]],
    resampling: str,
) -> pystac.Item:
    names = source["assets"]
    keys = [k for k in sentinel.S1_ASSET_KEYS if all(names[k] in i.assets for i in items)]
    if not keys:
        raise ValueError(
            f"acquisition {acq['id']}: items {[i.id for i in items]} have none of the "
            f"assets {[names[k] for k in sentinel.S1_ASSET_KEYS]}"
        )
    first = items[0]
    for prop in ("sat:orbit_state", "sat:relative_orbit"):
        if prop not in first.properties:
            raise ValueError(f"acquisition {acq['id']}, item {first.id}: no {prop} property")
    data = load(
        {k: names[k] for k in keys},
        grid,
        dtype="float32",
        resampling=dict.fromkeys(keys, resampling),
    )
    cleaned = {}
    for key in keys:
        values = data[key].astype(np.float32)
        nodata = _nodata_of(first, names[key])
        bad = ~np.isfinite(values) | (values <= 0)  # linear power: <= 0 is no data
        if nodata is not None and np.isfinite(nodata):
            bad |= values == np.float32(nodata)
        values[bad] = np.nan
        cleaned[key] = values
    if not any(np.isfinite(v).any() for v in cleaned.values()):
        raise ValueError(f"acquisition {acq['id']}: no scene covers the tile")
    assets = products.write_s1_cogs(folder, cleaned, epsg=grid.epsg, transform=grid.transform)
    return stac.make_s1_item(
        acq["id"],
        tile=tile,
        datetime=_when(first),
        epsg=grid.epsg,
        bbox=grid.bounds,
        assets=assets,
        orbit_state=str(first.properties["sat:orbit_state"]),
        relative_orbit=int(first.properties["sat:relative_orbit"]),
        platform=str(first.properties.get("platform", "sentinel-1")),
    )


ITEM_FILE = "item.json"
ACQUISITION_KEY = "ecoembed:acquisition_key"
VERIFY_MODES = ("auto", "size", "checksum", "none")


def _used_asset_keys(acq: Mapping[str, Any], source: Mapping[str, Any]) -> list[str]:
    """The source asset keys an acquisition reads."""
    ours = (
        (*sentinel.S2_BAND_NAMES, stac.SCL_ASSET_KEY)
        if acq["kind"] == "s2"
        else sentinel.S1_ASSET_KEYS
    )
    return [source["assets"][k] for k in ours]


def verify_sources(
    items: list[pystac.Item],
    keys: Iterable[str],
    *,
    mode: str,
    signer: Callable[[str], str] | None,
    what: str,
    retries: int,
    backoff_s: float,
    hint: str,
) -> None:
    """Every asset the acquisition reads, checked before anything is loaded: against its
    item's ``file:size`` and ``file:checksum`` where the item states them, and its header
    against the item's ``proj:*`` (CRS, transform, shape) and ``raster:bands`` data type
    (a float32 reflectance file where the item says uint16 DNs would be read as DNs).

    Nodata is not compared for source assets: the load takes the item's nodata, and
    providers' files need not repeat it. ``mode`` ``none`` skips both checks."""
    from ecoembed.io.raster import asset_declaration, check_asset_matches

    if mode not in VERIFY_MODES:
        raise ValueError(f"verify mode {mode!r} is not one of {VERIFY_MODES}")
    if mode == "none":
        return
    for item in items:
        for key in keys:
            asset = item.assets.get(key)
            if asset is None:
                continue
            declared = asset_declaration(item, key)
            declared.pop("nodata", None)

            def check(a=asset, i=item, d=declared) -> None:
                href = signer(a.href) if signer else a.href
                verify_asset(a.href, a.extra_fields, item=i.id, mode=mode, signed=href)
                check_asset_matches(href, item=i.id, **d)

            with_retries(
                check,
                what=f"{what}: checking {item.id} {key}",
                retries=retries,
                backoff_s=backoff_s,
                refused_hint=hint,
            )


def acquisition_key(acq: Mapping[str, Any], source: Mapping[str, Any], resampling: str) -> str:
    """What an acquired folder was made from (source items and settings): a folder whose
    item records the same key is reused, any other is acquired again."""
    blob = json.dumps(
        {"v": MANIFEST_VERSION, "acq": acq, "source": source, "resampling": resampling},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def acquire_acquisition(
    manifest_path: str | os.PathLike[str],
    acquisition: str,
    out_dir: str | os.PathLike[str],
    *,
    resampling: str = "nearest",
    retries: int = 4,
    backoff_s: float = 2.0,
    threads: int = 1,
    verify: str = "auto",
) -> pystac.Item:
    """Load one acquisition onto the tile grid: COGs and ``item.json`` in ``out_dir``.

    The account key a source needs is checked first, then each source asset against its
    item's ``file:size``/``file:checksum`` (``verify``, see
    :func:`ecoembed.io.remote.verify_asset`). The folder is written under a temporary name
    and renamed when complete; a download that fails after its retries leaves nothing
    behind. A refused request (HTTP 401/403) fails at once, without retries.
    """
    manifest = read_manifest(manifest_path)
    found = [a for a in manifest["acquisitions"] if a["id"] == acquisition]
    if not found:
        raise InputDataError(manifest_path, f"no acquisition {acquisition!r} in the manifest")
    acq = found[0]
    source = manifest["sources"][acq["kind"]]
    check_credentials({acq["kind"]: source})
    items = [pystac.Item.from_dict(d, preserve_dict=True) for d in acq["items"]]
    grid = manifest_grid(manifest)
    signer = href_signer(source["sign"], source.get("key_env"))
    hint = refused_hint(source)
    verify_sources(
        items,
        _used_asset_keys(acq, source),
        mode=verify,
        signer=signer,
        what=f"acquisition {acquisition}",
        retries=retries,
        backoff_s=backoff_s,
        hint=hint,
    )

    def load(bands: dict[str, str], g: GridSpec, **kw: Any) -> dict[str, np.ndarray]:
        return with_retries(
            lambda: _load(items, bands, g, patch_url=signer, threads=threads, **kw),
            what=f"acquisition {acquisition} ({', '.join(bands.values())})",
            retries=retries,
            backoff_s=backoff_s,
            refused_hint=hint,
        )

    write = _write_s2 if acq["kind"] == "s2" else _write_s1
    with atomic_path(out_dir, replace="any") as tmp:
        tmp.mkdir(parents=True)
        item = write(acq, items, source, grid, manifest["tile"], tmp, load, resampling)
        item.properties[ACQUISITION_KEY] = acquisition_key(acq, source, resampling)
        stac.write_item_collection([item], tmp / ITEM_FILE)
    return item


# ---------------------------------------------------------------------------- batches


def acquisition_batches(
    manifest_path: str | os.PathLike[str], batch_size: int
) -> dict[str, list[str]]:
    """Batch id -> acquisition ids: each collection's acquisitions in chronological runs of
    at most ``batch_size``, so that a site is a few jobs rather than hundreds."""
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be at least 1")
    out: dict[str, list[str]] = {}
    for collection, ids in acquisition_ids(manifest_path).items():
        for k in range(0, len(ids), batch_size):
            out[f"{collection}-{k // batch_size + 1:03d}"] = ids[k : k + batch_size]
    return out


def _reusable(folder: Path, key: str) -> pystac.Item | None:
    """The item of a finished acquisition folder made from the same sources, else None."""
    path = folder / ITEM_FILE
    if not path.is_file():
        return None
    try:
        items = stac.read_item_collection(path)
    except InputDataError:
        return None
    if len(items) != 1 or items[0].properties.get(ACQUISITION_KEY) != key:
        return None
    return items[0]


def acquire_batch(
    manifest_path: str | os.PathLike[str],
    batch: str,
    tile_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    batch_size: int,
    resampling: str = "nearest",
    retries: int = 4,
    backoff_s: float = 2.0,
    threads: int = 1,
    verify: str = "auto",
    progress: bool = True,
) -> list[pystac.Item]:
    """Acquire one batch of a tile's acquisitions into ``tile_dir/<collection>/<id>/`` and
    list their items in ``out_path`` (an ItemCollection).

    An acquisition whose folder was finished before from the same sources and settings is
    reused, so a re-run after a failure fetches only what is missing. One that fails does
    not stop the others; the batch then fails naming every one. A refused request or a
    missing key stops the batch at once (the next acquisition would be refused too).
    """
    from tqdm.auto import tqdm

    manifest = read_manifest(manifest_path)
    batches = acquisition_batches(manifest_path, batch_size)
    if batch not in batches:
        raise InputDataError(
            manifest_path, f"no batch {batch!r} of {batch_size} (batches: {sorted(batches)})"
        )
    by_id = {a["id"]: a for a in manifest["acquisitions"]}
    items: list[pystac.Item] = []
    failed: list[str] = []
    reused = 0
    for acq_id in tqdm(batches[batch], desc=batch, unit="acq", disable=not progress):
        acq = by_id[acq_id]
        folder = Path(tile_dir) / acq["collection"] / acq_id
        key = acquisition_key(acq, manifest["sources"][acq["kind"]], resampling)
        item = _reusable(folder, key)
        if item is not None:
            reused += 1
            items.append(item)
            continue
        try:
            acquire_acquisition(
                manifest_path,
                acq_id,
                folder,
                resampling=resampling,
                retries=retries,
                backoff_s=backoff_s,
                threads=threads,
                verify=verify,
            )
        except (AccessRefusedError, MissingCredentialsError):
            raise
        except Exception as exc:  # noqa: BLE001  (reported below, with the others)
            log.error("acquisition %s failed: %s", acq_id, exc)
            failed.append(f"{acq_id}: {exc}")
            continue
        items += stac.read_item_collection(folder / ITEM_FILE)
    log.info(
        "batch %s: %d acquisitions, %d reused from an earlier run, %d acquired, %d failed",
        batch,
        len(batches[batch]),
        reused,
        len(items) - reused,
        len(failed),
    )
    if failed:
        raise RuntimeError(
            f"batch {batch} of tile {manifest['tile']}: {len(failed)} of "
            f"{len(batches[batch])} acquisitions failed (the others are kept; a re-run "
            "fetches only these): " + " | ".join(failed)
        )
    stac.write_item_collection(items, out_path)
    return items


def write_tile_items(
    manifest_path: str | os.PathLike[str],
    batch_paths: Iterable[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
) -> int:
    """The tile's ``items.json``: its grid item and every acquisition's item from the
    batches' item collections (hrefs relative to it), as the synthetic world writes it.
    Returns the number of acquisitions."""
    manifest = read_manifest(manifest_path)
    grid = manifest_grid(manifest)
    tile = manifest["tile"]
    items = [
        stac.make_tile_item(
            tile,
            epsg=grid.epsg,
            transform=grid.transform,
            shape=grid.shape,
            start=f"{manifest['start']}T00:00:00Z",
            end=f"{manifest['end']}T23:59:59Z",
        )
    ]
    for path in batch_paths:
        items += stac.read_item_collection(path, within=Path(out_path).parent)
    stac.write_item_collection(items, out_path)
    return len(items) - 1


# ---------------------------------------------------------------------------- the plan

_ITEMSIZE = {"uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "float32": 4, "float64": 8}
_DEFAULT_DTYPE = {"s2": "uint16", "s1": "float32"}


def _asset_bytes(item: pystac.Item, key: str, kind: str, grid: GridSpec) -> tuple[float, bool]:
    """Bytes an acquisition reads of one asset, roughly, and whether ``file:size`` made it:
    the tile's share of the asset's extent times its size where the item states one, else
    the tile's pixels at the asset's resolution, uncompressed."""
    from rasterio.warp import transform_bounds

    asset = item.assets[key]
    fields = {**item.properties, **asset.extra_fields}
    band = (asset.extra_fields.get("raster:bands") or [{}])[0]
    itemsize = _ITEMSIZE.get(str(band.get("data_type", _DEFAULT_DTYPE[kind])), 4)
    transform, shape = fields.get("proj:transform"), fields.get("proj:shape")
    try:
        epsg = stac.item_epsg(item)
    except InputDataError:
        epsg = None
    if not (transform and shape and epsg):
        res = float(band.get("spatial_resolution") or grid.resolution)
        return grid.width * grid.height * (grid.resolution / res) ** 2 * itemsize, False
    t = Affine(*transform[:6])
    h, w = int(shape[0]), int(shape[1])
    left, bottom, right, top = transform_bounds(f"EPSG:{grid.epsg}", f"EPSG:{epsg}", *grid.bounds)
    a_left, a_top = t.c, t.f
    a_right, a_bottom = t.c + w * t.a, t.f + h * t.e
    dx = max(0.0, min(right, a_right) - max(left, a_left))
    dy = max(0.0, min(top, a_top) - max(bottom, a_bottom))
    share = dx * dy / ((a_right - a_left) * (a_top - a_bottom))
    if asset.extra_fields.get("file:size") is not None:
        return share * float(asset.extra_fields["file:size"]), True
    return share * h * w * itemsize, False


def plan_tile(manifest_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """What acquiring a tile will fetch, per collection: acquisitions, scenes, and roughly
    how many bytes (see :func:`_asset_bytes`; COGs are read in whole internal blocks, so
    small tiles read up to a few times more)."""
    manifest = read_manifest(manifest_path)
    grid = manifest_grid(manifest)
    rows = []
    for kind, collection in COLLECTION_OF_KIND.items():
        if kind not in manifest["sources"]:
            continue
        acqs = [a for a in manifest["acquisitions"] if a["kind"] == kind]
        source = manifest["sources"][kind]
        keys = _used_asset_keys({"kind": kind}, source)
        total, known, n_assets, scenes = 0.0, 0, 0, 0
        for acq in acqs:
            for d in acq["items"]:
                item = pystac.Item.from_dict(d, preserve_dict=True)
                scenes += 1
                for key in keys:
                    if key not in item.assets:
                        continue
                    size, from_file = _asset_bytes(item, key, kind, grid)
                    total += size
                    known += from_file
                    n_assets += 1
        rows.append(
            {
                "tile": manifest["tile"],
                "collection": collection,
                "api": source["api"],
                "acquisitions": len(acqs),
                "scenes": scenes,
                "first": acqs[0]["datetime"][:10] if acqs else "",
                "last": acqs[-1]["datetime"][:10] if acqs else "",
                "approx_bytes": int(round(total)),
                "share_from_file_size": round(known / n_assets, 3) if n_assets else 0.0,
                "needs_key": key_env_of(source) or "",
            }
        )
    return rows


def write_plan(
    manifest_paths: Iterable[str | os.PathLike[str]], out_path: str | os.PathLike[str]
) -> list[dict[str, Any]]:
    """The plan of every tile (:func:`plan_tile`) as one CSV table, written atomically."""
    import csv
    import io

    rows = [row for path in manifest_paths for row in plan_tile(path)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["tile"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_path, buf.getvalue(), replace="any")
    return rows


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def format_plan(rows: list[dict[str, Any]]) -> str:
    """The plan as a few lines for the terminal: one per site and collection, and a total."""
    lines = [
        f"{'site':<8} {'collection':<16} {'acquisitions':>12} {'scenes':>7} "
        f"{'period':<23} {'approx. size':>12}  key needed"
    ]
    for r in rows:
        period = f"{r['first']} .. {r['last']}" if r["first"] else "-"
        lines.append(
            f"{r['tile']:<8} {r['collection']:<16} {r['acquisitions']:>12} {r['scenes']:>7} "
            f"{period:<23} {_human_bytes(r['approx_bytes']):>12}  {r['needs_key'] or '-'}"
        )
    total = sum(r["approx_bytes"] for r in rows)
    n = sum(r["acquisitions"] for r in rows)
    lines.append(
        f"total: {n} acquisitions, about {_human_bytes(total)} to fetch (the tiles' share of "
        "each asset: file:size where the items state it, else uncompressed pixels; COGs are "
        "read in whole blocks, so small tiles fetch up to a few times more)"
    )
    return "\n".join(lines)
