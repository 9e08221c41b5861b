"""Cloud-Optimized GeoTIFF writing and validated GeoTIFF reading.

Raw Sentinel products are one COG per band per acquisition, so writing is on the hot path of
the synthetic world (about 10,000 small files): it goes straight through GDAL's COG driver,
which rasterio feeds from an in-memory (MEM) dataset on close, without extra copies.

Every asset read is compared first with what its STAC item declares
(:func:`check_asset_matches`): a file in another CRS, on another grid, of another data
type or nodata than its item says is refused, not read as if it were right.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from ecoembed.io.atomic import atomic_path
from ecoembed.io.errors import InputDataError
from ecoembed.io.grid import GridSpec

try:  # GDAL errors that rasterio does not wrap in RasterioError (private module, stable name)
    from rasterio._err import CPLE_BaseError
except ImportError:  # pragma: no cover - only if rasterio reorganises its internals
    CPLE_BaseError = RasterioError  # type: ignore[misc,assignment]

_GDAL_ERRORS = (RasterioError, CPLE_BaseError)


def _describe(exc: BaseException) -> str:
    """GDAL's message; rasterio often hides the useful part in the chained cause."""
    parts = []
    while exc is not None and len(parts) < 3:
        msg = str(exc).strip()
        if msg and "See previous exception" not in msg and msg not in parts:
            parts.append(msg)
        exc = exc.__cause__ or exc.__context__
    return "; ".join(parts) or "GDAL could not read it"


@lru_cache(maxsize=64)
def _crs_from_hashable(crs: int | str) -> CRS:
    return CRS.from_epsg(crs) if isinstance(crs, int) else CRS.from_user_input(crs)


def _as_crs(crs: Any) -> CRS:
    """EPSG int, 'EPSG:32632', WKT, pyproj/rasterio CRS -> rasterio CRS (cached: hot path)."""
    if isinstance(crs, CRS):
        return crs
    if isinstance(crs, int | str):
        return _crs_from_hashable(crs)
    return CRS.from_user_input(crs)


def _per_band(value: float | Sequence[float] | None, count: int, what: str) -> tuple | None:
    """One value for all bands or one per band -> a tuple of ``count`` floats."""
    if value is None:
        return None
    values = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    if values.size == 1:
        values = np.repeat(values, count)
    if values.size != count:
        raise ValueError(f"{what}: {values.size} values for {count} bands")
    return tuple(values.tolist())


def _check_nodata(nodata: float | None, dtype: np.dtype, path: object) -> None:
    """GDAL silently clamps a nodata value the data type cannot hold; refuse it instead."""
    if nodata is None or not np.issubdtype(dtype, np.integer):
        return
    info = np.iinfo(dtype)
    if not (float(nodata).is_integer() and info.min <= nodata <= info.max):
        raise ValueError(f"{path}: nodata {nodata} is not representable as {dtype}")


def _blocksize(height: int, width: int) -> int:
    # One 128 px tile for the small rasters instead of a padded 256 px one: smaller and faster.
    return 128 if max(height, width) <= 128 else 256


def write_cog(
    path: str | os.PathLike[str],
    data: np.ndarray,
    *,
    crs: Any,
    transform: Affine,
    nodata: float | None,
    scale: float | Sequence[float] | None = None,
    offset: float | Sequence[float] | None = None,
    band_names: Sequence[str] | None = None,
    tags: Mapping[str, Any] | None = None,
    overview_resampling: str = "average",
) -> None:
    """Write ``data`` ((h, w) or (bands, h, w)) as a DEFLATE Cloud-Optimized GeoTIFF, atomically.

    ``scale``/``offset`` are stored as GDAL band scale/offset (physical = DN * scale + offset),
    which is what ``rasterio.open(p).scales``/``.offsets`` and GDAL-aware readers apply.
    Use ``overview_resampling="nearest"`` for class maps such as SCL.
    """
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"{path}: data must be (h, w) or (bands, h, w), got shape {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    count, height, width = arr.shape
    _check_nodata(nodata, arr.dtype, path)
    if band_names is not None and len(band_names) != count:
        raise ValueError(f"{path}: {len(band_names)} band names for {count} bands")
    scales = _per_band(scale, count, f"{path}: scale")
    offsets = _per_band(offset, count, f"{path}: offset")
    if scales is not None and offsets is None:
        offsets = (0.0,) * count
    elif offsets is not None and scales is None:
        scales = (1.0,) * count

    is_float = np.issubdtype(arr.dtype, np.floating)
    profile = {
        "driver": "COG",
        "count": count,
        "height": height,
        "width": width,
        "dtype": arr.dtype.name,
        "crs": _as_crs(crs),
        "transform": transform,
        "nodata": nodata,
        # COG creation options
        "compress": "DEFLATE",
        "predictor": 3 if is_float else 2,
        "blocksize": _blocksize(height, width),
        "overview_resampling": overview_resampling.upper(),
        "bigtiff": "IF_SAFER",
    }
    with atomic_path(path, replace="any") as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(arr)
        if scales is not None:
            dst.scales = scales
            dst.offsets = offsets
        if band_names is not None:
            for i, name in enumerate(band_names, start=1):
                dst.set_band_description(i, str(name))
        if tags:
            dst.update_tags(**{str(k): str(v) for k, v in tags.items()})


def read_raster(
    path: str | os.PathLike[str], *, item: str | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read all bands as (bands, h, w) plus a profile; bad files raise InputDataError.

    The data are returned as stored (DNs); scales/offsets are in the profile so the caller
    decides when to convert. ``item`` (a STAC item id) only enriches the error message.
    """
    p = Path(path)
    if not p.is_file():
        problem = "is a directory, not a raster file" if p.is_dir() else "file does not exist"
        raise InputDataError(path, problem, item=item)
    try:
        with rasterio.open(p) as src:
            data = src.read()
            profile = {
                "driver": src.driver,
                "dtype": src.dtypes[0],
                "count": src.count,
                "height": src.height,
                "width": src.width,
                "crs": src.crs,
                "transform": src.transform,
                "nodata": src.nodata,
                "scales": tuple(src.scales),
                "offsets": tuple(src.offsets),
                "descriptions": tuple(src.descriptions),
                "tags": src.tags(),
            }
    except _GDAL_ERRORS as exc:
        raise InputDataError(
            path, f"unreadable or corrupt raster: {_describe(exc)}", item=item
        ) from exc
    return data, profile


def is_cog(path: str | os.PathLike[str]) -> bool:
    """True when GDAL reports the file's layout as Cloud-Optimized (``LAYOUT=COG``)."""
    try:
        with rasterio.open(path) as src:
            layout = src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "")
    except _GDAL_ERRORS as exc:
        raise InputDataError(path, f"cannot open as a raster: {_describe(exc)}") from exc
    return layout.upper() == "COG"


# raster:bands data_type names numpy/rasterio spell differently; "other" and cint32 have
# no rasterio dtype and are not compared.
_STAC_DTYPES = {"cfloat32": "complex64", "cfloat64": "complex128", "cint16": "complex_int16"}
_UNCOMPARED_DTYPES = {"other", "cint32"}
# Transform tolerance, in pixels: offsets to 1 % of a pixel, pixel sizes and rotation to a
# relative 1e-6 (0.01 pixel of drift across a 10,980 px Sentinel-2 tile).
_OFFSET_TOL_PX = 0.01
_SCALE_TOL = 1e-6


def _crs_text(crs: CRS | None) -> str:
    if crs is None:
        return "no CRS"
    epsg = crs.to_epsg()
    if epsg is not None:
        return f"EPSG:{epsg}"
    text = crs.to_string()
    return text if len(text) <= 80 else text[:77] + "..."


def _transform_text(t: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.10g}" for v in tuple(t)[:6]) + ")"


def _transform_differs(have: Affine, want: Affine) -> bool:
    px = max(abs(want.a), abs(want.b), abs(want.d), abs(want.e)) or 1.0
    scale = max(abs(have.a - want.a), abs(have.b - want.b), abs(have.d - want.d))
    scale = max(scale, abs(have.e - want.e))
    offset = max(abs(have.c - want.c), abs(have.f - want.f))
    return scale > _SCALE_TOL * px or offset > _OFFSET_TOL_PX * px


def _declared(path: Any, item: str | None, **given: Any) -> dict[str, Any]:
    """The item's values in comparable form; one it states but nobody can use: refused."""
    out: dict[str, Any] = {}
    for what, value in given.items():
        if value is None:
            continue
        try:
            if what == "crs":
                digits = isinstance(value, str) and value.strip().isdigit()
                out[what] = _as_crs(int(value) if digits else value)
            elif what == "transform":
                out[what] = Affine(*(float(v) for v in tuple(value)[:6]))
            elif what == "shape":
                rows, cols = (int(v) for v in value)
                out[what] = (rows, cols)
            elif what == "dtype":
                name = str(value)
                if name not in _UNCOMPARED_DTYPES:
                    out[what] = _STAC_DTYPES.get(name) or np.dtype(name).name
            elif what == "nodata":
                # float() also parses the raster extension's "nan", "inf", "-inf" (JSON has
                # no NaN)
                out[what] = float(value)
        except (TypeError, ValueError) as exc:  # CRSError is a ValueError
            raise InputDataError(
                path, f"its STAC item declares an unusable {what} {value!r} ({exc})", item=item
            ) from exc
    return out


def _mismatches(src: rasterio.io.DatasetReader, declared: Mapping[str, Any]) -> list[str]:
    found = []
    want = declared.get("crs")
    if want is not None and (src.crs is None or src.crs != want):
        found.append(f"CRS {_crs_text(src.crs)} in the file, {_crs_text(want)} in the item")
    want = declared.get("shape")
    if want is not None and (src.height, src.width) != want:
        found.append(f"shape {(src.height, src.width)} in the file, {want} in the item")
    want = declared.get("transform")
    if want is not None and _transform_differs(src.transform, want):
        found.append(
            f"transform {_transform_text(src.transform)} in the file, "
            f"{_transform_text(want)} in the item"
        )
    want = declared.get("dtype")
    have = sorted(set(src.dtypes))
    if want is not None and have != [want]:
        found.append(f"data type {', '.join(have)} in the file, {want} in the item")
    want = declared.get("nodata")
    if want is not None and src.nodata is not None:
        have_nd = float(src.nodata)
        # compared in the file's own type: a float32 file's -3.4e38 is the item's -3.4e+38
        kind = np.dtype(src.dtypes[0])
        same = (
            np.asarray(want).astype(kind) == np.asarray(have_nd).astype(kind)
            if kind.kind == "f" and np.isfinite(want) and abs(want) <= np.finfo(kind).max
            else want == have_nd
        )
        if not ((math.isnan(want) and math.isnan(have_nd)) or same):
            found.append(f"nodata {have_nd:g} in the file, {want:g} in the item")
    return found


def _is_remote(path: str | os.PathLike[str]) -> bool:
    """A URL or a GDAL virtual path (/vsicurl/, /vsis3/, /vsimem/...), not a local file."""
    text = os.fspath(path)
    return "://" in text or text.startswith("/vsi")


def check_asset_matches(
    path: str | os.PathLike[str],
    *,
    crs: Any = None,
    transform: Affine | Sequence[float] | None = None,
    shape: Sequence[int] | None = None,
    dtype: str | np.dtype | None = None,
    nodata: float | str | None = None,
    item: str | None = None,
    dataset: rasterio.io.DatasetReader | None = None,
) -> None:
    """Refuse (InputDataError) a raster that is not what its STAC item declares.

    Compares the file's header with what is given, each only when given (None: the item
    does not say): ``crs`` (EPSG int, "EPSG:32632", WKT or PROJJSON text: proj:code,
    proj:epsg, proj:wkt2, proj:projjson), ``transform`` (proj:transform, 6 or 9 numbers;
    offsets to 0.01 pixel, pixel size to a relative 1e-6), ``shape`` (proj:shape,
    (rows, cols)), ``dtype`` (raster:bands data_type, for every band) and ``nodata``
    (raster:bands nodata; "nan" matches a NaN nodata; compared only where the file states
    one too). :func:`asset_declaration` collects them from an item's asset. One error
    names the file, the item and both values of every mismatch.

    Only the header is read. ``path`` is a local path or any GDAL URL (``https://``,
    ``/vsis3/``...); pass an already open ``dataset`` to check it without opening the
    file again (``path`` then only names it in the error). A local file that cannot be
    opened is an InputDataError; a URL that cannot be opened raises GDAL's own error
    (a RasterioError), which a caller may retry as the network failure it usually is.
    """
    declared = _declared(
        path, item, crs=crs, transform=transform, shape=shape, dtype=dtype, nodata=nodata
    )
    if dataset is not None:
        found = _mismatches(dataset, declared)
    else:
        try:
            with rasterio.open(path) as src:
                found = _mismatches(src, declared)
        except _GDAL_ERRORS as exc:
            if _is_remote(path):
                raise
            raise InputDataError(
                path, f"cannot open as a raster: {_describe(exc)}", item=item
            ) from exc
    if found:
        raise InputDataError(path, "does not match its STAC item: " + "; ".join(found), item=item)


def _first_set(fields: Mapping[str, Any], names: Sequence[str]) -> tuple[str, Any] | None:
    for name in names:
        if fields.get(name) is not None:
            return name, fields[name]
    return None


_CRS_FIELDS = ("proj:code", "proj:epsg", "proj:wkt2", "proj:projjson")


def asset_declaration(item: Any, key: str) -> dict[str, Any]:
    """What a STAC item declares about its asset ``key``: the keyword arguments of
    :func:`check_asset_matches` (crs, transform, shape, dtype, nodata), only those stated.

    ``proj:*`` on the asset take precedence over ``proj:*`` on the item (the projection
    extension's rule: Planetary Computer S1 items state them on the item, Earth Search S2
    items state ``proj:epsg`` on the item and ``proj:transform``/``proj:shape`` per asset);
    ``raster:bands`` is read from the asset (first band). ``item`` is a pystac Item.
    """
    asset = item.assets[key]
    fields, props = asset.extra_fields, item.properties
    out: dict[str, Any] = {}
    crs = _first_set(fields, _CRS_FIELDS) or _first_set(props, _CRS_FIELDS)
    if crs is not None:
        name, value = crs
        out["crs"] = json.dumps(value) if name == "proj:projjson" else value
    for ours, theirs in (("transform", "proj:transform"), ("shape", "proj:shape")):
        value = fields[theirs] if fields.get(theirs) is not None else props.get(theirs)
        if value is not None:
            out[ours] = value
    bands = fields.get("raster:bands") or []
    if bands and isinstance(bands[0], Mapping):
        if bands[0].get("data_type") is not None:
            out["dtype"] = str(bands[0]["data_type"])
        if bands[0].get("nodata") is not None:
            out["nodata"] = bands[0]["nodata"]
    return out


def _aligned_window(
    src: rasterio.io.DatasetReader, grid: GridSpec, window: Window
) -> Window | None:
    """``window`` in the asset's pixel coordinates when the asset shares the grid's CRS,
    pixel size and pixel alignment (any extent); None when it must be resampled."""
    st, gt = src.transform, grid.transform
    if src.crs != grid.crs or (st.a, st.b, st.d, st.e) != (gt.a, gt.b, gt.d, gt.e):
        return None
    dc, dr = (gt.c - st.c) / gt.a, (gt.f - st.f) / gt.e
    if abs(dc - round(dc)) > 1e-6 or abs(dr - round(dr)) > 1e-6:
        return None
    return Window(
        int(window.col_off) + round(dc),
        int(window.row_off) + round(dr),
        int(window.width),
        int(window.height),
    )


def read_on_grid(
    path: str | os.PathLike[str],
    grid: GridSpec,
    window: Window,
    *,
    resampling: Resampling = Resampling.nearest,
    item: str | None = None,
    band: int = 1,
    expected_count: int = 1,
    declared: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One band of an asset on ``window`` of the analysis ``grid``: (values, valid mask).

    An asset already on the grid is read directly; one in another CRS, resolution or
    alignment is warped onto it (rasterio WarpedVRT, ``resampling``). Pixels outside the
    asset's footprint or equal to its nodata are invalid. Bad files raise InputDataError
    naming the file, the item and the problem; so does a file that is not what its item
    ``declared`` (``asset_declaration``: checked on the dataset opened for the read).
    """
    p = Path(path)
    if not p.is_file():
        raise InputDataError(path, "asset file does not exist", item=item)
    try:
        with rasterio.open(p) as src:
            if src.count != expected_count:
                raise InputDataError(
                    path, f"expected {expected_count} band(s), the file has {src.count}", item=item
                )
            if src.crs is None:
                raise InputDataError(path, "raster has no CRS", item=item)
            if declared:
                check_asset_matches(path, item=item, dataset=src, **declared)
            aligned = _aligned_window(src, grid, window)
            if aligned is not None:  # exact: same pixels, possibly partial coverage
                # boundless reads go through a VRT (5x slower): only where the window leaves
                # the asset
                inside = (
                    aligned.col_off >= 0
                    and aligned.row_off >= 0
                    and aligned.col_off + aligned.width <= src.width
                    and aligned.row_off + aligned.height <= src.height
                )
                values = src.read(band, window=aligned, boundless=not inside, fill_value=src.nodata)
                valid = src.read_masks(band, window=aligned, boundless=not inside) > 0
            else:
                with WarpedVRT(
                    src,
                    crs=grid.crs,
                    transform=grid.transform,
                    width=grid.width,
                    height=grid.height,
                    resampling=resampling,
                ) as vrt:
                    values = vrt.read(band, window=window)
                    valid = vrt.read_masks(band, window=window) > 0
    except _GDAL_ERRORS as exc:
        raise InputDataError(
            path, f"unreadable or corrupt raster: {_describe(exc)}", item=item
        ) from exc
    return values, valid
