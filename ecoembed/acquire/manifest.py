"""The manifest of a tile: what its STAC search found (grid, sources, acquisitions), the one
file the later acquisition steps read, and the batches its acquisitions are loaded in."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from affine import Affine

from ecoembed.io.atomic import atomic_write_text
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec
from ecoembed.io.sensors import SENSORS

MANIFEST_VERSION = 1


def write_manifest(
    path: str | os.PathLike[str],
    *,
    tile: str,
    site: Mapping[str, Any],
    start: dt.date,
    end: dt.date,
    grid: GridSpec,
    sources: dict[str, dict[str, Any]],
    acquisitions: list[dict],
) -> dict:
    """Write a tile's manifest (atomically) and return it."""
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
        "sources": sources,
        "acquisitions": acquisitions,
    }
    atomic_write_text(path, json.dumps(manifest, indent=1) + "\n", replace="any")
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
    out: dict[str, list[str]] = {s.collection: [] for s in SENSORS.values()}
    for a in read_manifest(manifest_path)["acquisitions"]:
        out[a["collection"]].append(a["id"])
    return out


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


def acquisition_key(acq: Mapping[str, Any], source: Mapping[str, Any], resampling: str) -> str:
    """What an acquired folder was made from (source items and settings): a folder whose
    item records the same key is reused, any other is acquired again."""
    blob = json.dumps(
        {"v": MANIFEST_VERSION, "acq": acq, "source": source, "resampling": resampling},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
