"""What acquiring a study will fetch (rule plan): per site and collection the acquisitions,
scenes and roughly how many bytes, from the manifests of the searches alone."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pystac
from affine import Affine

from ecoembed.acquire.credentials import key_env_of
from ecoembed.acquire.manifest import manifest_grid, read_manifest
from ecoembed.acquire.sources import used_asset_keys
from ecoembed.io import stac
from ecoembed.io.atomic import atomic_write_text
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec
from ecoembed.io.sensors import SENSORS

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
    for kind, collection in ((s.name, s.collection) for s in SENSORS.values()):
        if kind not in manifest["sources"]:
            continue
        acqs = [a for a in manifest["acquisitions"] if a["kind"] == kind]
        source = manifest["sources"][kind]
        keys = used_asset_keys({"kind": kind}, source)
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
