"""Zarr stores of datacubes and embeddings, with their CRS carried by rioxarray's spatial_ref."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine

from ecoembed.io.atomic import Replace, atomic_path
from ecoembed.io.errors import InputDataError

# Root-attribute titles of the stores ecoembed writes (build_cube, the synthetic truth).
_TITLED_KINDS = {
    "ecoembed analysis-ready cube": "cube",
    "ecoembed synthetic world: truth": "truth",
}
PRODUCT_KINDS = ("cube", "truth", "embeddings", "daily", "reconstruction")


def product_kind(path: str | os.PathLike[str]) -> str | None:
    """What ecoembed product the Zarr store at ``path`` is, from its root metadata; None when
    it is no ecoembed product (a folder of other files, a file, a foreign store, a symlink).

    Recognised by what the writers already record in the root attributes (never a new
    marker, so outputs stay as they were): ``title`` "ecoembed analysis-ready cube ..."
    (``cube``) or "ecoembed synthetic world: truth ..." (``truth``); the export's ``model``
    attribute (JSON holding the checkpoint's ``fusion_sha256``) with the array
    ``embedding`` on ``time`` (``embeddings``), on ``day`` (``daily``), or ``s2``
    (``reconstruction``). Reads one small JSON file; never raises.
    """
    p = Path(path)
    if p.is_symlink() or not p.is_dir():
        return None
    try:
        meta = json.loads((p / "zarr.json").read_text(encoding="utf-8"))
        attrs = meta.get("attributes") or {}
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    if not isinstance(attrs, dict):
        return None
    title = attrs.get("title")
    if isinstance(title, str):
        for prefix, kind in _TITLED_KINDS.items():
            if title.startswith(prefix):
                return kind
    try:
        model = json.loads(attrs["model"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(model, dict) or "fusion_sha256" not in model:
        return None
    consolidated = (meta.get("consolidated_metadata") or {}).get("metadata") or {}
    names = set(consolidated) or {c.name for c in p.iterdir() if (c / "zarr.json").is_file()}
    if "embedding" in names:
        return "daily" if "day" in names else "embeddings"
    return "reconstruction" if "s2" in names else None


def is_ecoembed_product(path: str | os.PathLike[str], kind: str | None = None) -> bool:
    """True when ``path`` is a Zarr store ecoembed wrote (of ``kind``, if given): what the
    store writers here may replace (``atomic_path``'s ``replace`` predicate)."""
    if kind is not None and kind not in PRODUCT_KINDS:
        raise ValueError(f"unknown product kind {kind!r}; one of {PRODUCT_KINDS}")
    found = product_kind(path)
    return found is not None and (kind is None or found == kind)


def variable_length_strings(ds: xr.Dataset) -> xr.Dataset:
    """Store text (band names, orbit labels) as Zarr v3's specified variable-length "string".

    numpy's fixed-width ``<U`` maps to a Zarr data type without a v3 specification (zarr-python
    warns it may change); object/StringDType arrays map to the specified "string" type.
    """

    def is_text(v: xr.Variable) -> bool:
        return v.dtype.kind in "UT"

    text = [name for name, var in ds.variables.items() if is_text(var)]
    if not text:
        return ds
    # Bare Variables, not DataArrays: a DataArray would bring its own (still fixed-width)
    # copy of a text coordinate along and overwrite the converted one.
    out = ds.assign_coords({n: ds.variables[n].astype(object) for n in text if n in ds.coords})
    return out.assign({n: ds.variables[n].astype(object) for n in text if n in ds.data_vars})


def with_grid_mapping(ds: xr.Dataset, encoding: Mapping[str, Mapping[str, Any]] | None) -> dict:
    """Caller's encoding plus each variable's ``grid_mapping``: rioxarray keeps it in the
    variable's encoding, which an explicit ``to_zarr(encoding=...)`` would replace, and
    without it the CRS is not found again on reading."""
    out = {name: dict(e) for name, e in (encoding or {}).items()}
    for name, var in ds.data_vars.items():
        if "grid_mapping" in var.encoding and name in out:
            out[name].setdefault("grid_mapping", var.encoding["grid_mapping"])
    return out


def write_zarr(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    crs: Any = None,
    transform: Affine | None = None,
    encoding: Mapping[str, Mapping[str, Any]] | None = None,
    replace: Replace = is_ecoembed_product,
) -> None:
    """Write ``ds`` as a consolidated Zarr (format 3) store, atomically (temp dir + rename).

    With ``crs`` the grid mapping is attached by rioxarray (``spatial_ref`` with ``crs_wkt``;
    ``GeoTransform`` too when ``transform`` is given) so ``open_zarr(p).rio.crs`` works.
    An existing ``path`` is replaced only when it is an ecoembed product (``replace``, as
    for ``atomic_path``): anything else there is refused with OutputExistsError.
    """
    # rioxarray copies the dataset unless told otherwise: attach the grid mapping to a shallow
    # copy in place, so a multi-GB dataset is never duplicated just to add ``spatial_ref``.
    ds = ds.copy(deep=False)
    if crs is not None:
        ds.rio.write_crs(crs, inplace=True)
    if transform is not None:
        if crs is None and ds.rio.crs is None:
            raise ValueError(f"{path}: a transform needs a crs")
        ds.rio.write_transform(Affine(*tuple(transform)[:6]), inplace=True)
    ds = variable_length_strings(ds)
    with atomic_path(path, replace=replace) as tmp, warnings.catch_warnings():
        # Consolidated metadata is a zarr-python extension in format 3; we want it anyway
        # (one read instead of one per array), and only read our stores with zarr-python.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        ds.to_zarr(
            tmp,
            mode="w-",
            consolidated=True,
            encoding=with_grid_mapping(ds, encoding),
            zarr_format=3,
        )


def open_zarr(path: str | os.PathLike[str]) -> xr.Dataset:
    """Open a store lazily with its CRS decoded (``ds.rio.crs``); bad stores: InputDataError."""
    p = Path(path)
    if not p.exists():
        raise InputDataError(path, "Zarr store does not exist")
    if not p.is_dir():
        raise InputDataError(path, "not a Zarr store (a file, not a directory)")
    if not any((p / meta).is_file() for meta in ("zarr.json", ".zgroup", ".zmetadata")):
        raise InputDataError(path, "not a Zarr store (no zarr.json/.zgroup metadata)")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            return xr.open_zarr(p, decode_coords="all", chunks=None)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputDataError(path, f"unreadable Zarr store ({exc!r})") from exc


def lazy_full(fill: Any, shape: tuple[int, ...], chunks: tuple[int, ...]):
    """A dask array of ``fill``: the variable of a template store that is never computed."""
    import dask.array as da
    import numpy as np

    return da.full(shape, fill, dtype=np.asarray(fill).dtype, chunks=chunks)


class RegionWriter:
    """Write a large store region by region: template first, regions, then consolidate.

    Use as a context manager; the store is assembled under a temporary name and renamed
    into place only when the block exits without an error (``atomic_path``), so a failed
    or killed job leaves nothing behind. Memory is that of one region, never of the store.
    An existing ``path`` is replaced only when ``replace`` allows it (default: when it is an
    ecoembed product); otherwise entering refuses with OutputExistsError, before any write.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        template: xr.Dataset,
        encoding: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        replace: Replace = is_ecoembed_product,
    ) -> None:
        self.path = Path(path)
        self.replace = replace
        self.template = variable_length_strings(template)
        self.encoding = with_grid_mapping(self.template, encoding)
        self._atomic = None
        self.tmp: Path | None = None

    def __enter__(self) -> RegionWriter:
        self._atomic = atomic_path(self.path, replace=self.replace)
        self.tmp = self._atomic.__enter__()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message="Consolidated metadata", category=UserWarning
                )
                self.template.to_zarr(
                    self.tmp,
                    mode="w-",
                    encoding=self.encoding,
                    zarr_format=3,
                    consolidated=False,
                    compute=False,
                )
        except BaseException as exc:  # no with-block runs: clean up as an exit would
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def write(self, part: xr.Dataset, region: Mapping[str, slice]) -> None:
        """Values of some data variables on ``region`` (dimension -> slice)."""
        part.to_zarr(self.tmp, region=dict(region), zarr_format=3, consolidated=False)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            import zarr

            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings(
                        "ignore", message="Consolidated metadata", category=UserWarning
                    )
                    zarr.consolidate_metadata(self.tmp)
            except BaseException as err:
                self._atomic.__exit__(type(err), err, err.__traceback__)
                raise
        return bool(self._atomic.__exit__(exc_type, exc, tb))
