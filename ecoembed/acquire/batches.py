"""Acquiring a tile in batches (a site is a few jobs, not hundreds): acquisitions finished
before are reused, failures are collected, and the tile's ``items.json`` gathers them."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import pystac

from ecoembed.acquire.credentials import MissingCredentialsError
from ecoembed.acquire.load import ACQUISITION_KEY, ITEM_FILE, acquire_acquisition
from ecoembed.acquire.manifest import (
    acquisition_batches,
    acquisition_key,
    manifest_grid,
    read_manifest,
)
from ecoembed.acquire.remote import AccessRefusedError
from ecoembed.io import stac
from ecoembed.io.errors import InputDataError

log = logging.getLogger(__name__)


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
