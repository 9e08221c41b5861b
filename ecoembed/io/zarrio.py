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
    with atomic_path(path, replace="any") as tmp, warnings.catch_warnings():
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
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        template: xr.Dataset,
        encoding: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.template = variable_length_strings(template)
        self.encoding = with_grid_mapping(self.template, encoding)
        self._atomic = None
        self.tmp: Path | None = None

    def __enter__(self) -> RegionWriter:
        self._atomic = atomic_path(self.path, replace="any")
        self.tmp = self._atomic.__enter__()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            self.template.to_zarr(
                self.tmp,
                mode="w-",
                encoding=self.encoding,
                zarr_format=3,
                consolidated=False,
                compute=False,
            )
        return self

    def write(self, part: xr.Dataset, region: Mapping[str, slice]) -> None:
        """Values of some data variables on ``region`` (dimension -> slice)."""
        part.to_zarr(self.tmp, region=dict(region), zarr_format=3, consolidated=False)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            import zarr

            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message="Consolidated metadata", category=UserWarning
                )
                zarr.consolidate_metadata(self.tmp)
        return bool(self._atomic.__exit__(exc_type, exc, tb))
