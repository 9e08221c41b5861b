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
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pystac
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_geom

from ecoembed.io import products, sentinel, stac
from ecoembed.io.atomic import atomic_path, atomic_write_text
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec

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

# What a flaky network raises: HTTP and connection errors (pystac-client's APIError,
# requests' and urllib's), and GDAL failing to read a remote COG.
try:  # pystac-client is a dependency, but keep the error list importable without it
    from pystac_client.exceptions import APIError
except ImportError:  # pragma: no cover
    APIError = OSError  # type: ignore[assignment,misc]
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, RasterioError, APIError)

T = TypeVar("T")


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
    return transform_geom(
        f"EPSG:{grid.epsg}", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]}
    )


# ---------------------------------------------------------------------------- network


def with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    retries: int,
    backoff_s: float,
    errors: tuple[type[BaseException], ...] = NETWORK_ERRORS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()``, tried again after ``backoff_s``, 2 x, 4 x ... on network errors.

    The last error propagates, with ``what`` and the number of attempts in front of it.
    """
    for attempt in range(retries + 1):
        try:
            return fn()
        except errors as exc:
            if attempt == retries:
                raise RuntimeError(f"{what}: failed after {attempt + 1} attempt(s): {exc}") from exc
            wait = backoff_s * 2**attempt
            log.warning(
                "%s: %s; attempt %d of %d in %.1f s", what, exc, attempt + 2, retries + 1, wait
            )
            sleep(wait)
    raise AssertionError("unreachable")


def href_signer(sign: str) -> Callable[[str], str] | None:
    """The URL signer of a source: None, or Planetary Computer's SAS token signing."""
    if sign == "none":
        return None
    if sign == "planetary-computer":
        try:
            import planetary_computer
        except ImportError as exc:
            raise RuntimeError(
                "stac sources with sign: planetary-computer need the planetary-computer "
                "package: pip install -e '.[pc]'"
            ) from exc
        return planetary_computer.sign
    raise ValueError(f"unknown signing {sign!r} (none or planetary-computer)")


@dataclass(frozen=True)
class Source:
    """One STAC source: where to search, which collection, how its assets are named."""

    kind: str  # s2 or s1
    api: str  # STAC API root URL, or the path of a static catalog.json
    collection: str
    assets: Mapping[str, str]  # our asset key -> the source's asset key
    sign: str = "none"
    max_cloud_cover: float | None = None

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
        )


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

    if item.geometry is None or not shape(item.geometry).intersects(footprint):
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
    )
    return sorted(items, key=lambda i: (_when(i), i.id))


# ---------------------------------------------------------------------------- acquisitions


def solar_date(item: pystac.Item) -> dt.date:
    """Local solar date of the item's centre: scenes of one overpass share it."""
    lon = 0.0
    if item.bbox:
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
) -> dict:
    """Search every source over the site's tile and write the manifest (atomically).

    ``study`` is the config's ``stac`` section. A source without any item over the tile
    and period is an error naming the site, the dates and the collection.
    """
    grid = site_grid(float(site["lat"]), float(site["lon"]), float(study["buffer_m"]))
    start = dt.date.fromisoformat(str(study["start"]))
    end = dt.date.fromisoformat(str(study["end"]))
    acquisitions = []
    for kind in KINDS:
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
        "sources": {
            kind: {
                "api": (s := Source.from_config(kind, study[kind])).api,
                "collection": s.collection,
                "assets": dict(s.assets),
                "sign": s.sign,
                "max_cloud_cover": s.max_cloud_cover,
            }
            for kind in KINDS
        },
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


def _s2_offset(items: list[pystac.Item], source: Mapping[str, Any], acq: str) -> float:
    """Reflectance offset of the source DNs (raster:bands, else the processing baseline);
    scenes of one overpass must agree, and the scale must be L2A's 1e-4."""
    offsets = set()
    for item in items:
        for ours in sentinel.S2_BAND_NAMES:
            bands = item.assets[source["assets"][ours]].extra_fields.get("raster:bands") or []
            if bands and bands[0].get("scale") is not None:
                scale = float(bands[0]["scale"])
                if not math.isclose(scale, sentinel.S2_SCALE):
                    raise ValueError(
                        f"acquisition {acq}, item {item.id}, asset {ours}: DN scale {scale} "
                        f"is not Sentinel-2 L2A's {sentinel.S2_SCALE}"
                    )
                offsets.add(round(float(bands[0].get("offset") or 0.0), 6))
            else:
                offsets.add(
                    sentinel.l2a_offset(
                        item.properties.get("s2:processing_baseline"), item.datetime
                    )
                )
    if len(offsets) != 1:
        raise ValueError(f"acquisition {acq}: its scenes mix DN offsets {sorted(offsets)}")
    return offsets.pop()


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
    offset = _s2_offset(items, source, acq["id"])
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
        offset=offset,
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
        mgrs_tile=first.properties.get("s2:mgrs_tile"),
        offset=offset,
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


def acquire_acquisition(
    manifest_path: str | os.PathLike[str],
    acquisition: str,
    out_dir: str | os.PathLike[str],
    *,
    resampling: str = "nearest",
    retries: int = 4,
    backoff_s: float = 2.0,
    threads: int = 1,
) -> pystac.Item:
    """Load one acquisition onto the tile grid: COGs and ``item.json`` in ``out_dir``.

    The folder is written under a temporary name and renamed when complete; a download that
    fails after its retries leaves nothing behind.
    """
    manifest = read_manifest(manifest_path)
    found = [a for a in manifest["acquisitions"] if a["id"] == acquisition]
    if not found:
        raise InputDataError(manifest_path, f"no acquisition {acquisition!r} in the manifest")
    acq = found[0]
    source = manifest["sources"][acq["kind"]]
    items = [pystac.Item.from_dict(d, preserve_dict=True) for d in acq["items"]]
    grid = manifest_grid(manifest)
    signer = href_signer(source["sign"])

    def load(bands: dict[str, str], g: GridSpec, **kw: Any) -> dict[str, np.ndarray]:
        return with_retries(
            lambda: _load(items, bands, g, patch_url=signer, threads=threads, **kw),
            what=f"acquisition {acquisition} ({', '.join(bands.values())})",
            retries=retries,
            backoff_s=backoff_s,
        )

    write = _write_s2 if acq["kind"] == "s2" else _write_s1
    with atomic_path(out_dir, replace="any") as tmp:
        tmp.mkdir(parents=True)
        item = write(acq, items, source, grid, manifest["tile"], tmp, load, resampling)
        stac.write_item_collection([item], tmp / ITEM_FILE)
    return item


def write_tile_items(
    manifest_path: str | os.PathLike[str],
    acquisition_dirs: Iterable[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
) -> int:
    """The tile's ``items.json``: its grid item and every acquisition's item (hrefs relative
    to it), as the synthetic world writes it. Returns the number of acquisitions."""
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
    dirs = list(acquisition_dirs)
    for d in dirs:
        items += stac.read_item_collection(Path(d) / ITEM_FILE)
    stac.write_item_collection(items, out_path)
    return len(dirs)
