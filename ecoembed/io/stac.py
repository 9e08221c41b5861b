"""STAC items, per-tile item collections and the merged catalog of the raw Sentinel inputs.

Items carry what the cube builder needs to read a COG without opening it first (grid per
asset, DN scaling, nodata), recorded the way Planetary Computer and Earth Search do, so
synthetic and real acquisitions go through the same code.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pystac
from affine import Affine
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, NoDataStrings, RasterBand, RasterExtension
from pystac.extensions.sar import FrequencyBand, Polarization, SarExtension
from pystac.extensions.sat import OrbitState, SatExtension
from pystac.stac_io import DefaultStacIO
from pystac.utils import str_to_datetime
from rasterio.warp import transform_bounds, transform_geom

from ecoembed.io import sentinel
from ecoembed.io.atomic import atomic_write_text
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec
from ecoembed.io.sensors import SENSORS

S2_COLLECTION_ID = SENSORS["s2"].collection
S1_COLLECTION_ID = SENSORS["s1"].collection
TILES_COLLECTION_ID = "ecoembed-tiles"
TILE_PROPERTY = "ecoembed:tile"
SCL_ASSET_KEY = "SCL"

AssetSpec = tuple[str, Affine, tuple[int, int]]  # (href, transform, (height, width))

_COPERNICUS_TERMS = (
    "Contains modified Copernicus Sentinel data. Use is governed by the Legal Notice on the "
    "use of Copernicus Sentinel Data and Service Information (free, full and open access)."
)
_COLLECTION_DESCRIPTIONS = {
    S2_COLLECTION_ID: "Sentinel-2 MSI Level-2A surface reflectance, one COG per band (DN, "
    "reflectance = DN * 1e-4 - 0.1 from processing baseline 04.00), and the scene "
    "classification map (SCL).",
    TILES_COLLECTION_ID: "The analysis grids of ecoembed: one item per tile whose proj:code, "
    "proj:transform and proj:shape define the 10 m grid every input is resampled onto.",
    S1_COLLECTION_ID: "Sentinel-1 IW GRD, radiometrically terrain-corrected gamma0 in linear "
    "power, one float32 COG per polarisation (VV, VH).",
}
_S2_BANDS = {b.name: b for b in sentinel.S2_BANDS}
_BBOX_DECIMALS = 7  # ~1 cm in WGS84
# What pystac raises on JSON that is not the STAC object it should be.
_STAC_ERRORS = (pystac.STACError, pystac.STACTypeError, KeyError, TypeError, ValueError)


# ---------------------------------------------------------------------------- item building


def _as_datetime(value: dt.datetime | str) -> dt.datetime:
    """Timezone-aware UTC datetime; naive values are taken as UTC (Sentinel times are UTC)."""
    when = str_to_datetime(value) if isinstance(value, str) else value
    if not isinstance(when, dt.datetime):
        raise TypeError(f"expected a datetime or ISO string, got {value!r}")
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _wgs84_footprint(epsg: int, bbox: tuple[float, float, float, float]) -> tuple[dict, list]:
    """Item geometry and bbox in WGS84 from a projected bbox (bbox densified, rounded outward)."""
    minx, miny, maxx, maxy = bbox
    if not (minx < maxx and miny < maxy):
        raise ValueError(f"bbox {bbox} is not (minx, miny, maxx, maxy) with min < max")
    ring = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)]
    geom = transform_geom(
        f"EPSG:{epsg}",
        "EPSG:4326",
        {"type": "Polygon", "coordinates": [ring]},
        precision=_BBOX_DECIMALS,
    )
    geom = {"type": "Polygon", "coordinates": [[list(xy) for xy in geom["coordinates"][0]]]}
    west, south, east, north = transform_bounds(f"EPSG:{epsg}", "EPSG:4326", *bbox, densify_pts=21)
    q = 10**_BBOX_DECIMALS
    wgs_bbox = [
        math.floor(west * q) / q,
        math.floor(south * q) / q,
        math.ceil(east * q) / q,
        math.ceil(north * q) / q,
    ]
    return geom, wgs_bbox


def _new_item(
    item_id: str,
    *,
    collection_id: str,
    tile: str,
    when: dt.datetime | str,
    epsg: int,
    bbox: tuple[float, float, float, float],
    properties: dict[str, Any],
) -> pystac.Item:
    geometry, wgs_bbox = _wgs84_footprint(epsg, bbox)
    item = pystac.Item(
        id=item_id,
        geometry=geometry,
        bbox=wgs_bbox,
        datetime=_as_datetime(when),
        properties={**properties, TILE_PROPERTY: tile},
        collection=collection_id,
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = f"EPSG:{int(epsg)}"
    proj.bbox = [float(v) for v in bbox]
    return item


def _add_asset(
    item: pystac.Item, key: str, spec: AssetSpec, *, title: str
) -> tuple[pystac.Asset, float]:
    """Add a COG asset with its own grid (10 m and 20 m assets of one item differ)."""
    href, transform, shape = spec
    transform = Affine(*tuple(transform)[:6])
    asset = pystac.Asset(
        href=str(href), media_type=pystac.MediaType.COG, roles=["data"], title=title
    )
    item.add_asset(key, asset)
    proj = ProjectionExtension.ext(asset)
    proj.transform = [float(v) for v in tuple(transform)[:6]]
    proj.shape = [int(shape[0]), int(shape[1])]
    resolution = abs(transform.a)
    return asset, resolution


def make_s2_item(
    item_id: str,
    *,
    tile: str,
    datetime: dt.datetime | str,
    epsg: int,
    bbox: tuple[float, float, float, float],
    assets: Mapping[str, AssetSpec],
    cloud_cover: float,
    platform: str = "sentinel-2a",
    processing_baseline: str = "05.10",
    mgrs_tile: str | None = None,
    offset: float = sentinel.S2_OFFSET,
    dn_offset_rule: str | None = None,
) -> pystac.Item:
    """A Sentinel-2 L2A item: one COG asset per band (B02..B12) plus SCL, eo/proj/raster.

    ``offset``: reflectance = DN * 1e-4 + offset, -0.1 from processing baseline 04.00 on and
    0 before (acquired archive scenes keep their DNs; the item says how to read them).
    ``dn_offset_rule``: what in the source items decided ``offset``, recorded as
    ``ecoembed:dn_offset_rule`` (acquired items; the synthetic world writes none).
    """
    unknown = sorted(set(assets) - set(_S2_BANDS) - {SCL_ASSET_KEY})
    if unknown:
        raise ValueError(f"item {item_id}: unknown Sentinel-2 asset keys {unknown}")
    if not 0.0 <= float(cloud_cover) <= 100.0:
        raise ValueError(f"item {item_id}: cloud_cover {cloud_cover} is not a percentage")
    properties: dict[str, Any] = {
        "platform": platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "s2:processing_baseline": processing_baseline,
    }
    if mgrs_tile is not None:
        properties["s2:mgrs_tile"] = mgrs_tile
    if dn_offset_rule is not None:
        properties[sentinel.DN_OFFSET_RULE] = dn_offset_rule
    item = _new_item(
        item_id,
        collection_id=S2_COLLECTION_ID,
        tile=tile,
        when=datetime,
        epsg=epsg,
        bbox=bbox,
        properties=properties,
    )
    EOExtension.ext(item, add_if_missing=True).cloud_cover = float(cloud_cover)
    RasterExtension.add_to(item)
    # Cube order for bands, SCL last, whatever order the caller's dict has.
    for key in [*(b for b in sentinel.S2_BAND_NAMES if b in assets), SCL_ASSET_KEY]:
        if key not in assets:
            continue
        if key == SCL_ASSET_KEY:
            asset, res = _add_asset(item, key, assets[key], title="Scene classification map")
            raster_band = RasterBand.create(
                nodata=sentinel.S2_NODATA, data_type=DataType.UINT8, spatial_resolution=res
            )
        else:
            band = _S2_BANDS[key]
            title = f"{key} {band.common_name} ({band.center_wavelength_um:.3f} um)"
            asset, res = _add_asset(item, key, assets[key], title=title)
            EOExtension.ext(asset).bands = [
                Band.create(
                    name=key,
                    common_name=band.common_name,
                    center_wavelength=band.center_wavelength_um,
                    full_width_half_max=band.full_width_half_max_um,
                )
            ]
            raster_band = RasterBand.create(
                nodata=sentinel.S2_NODATA,
                data_type=DataType.UINT16,
                spatial_resolution=res,
                scale=sentinel.S2_SCALE,
                offset=float(offset),
            )
        RasterExtension.ext(asset).bands = [raster_band]
    return item


def make_s1_item(
    item_id: str,
    *,
    tile: str,
    datetime: dt.datetime | str,
    epsg: int,
    bbox: tuple[float, float, float, float],
    assets: Mapping[str, AssetSpec],
    orbit_state: str,
    relative_orbit: int,
    platform: str = "sentinel-1a",
) -> pystac.Item:
    """A Sentinel-1 RTC gamma0 item (assets vv/vh, float32 linear power): sar/sat/proj/raster."""
    unknown = sorted(set(assets) - set(sentinel.S1_ASSET_KEYS))
    if unknown or not assets:
        raise ValueError(
            f"item {item_id}: Sentinel-1 asset keys must be among {sentinel.S1_ASSET_KEYS}, "
            f"got {sorted(assets)}"
        )
    state = OrbitState(orbit_state.lower())  # ValueError for anything but ascending/descending
    keys = [k for k in sentinel.S1_ASSET_KEYS if k in assets]
    pols = [Polarization(k.upper()) for k in keys]
    properties = {"platform": platform, "constellation": "sentinel-1", "instruments": ["c-sar"]}
    item = _new_item(
        item_id,
        collection_id=S1_COLLECTION_ID,
        tile=tile,
        when=datetime,
        epsg=epsg,
        bbox=bbox,
        properties=properties,
    )
    SarExtension.ext(item, add_if_missing=True).apply(
        instrument_mode="IW",
        frequency_band=FrequencyBand.C,
        polarizations=pols,
        product_type="GRD",
        center_frequency=sentinel.S1_CENTER_FREQUENCY_GHZ,
        resolution_range=20.0,
        resolution_azimuth=22.0,
        pixel_spacing_range=10.0,
        pixel_spacing_azimuth=10.0,
        looks_range=5,
        looks_azimuth=1,
        looks_equivalent_number=sentinel.S1_GRD_ENL,
    )
    SatExtension.ext(item, add_if_missing=True).apply(
        orbit_state=state, relative_orbit=int(relative_orbit)
    )
    RasterExtension.add_to(item)
    for key, pol in zip(keys, pols, strict=True):
        title = f"{pol.value}: gamma0 (terrain-corrected), linear power"
        asset, res = _add_asset(item, key, assets[key], title=title)
        SarExtension.ext(asset).polarizations = [pol]
        RasterExtension.ext(asset).bands = [
            # NaN is not valid JSON: the raster extension spells it "nan".
            RasterBand.create(
                nodata=NoDataStrings.NAN, data_type=DataType.FLOAT32, spatial_resolution=res
            )
        ]
    return item


# ---------------------------------------------------------------------------- hrefs and JSON


def _is_url(href: str) -> bool:
    # A one-letter scheme is a Windows drive, not a URL.
    return len(urlparse(href).scheme) > 1


def is_local(href: str) -> bool:
    """A path on this machine (a one-letter scheme is a Windows drive, not a URL)."""
    parsed = urlparse(href)
    return len(parsed.scheme) <= 1 or parsed.scheme == "file"


def local_path(href: str) -> str:
    """The path of a local href (``file://`` URLs included)."""
    parsed = urlparse(href)
    return parsed.path if parsed.scheme == "file" else href


def _absolute_local(href: str, base_dir: Path) -> str:
    return href if _is_url(href) or os.path.isabs(href) else os.path.normpath(base_dir / href)


def _load_json(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputDataError(path, f"{what} does not exist")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(path, f"{what} is not valid JSON ({exc})") from exc
    if not isinstance(d, dict):
        raise InputDataError(path, f"{what} is not a JSON object")
    return d


class _AtomicStacIO(DefaultStacIO):
    """pystac I/O that writes every JSON file via a temporary name and a rename."""

    def write_text_to_href(self, href: str, txt: str) -> None:
        if _is_url(href):
            super().write_text_to_href(href, txt)
        else:
            atomic_write_text(href, txt, replace="any")


# Ids of items and collections become folder and file names (build_catalog), so they must
# be plain names: no separators, no "..", nothing hidden.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def check_safe_id(value: object, where: str | os.PathLike[str], what: str = "item id") -> str:
    """``value`` if it can name a file (letters, digits, ``_ . -``, no ``..``), else an error."""
    if not isinstance(value, str) or not _SAFE_ID.fullmatch(value) or ".." in value:
        raise InputDataError(
            where, f"{what} {value!r} cannot name a file (letters, digits, '_', '.', '-' only)"
        )
    return value


def _inside(path: str, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def check_local_href(
    href: str, root: str | os.PathLike[str], where: str | os.PathLike[str], *, item: str
) -> str:
    """``href`` if it is a local path inside ``root``; a catalog on disk must not send the
    workflow to the network or to files outside its own folder."""
    if not is_local(href):
        raise InputDataError(
            where, f"asset href {href!r} is a URL, not a file of {root}", item=item
        )
    local = local_path(href)
    if not _inside(local, Path(root)):
        raise InputDataError(
            where, f"asset href {href!r} points outside the folder {root}", item=item
        )
    return local


def refusal_behind(exc: BaseException) -> InputDataError | None:
    """The :class:`LocalStacIO` refusal that pystac wrapped into its own error, if any."""
    while exc is not None:
        if isinstance(exc, InputDataError):
            return exc
        exc = exc.__cause__
    return None


class LocalStacIO(DefaultStacIO):
    """pystac I/O for catalogs on disk: reads only local files inside ``root``, so that a
    link to ``http://...`` or ``../../elsewhere`` in a catalog someone gave us is refused
    instead of fetched."""

    def __init__(self, root: str | os.PathLike[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.root = Path(root)

    def read_text_from_href(self, href: str) -> str:
        if not is_local(href):
            raise InputDataError(href, f"a catalog on disk ({self.root}) links to a URL")
        local = local_path(href)
        if not _inside(local, self.root):
            raise InputDataError(href, f"link points outside the catalog's folder {self.root}")
        return super().read_text_from_href(local)


EMBEDDINGS_COLLECTION_ID = "ecoembed-embeddings"


def make_embedding_item(
    item_id: str,
    *,
    tile: str,
    datetime: dt.datetime | str,
    grid: GridSpec,
    href: str,
    dims: int,
    data_type: str,
    nodata: float | str,
    scales: Iterable[float] | None = None,
    offsets: Iterable[float] | None = None,
    properties: Mapping[str, Any] | None = None,
) -> pystac.Item:
    """An item of one date's exported embedding: one COG asset with one band per dimension
    (``raster:bands`` with each band's scale and offset where quantised, so that a reader
    gets the embedding as value * scale + offset). ``nodata``: a number, or "nan" for
    float bands (STAC's spelling)."""
    item = _new_item(
        item_id,
        collection_id=EMBEDDINGS_COLLECTION_ID,
        tile=tile,
        when=datetime,
        epsg=grid.epsg,
        bbox=grid.bounds,
        properties=dict(properties or {}),
    )
    RasterExtension.add_to(item)
    asset, res = _add_asset(
        item, "embedding", (href, grid.transform, grid.shape), title=f"{dims}-dimensional embedding"
    )
    scales = [None] * dims if scales is None else [float(v) for v in scales]
    offsets = [None] * dims if offsets is None else [float(v) for v in offsets]
    if len(scales) != dims or len(offsets) != dims:
        raise ValueError(
            f"item {item_id}: {dims} dimensions but {len(scales)} scales, {len(offsets)} offsets"
        )
    RasterExtension.ext(asset).bands = [
        RasterBand.create(
            nodata=nodata,
            data_type=DataType(data_type),
            spatial_resolution=res,
            scale=scale,
            offset=offset,
        )
        for scale, offset in zip(scales, offsets, strict=True)
    ]
    return item


def make_tile_item(
    tile: str,
    *,
    epsg: int,
    transform: Affine,
    shape: tuple[int, int],
    start: dt.datetime | str,
    end: dt.datetime | str,
) -> pystac.Item:
    """The grid of a tile as a STAC item (no assets): what the cube builder resamples onto.

    Real and synthetic inputs both write one, so the analysis grid is data, not a
    convention about which asset happens to be first.
    """
    height, width = shape
    bbox = (
        transform.c,
        transform.f + height * transform.e,
        transform.c + width * transform.a,
        transform.f,
    )
    geometry, wgs_bbox = _wgs84_footprint(epsg, bbox)
    item = pystac.Item(
        id=tile,
        geometry=geometry,
        bbox=wgs_bbox,
        datetime=None,
        start_datetime=_as_datetime(start),
        end_datetime=_as_datetime(end),
        properties={TILE_PROPERTY: tile},
        collection=TILES_COLLECTION_ID,
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = f"EPSG:{int(epsg)}"
    proj.transform = list(transform)[:6]
    proj.shape = [int(height), int(width)]
    proj.bbox = list(bbox)
    return item


def _chronological(item: pystac.Item) -> tuple[dt.datetime, str]:
    """Sort key: acquisition time, or the start of the period an item covers."""
    when = item.datetime or _as_datetime(item.properties["start_datetime"])
    return when, item.id


def item_epsg(item: pystac.Item, where: str | os.PathLike[str] = "") -> int:
    """EPSG code of an item from the projection extension (proj:code, or v1 proj:epsg)."""
    code = item.properties.get("proj:code")
    if isinstance(code, str) and code.upper().startswith("EPSG:"):
        return int(code.split(":", 1)[1])
    if item.properties.get("proj:epsg") is not None:
        return int(item.properties["proj:epsg"])
    raise InputDataError(
        where or item.get_self_href() or item.id,
        "item has no projection information (proj:code or proj:epsg)",
        item=item.id,
    )


def item_grid(item: pystac.Item, where: str | os.PathLike[str] = "") -> GridSpec:
    """The grid an item declares (proj:code + proj:transform + proj:shape)."""
    epsg = item_epsg(item, where)
    transform, shape = item.properties.get("proj:transform"), item.properties.get("proj:shape")
    if not transform or not shape:
        raise InputDataError(
            where or item.get_self_href() or item.id,
            "item has no proj:transform / proj:shape",
            item=item.id,
        )
    return GridSpec(epsg, Affine(*transform[:6]), int(shape[0]), int(shape[1]))


# ---------------------------------------------------------------------------- item collections

_HIERARCHY = {"self", "root", "parent", "collection", "child", "item"}


def write_item_collection(items: Iterable[pystac.Item], path: str | os.PathLike[str]) -> None:
    """Write items as one GeoJSON FeatureCollection, atomically, asset hrefs relative to it.

    Absolute asset hrefs are made relative to the file's directory; relative hrefs of items
    without a self link are taken relative to the working directory (as Snakemake paths are).
    URLs are kept. The caller's items are not modified.
    """
    base = Path(path).absolute().parent
    out = []
    for item in items:
        clone = item.clone()
        clone.links = [ln for ln in clone.links if ln.rel not in _HIERARCHY]
        for key, asset in item.assets.items():
            href = asset.get_absolute_href() or os.path.abspath(asset.href)
            if not _is_url(href):
                href = Path(os.path.relpath(href, base)).as_posix()
            clone.assets[key].href = href
        out.append(clone)
    text = json.dumps(pystac.ItemCollection(out).to_dict(transform_hrefs=False), indent=1)
    atomic_write_text(path, text + "\n", replace="any")


def read_item_collection(
    path: str | os.PathLike[str], within: str | os.PathLike[str] | None = None
) -> list[pystac.Item]:
    """Items of a FeatureCollection file, asset hrefs made absolute against its directory.

    Every asset must be a local file inside ``within`` (default: the file's folder, where
    the raw layout keeps them) and every item id a plain name: a collection someone gave us
    cannot send the workflow elsewhere.
    """
    d = _load_json(path, "item collection")
    if d.get("type") != "FeatureCollection" or not isinstance(d.get("features"), list):
        raise InputDataError(path, "not a GeoJSON FeatureCollection of STAC items")
    base = Path(path).absolute().parent
    root = Path(within).absolute() if within is not None else base
    items = []
    for i, feature in enumerate(d["features"]):
        item_id = feature.get("id") if isinstance(feature, dict) else None
        try:
            item = pystac.Item.from_dict(feature, preserve_dict=False)
        except _STAC_ERRORS as exc:
            where = f"feature {i}: " if item_id is None else ""
            raise InputDataError(path, f"{where}invalid STAC item ({exc!r})", item=item_id) from exc
        check_safe_id(item.id, path)
        for asset in item.assets.values():
            asset.href = check_local_href(
                _absolute_local(asset.href, base), root, path, item=item.id
            )
        items.append(item)
    return items


# ---------------------------------------------------------------------------- catalog


def _make_collection(collection_id: str, items: list[pystac.Item]) -> pystac.Collection:
    def distinct(prop: str) -> list[Any]:
        return sorted({i.properties[prop] for i in items if prop in i.properties})

    return pystac.Collection(
        id=collection_id,
        description=f"{_COLLECTION_DESCRIPTIONS.get(collection_id, collection_id)} "
        f"{_COPERNICUS_TERMS}",
        extent=pystac.Extent.from_items(items),
        license="other",
        summaries=pystac.Summaries(
            {k: v for k in ("platform", "constellation", TILE_PROPERTY) if (v := distinct(k))}
        ),
    )


def build_catalog(
    item_collection_paths: Iterable[str | os.PathLike[str]],
    catalog_path: str | os.PathLike[str],
    *,
    title: str = "ecoembed Sentinel-1/2 inputs",
) -> None:
    """Merge per-tile item collections into one self-contained catalog beside ``catalog_path``.

    Every asset must lie inside the catalog's folder (the raw folder) and every id must be
    a plain name, since items are written to ``{root}/{collection}/{item_id}/``.
    Items go to ``{root}/{collection}/{item_id}/{item_id}.json`` with asset hrefs relative to
    them; every file is written atomically and the root catalog last, so an interrupted run
    never leaves a catalog that links to missing files.
    """
    groups: dict[str, list[pystac.Item]] = {}
    seen: dict[str, str] = {}
    root = Path(catalog_path).absolute().parent  # the raw folder: every asset lies inside
    for p in item_collection_paths:
        for item in read_item_collection(p, within=root):
            if item.id in seen:
                raise InputDataError(p, f"duplicate item id, also in {seen[item.id]}", item=item.id)
            if not item.collection_id:
                raise InputDataError(p, "item names no collection", item=item.id)
            check_safe_id(item.collection_id, p, "collection id")
            seen[item.id] = str(p)
            groups.setdefault(item.collection_id, []).append(item)

    catalog = pystac.Catalog(
        id="ecoembed-inputs",
        description=f"Raw Sentinel acquisitions read by ecoembed. {_COPERNICUS_TERMS}",
        title=title,
    )
    for collection_id in sorted(groups):
        items = sorted(groups[collection_id], key=_chronological)
        collection = _make_collection(collection_id, items)
        catalog.add_child(collection)
        collection.add_items(items)

    catalog_path = Path(catalog_path).absolute()
    catalog.normalize_hrefs(str(catalog_path.parent))
    catalog.set_self_href(str(catalog_path))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED, stac_io=_AtomicStacIO())


def read_catalog_items(
    catalog_path: str | os.PathLike[str],
    collection_id: str | None = None,
    tile: str | None = None,
) -> list[pystac.Item]:
    """Items of the catalog (optionally one collection / one tile), absolute asset hrefs,
    sorted by datetime then id."""
    root_dict = _load_json(catalog_path, "STAC catalog")
    root = Path(catalog_path).absolute().parent
    try:
        catalog = pystac.Catalog.from_dict(root_dict, href=str(Path(catalog_path).absolute()))
    except _STAC_ERRORS as exc:
        raise InputDataError(catalog_path, f"not a STAC catalog ({exc!r})") from exc
    catalog._stac_io = LocalStacIO(root)  # the links it resolves: local, inside its folder

    parents: list[pystac.Catalog] = []
    for link in catalog.get_child_links():
        child_href = link.get_absolute_href()
        try:
            child = link.resolve_stac_object(root=catalog).target
        except (OSError, *_STAC_ERRORS) as exc:
            raise refusal_behind(exc) or InputDataError(
                child_href, f"unreadable collection ({exc!r})"
            ) from exc
        check_safe_id(child.id, child_href, "collection id")
        if collection_id is None or child.id == collection_id:
            parents.append(child)
    if collection_id is not None and not parents:
        raise InputDataError(catalog_path, f"no collection {collection_id!r} in the catalog")

    items = []
    for parent in parents:
        for link in parent.get_item_links():
            item_href = link.get_absolute_href()
            try:
                item = link.resolve_stac_object(root=catalog).target
            except (OSError, *_STAC_ERRORS) as exc:
                raise refusal_behind(exc) or InputDataError(
                    item_href, f"unreadable STAC item ({exc!r})"
                ) from exc
            check_safe_id(item.id, item_href)
            if tile is not None and item.properties.get(TILE_PROPERTY) != tile:
                continue
            item.make_asset_hrefs_absolute()
            for asset in item.assets.values():
                asset.href = check_local_href(asset.href, root, item_href, item=item.id)
            items.append(item)
    return sorted(items, key=_chronological)
