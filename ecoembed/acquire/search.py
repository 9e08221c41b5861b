"""Searching the STAC sources over a tile: the items of its period, grouped into
acquisitions (the scenes of one overpass), written to the tile's manifest."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pystac

from ecoembed.acquire.manifest import write_manifest
from ecoembed.acquire.remote import refused_hint, with_retries
from ecoembed.acquire.sources import Source, item_datetime
from ecoembed.io import stac
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec, grid_footprint, site_grid, wgs84_geometry
from ecoembed.io.sensors import SENSOR_NAMES, SENSORS
from ecoembed.io.stac import is_local

log = logging.getLogger(__name__)


class NoAcquisitionsError(ValueError):
    """A search found nothing: the message names the site, the dates and the collection."""


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


def _matches(
    item: pystac.Item, footprint, start: dt.datetime, end: dt.datetime, max_cloud: float | None
) -> bool:
    """The search predicate, also applied to API results (some APIs ignore ``query``)."""
    from shapely.geometry import shape

    if item.geometry is None or not shape(wgs84_geometry(item.geometry)).intersects(footprint):
        return False
    if not start <= item_datetime(item) < end:
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
    return sorted(items, key=lambda i: (item_datetime(i), i.id))


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
    return (item_datetime(item) + dt.timedelta(hours=lon / 15.0)).date()


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
    when = item_datetime(first)
    platform = str(first.properties.get("platform", "")).lower()
    unit = platform[-1:].upper() if platform[-1:].isalpha() else "X"
    if kind == "s2":
        return f"S2{unit}_MSIL2A_{when:%Y%m%dT%H%M%S}_{tile}"
    orbit = str(first.properties.get("sat:orbit_state", "unk"))[:3].upper()
    return f"S1{unit}_IW_GRDH_{when:%Y%m%dT%H%M%S}_{orbit}_{tile}"


def group_acquisitions(kind: str, items: Iterable[pystac.Item], tile: str) -> list[dict]:
    """Acquisitions (dicts for the manifest): id, collection, datetime and source items."""
    groups: dict[tuple, list[pystac.Item]] = {}
    for item in sorted(items, key=lambda i: (item_datetime(i), i.id)):
        groups.setdefault(group_key(kind, item), []).append(item)
    out = []
    for members in groups.values():
        out.append(
            {
                "id": acquisition_id(kind, members, tile),
                "kind": kind,
                "collection": SENSORS[kind].collection,
                "datetime": item_datetime(members[0]).isoformat(),
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
    kinds: Iterable[str] = SENSOR_NAMES,
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
    return write_manifest(
        manifest_path,
        tile=tile,
        site=site,
        start=start,
        end=end,
        grid=grid,
        sources={kind: Source.from_config(kind, study[kind]).as_dict() for kind in kinds},
        acquisitions=acquisitions,
    )
