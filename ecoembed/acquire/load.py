"""Loading one acquisition onto the tile grid: its source assets checked against their
items, read and mosaicked (odc-stac), and written as COGs and a STAC item in the raw
layout the synthetic world writes."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pystac

from ecoembed.acquire.credentials import check_credentials
from ecoembed.acquire.manifest import acquisition_key, manifest_grid, read_manifest
from ecoembed.acquire.remote import href_signer, refused_hint, verify_asset, with_retries
from ecoembed.acquire.sources import item_datetime, used_asset_keys
from ecoembed.io import products, sentinel, stac
from ecoembed.io.atomic import atomic_path
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec, grid_at

S2_ASSETS_20M = tuple(b.name for b in sentinel.S2_BANDS if b.resolution_m == 20)
S2_ASSETS_10M = tuple(b.name for b in sentinel.S2_BANDS if b.resolution_m == 10)
ITEM_FILE = "item.json"
ACQUISITION_KEY = "ecoembed:acquisition_key"
VERIFY_MODES = ("auto", "size", "checksum", "none")


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
                item.properties, _raster_band(item, source["assets"][ours]), item_datetime(item)
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
        datetime=item_datetime(first),
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
        datetime=item_datetime(first),
        epsg=grid.epsg,
        bbox=grid.bounds,
        assets=assets,
        orbit_state=str(first.properties["sat:orbit_state"]),
        relative_orbit=int(first.properties["sat:relative_orbit"]),
        platform=str(first.properties.get("platform", "sentinel-1")),
    )


# How each sensor's acquisition is written: the assets it loads and the item it makes.
WRITERS: dict[str, Callable[..., pystac.Item]] = {"s2": _write_s2, "s1": _write_s1}


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
    :func:`ecoembed.acquire.remote.verify_asset`). The folder is written under a temporary name
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
        used_asset_keys(acq, source),
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

    write = WRITERS[acq["kind"]]
    with atomic_path(out_dir, replace="any") as tmp:
        tmp.mkdir(parents=True)
        item = write(acq, items, source, grid, manifest["tile"], tmp, load, resampling)
        item.properties[ACQUISITION_KEY] = acquisition_key(acq, source, resampling)
        stac.write_item_collection([item], tmp / ITEM_FILE)
    return item
