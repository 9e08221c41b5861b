"""Zarr stores of datacubes and embeddings, with their CRS carried by rioxarray's spatial_ref."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine

from ecoembed.io.atomic import atomic_path
from ecoembed.io.errors import InputDataError


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
) -> None:
    """Write ``ds`` as a consolidated Zarr (format 3) store, atomically (temp dir + rename).

    With ``crs`` the grid mapping is attached by rioxarray (``spatial_ref`` with ``crs_wkt``;
    ``GeoTransform`` too when ``transform`` is given) so ``open_zarr(p).rio.crs`` works.
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
    with atomic_path(path) as tmp, warnings.catch_warnings():
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
