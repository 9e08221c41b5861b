"""FLUXNET2015 / ONEFlux CSV files and the flux-tower site table.

The synthetic towers are written in exactly the format real FLUXNET files have, so the GPP
evaluation reads both through ``read_fluxnet``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ecoembed.io.atomic import atomic_path
from ecoembed.io.errors import InputDataError

MISSING = -9999
SITE_COLUMNS: tuple[str, ...] = ("SITE_ID", "LOCATION_LAT", "LOCATION_LONG", "IGBP")

# Timestamp columns and their formats by string length (FLUXNET2015 data product description):
# DD "YYYYMMDD", MM "YYYYMM", YY "YYYY"; HH/HR "YYYYMMDDHHMM" and WW "YYYYMMDD" as START/END.
_TIMESTAMP_FORMATS = {4: "%Y", 6: "%Y%m", 8: "%Y%m%d", 12: "%Y%m%d%H%M"}
_TIMESTAMP_COLUMNS = ("TIMESTAMP", "TIMESTAMP_START", "TIMESTAMP_END")
_NA_VALUES = [str(MISSING), f"{MISSING}.0", f"{MISSING}.00", f"{MISSING}.000"]


def write_fluxnet_dd(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a daily frame as a FLUXNET2015 DD CSV (TIMESTAMP YYYYMMDD, -9999 missing), atomically.

    Floats keep 6 significant digits, as the real files do.
    """
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise ValueError(f"{path}: index must be a DatetimeIndex, got {type(idx).__name__}")
    if (idx != idx.normalize()).any():
        raise ValueError(f"{path}: daily data must have timestamps at midnight")
    if not (idx.is_monotonic_increasing and idx.is_unique):
        raise ValueError(f"{path}: dates must be strictly increasing")
    if set(_TIMESTAMP_COLUMNS) & set(map(str, df.columns)):
        raise ValueError(f"{path}: timestamp columns must be the index, not data columns")
    out = df.copy()
    out.index = pd.Index(idx.strftime("%Y%m%d").astype(np.int64), name="TIMESTAMP")
    with atomic_path(path, replace="any") as tmp:
        out.to_csv(tmp, na_rep=str(MISSING), float_format="%.6g", lineterminator="\n")


def _read_header(path: str | os.PathLike[str]) -> list[str]:
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputDataError(path, f"not a readable CSV file ({exc})") from exc
    return [str(c).strip() for c in header.columns]


# The tail of a file read to find its last line (a FLUXNET row is at most a few KB).
_TAIL_BYTES = 1 << 20


def _newlines(path: str | os.PathLike[str]) -> int:
    """Newline characters in the file (read in chunks; only on the error path)."""
    count = 0
    with open(path, "rb") as f:
        while chunk := f.read(_TAIL_BYTES):
            count += chunk.count(b"\n")
    return count


def _check_not_truncated(path: str | os.PathLike[str], n_columns: int) -> None:
    """Refuse a file that ends mid-row: its last line has fewer fields than the header, or
    (with no newline after it) ends in an empty field or a fragment of a number.

    Without this check pandas fills the missing fields with empty strings and the file is
    reported as holding non-numeric values. A cut that leaves a number (``-99`` of
    ``-9999``) cannot be told from data; the plausibility ranges catch most of those.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - _TAIL_BYTES))
        tail = f.read()
    body = tail.rstrip()
    if b"\n" not in body:
        return  # the header is the only line ("no data rows" follows), or a giant line
    last = body.rsplit(b"\n", 1)[1].decode("utf-8", errors="replace")
    fields = [field.strip() for field in last.split(",")]
    ends_with_newline = tail.rstrip(b" \t").endswith((b"\n", b"\r"))
    if len(fields) < n_columns:
        problem = f"has {len(fields)} of the header's {n_columns} fields"
    elif not ends_with_newline and not _is_number(fields[-1]):
        problem = f"ends in {fields[-1]!r}, not a number"
    else:
        return
    line = _newlines(path) - tail[len(body) :].count(b"\n") + 1
    raise InputDataError(path, f"truncated: the last line (line {line}) {problem}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_timestamps(values: pd.Series, path: str | os.PathLike[str], column: str) -> pd.Series:
    text = values.astype("string").str.strip()
    if text.isna().any():
        row = int(np.flatnonzero(text.isna().to_numpy())[0])
        raise InputDataError(path, f"{column} is empty in data row {row + 1}")
    lengths = text.str.len().unique()
    fmt = _TIMESTAMP_FORMATS.get(int(lengths[0])) if len(lengths) == 1 else None
    if fmt is None or not text.str.fullmatch(r"\d+").all():
        bad = text[~text.str.fullmatch(r"\d{4}|\d{6}|\d{8}|\d{12}")]
        example = bad.iloc[0] if len(bad) else text.iloc[0]
        raise InputDataError(
            path,
            f"{column} is not a FLUXNET timestamp column (e.g. {example!r}; expected "
            "YYYY, YYYYMM, YYYYMMDD or YYYYMMDDHHMM throughout)",
        )
    try:
        return pd.to_datetime(text, format=fmt)
    except ValueError as exc:
        raise InputDataError(path, f"{column} holds an invalid date ({exc})") from exc


def read_fluxnet(
    path: str | os.PathLike[str], *, variables: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read a FLUXNET2015/ONEFlux CSV (DD, WW, MM, YY, HH, HR) into a float frame.

    The index is a DatetimeIndex named ``TIMESTAMP`` (``TIMESTAMP_START`` for half-hourly,
    hourly and weekly files; ``TIMESTAMP_END`` is dropped), -9999 becomes NaN. With
    ``variables``, only those columns are returned (and they must all be there).
    """
    if not Path(path).is_file():
        raise InputDataError(path, "FLUXNET file does not exist")
    header = _read_header(path)
    time_col = next((c for c in ("TIMESTAMP", "TIMESTAMP_START") if c in header), None)
    if time_col is None:
        raise InputDataError(path, "no TIMESTAMP or TIMESTAMP_START column")
    _check_not_truncated(path, len(header))
    if variables is not None:
        missing = [v for v in variables if v not in header]
        if missing:
            raise InputDataError(path, f"missing variables: {', '.join(missing)}")
        wanted = {time_col, *variables}
    else:
        wanted = set(header) - {"TIMESTAMP_END"}
    try:
        df = pd.read_csv(
            path,
            encoding="utf-8-sig",
            usecols=lambda c: str(c).strip() in wanted,
            dtype={c: str for c in _TIMESTAMP_COLUMNS},
            na_values=_NA_VALUES,
            keep_default_na=False,
        )
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise InputDataError(path, f"malformed CSV ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise InputDataError(path, "no data rows (the file holds only its header)")

    index = pd.DatetimeIndex(_parse_timestamps(df.pop(time_col), path, time_col), name="TIMESTAMP")
    if not (index.is_monotonic_increasing and index.is_unique):
        bad = int(np.flatnonzero(np.diff(index.asi8) <= 0)[0]) + 1
        raise InputDataError(
            path, f"{time_col} is not strictly increasing (data row {bad + 1}: {index[bad]})"
        )
    if variables is not None:
        df = df[list(variables)]
    non_numeric = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        first = df[non_numeric[0]]
        bad = first.notna() & pd.to_numeric(first, errors="coerce").isna()
        row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
        raise InputDataError(
            path,
            f"non-numeric values in columns: {', '.join(non_numeric)} "
            f"(first {first.iloc[row]!r} in data row {row + 1})",
        )
    df = df.astype("float64")
    df = df.mask(df == MISSING)  # also -9999 written in a format na_values did not list
    df.index = index
    return df


def _check_site_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    missing = [c for c in SITE_COLUMNS if c not in df.columns]
    if missing:
        raise InputDataError(path, f"site table lacks columns: {', '.join(missing)}")
    empty = [c for c in SITE_COLUMNS if df[c].isna().any()]
    if empty:
        raise InputDataError(path, f"site table has empty cells in: {', '.join(empty)}")
    if df["SITE_ID"].duplicated().any():
        dups = sorted(df.loc[df["SITE_ID"].duplicated(), "SITE_ID"].astype(str).unique())
        raise InputDataError(path, f"duplicate SITE_ID: {', '.join(dups)}")
    for col, limit in (("LOCATION_LAT", 90.0), ("LOCATION_LONG", 180.0)):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = df.loc[values.isna() | (values.abs() > limit), "SITE_ID"]
        if len(bad):
            raise InputDataError(path, f"{col} invalid for sites: {', '.join(map(str, bad))}")


def write_site_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write the site table (SITE_ID, LOCATION_LAT, LOCATION_LONG, IGBP, ...) atomically."""
    _check_site_table(df, path)
    with atomic_path(path, replace="any") as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")


def read_site_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a site table; extra columns (LOCATION_ELEV, MAT, ...) are kept."""
    if not Path(path).is_file():
        raise InputDataError(path, "site table does not exist")
    try:
        df = pd.read_csv(path, encoding="utf-8-sig", dtype={"SITE_ID": str, "IGBP": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputDataError(path, f"not a readable CSV file ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    _check_site_table(df, path)
    return df


# --- daily GPP for the evaluation -------------------------------------------------------
GPP_PARTITIONING = {
    "NT": ("GPP_NT_VUT_REF",),
    "DT": ("GPP_DT_VUT_REF",),
    "mean": (
        "GPP_NT_VUT_REF",
        "GPP_DT_VUT_REF",
    ),
}
QC_COLUMN = "NEE_VUT_REF_QC"
MET_COLUMNS: tuple[str, ...] = ("SW_IN_F", "TA_F", "VPD_F")
# half-hourly/hourly GPP is in umol CO2 m-2 s-1; a daily mean of it times this is gC m-2 d-1
UMOL_CO2_PER_S_TO_GC_PER_DAY = 12.011e-6 * 86400.0
# half-hourly QC flags: 0 measured, 1 good, 2 medium, 3 poor gap-filling; the daily QC of
# ONEFlux is the fraction of measured and good-quality gap-filled records
GOOD_SUBDAILY_QC = 1

# Physically possible daily values (DD files, or HH/HR records reduced to days) of the
# columns the workflow reads: column -> (lowest, highest, unit). A value outside is not
# data but a fault (a missing-value code other than -9999, a unit mix-up, a broken file),
# and is refused rather than fed to the models. The bounds are deliberately wide, so that
# no real tower's file is refused; the real US-AR1 DD file (2009-2012) spans GPP_NT
# -2.43..11.58, GPP_DT 0..12.40, SW_IN_F 6.0..371.7, TA_F -14.7..35.5, VPD_F 0.005..45.0.
PLAUSIBLE_DAILY: dict[str, tuple[float, float, str]] = {
    # GPP: the most productive ecosystems (irrigated maize) stay below about 30-40
    # gC m-2 d-1; 50 is also the light-use ceiling (about 70 mol m-2 d-1 of PAR on the
    # clearest days x 0.06 mol C per mol photons, the maximal quantum yield, x 12 g/mol).
    # The partitioned products are model estimates (GPP_NT = RECO - NEE) and go slightly
    # negative on days of little uptake; -10 leaves room for that noise.
    "GPP_NT_VUT_REF": (-10.0, 50.0, "gC m-2 d-1"),
    "GPP_DT_VUT_REF": (-10.0, 50.0, "gC m-2 d-1"),
    # the daily QC of ONEFlux is a fraction of records
    QC_COLUMN: (0.0, 1.0, "fraction of good records"),
    # daily mean shortwave radiation cannot exceed the top of the atmosphere's, at most
    # 1361 W m-2 x 1.034 (perihelion) x sin(23.44 deg) = 560 W m-2 (polar summer
    # solstice); pyranometers read down to about -10 W m-2 at night (thermal offset)
    "SW_IN_F": (-10.0, 600.0, "W m-2"),
    # beyond the records of surface air temperature (-89.2 and 56.7 deg C)
    "TA_F": (-90.0, 60.0, "deg C"),
    # VPD is at most the saturation vapour pressure, 199 hPa at 60 deg C; humidity sensors
    # read a few per cent above saturation in fog, a small negative VPD
    "VPD_F": (-5.0, 200.0, "hPa"),
}


def check_plausible(daily: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Refuse daily values outside :data:`PLAUSIBLE_DAILY`, naming the column, the first
    offending date and its value (missing values, NaN, are not checked)."""
    for col in (c for c in daily.columns if c in PLAUSIBLE_DAILY):
        low, high, unit = PLAUSIBLE_DAILY[col]
        values = daily[col].to_numpy(np.float64)
        bad = (values < low) | (values > high)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise InputDataError(
                path,
                f"implausible daily {col} on {daily.index[first]:%Y-%m-%d}: "
                f"{values[first]:g} (outside {low:g} to {high:g} {unit}, on {int(bad.sum())} "
                f"day(s); missing values must be -9999)",
            )


def observed_gpp(
    daily: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    partitioning: str,
    min_qc: float,
    site: str | None = None,
) -> pd.Series:
    """Daily GPP of the partitioning, missing where the QC fraction is below ``min_qc``.

    A tower with no day of GPP left would silently drop out of the GPP evaluation, so
    that is an error naming the tower (``site``), the file and the cause.
    """
    gpp_cols = GPP_PARTITIONING[partitioning]
    gpp = daily[list(gpp_cols)].mean(axis=1, skipna=False)
    kept = gpp.where(daily[QC_COLUMN] >= min_qc)
    if kept.notna().any():
        return kept
    tower = f"tower {site}: " if site is not None else ""
    span = f"{daily.index[0]:%Y-%m-%d} to {daily.index[-1]:%Y-%m-%d}" if len(daily) else "the file"
    cols = " and ".join(gpp_cols)
    if gpp.notna().any():
        qc = daily.loc[gpp.notna(), QC_COLUMN]
        if qc.isna().all():
            why = "missing"
        else:
            why = f"below min_qc = {min_qc:g} (gpp.min_qc)"
            why += " or missing" if qc.isna().any() else ""
        cause = f"{QC_COLUMN} is {why} on all {len(qc)} days with {cols}"
    elif len(gpp_cols) > 1:
        cause = f"{cols} are never both present (partitioning {partitioning!r} averages them)"
    else:
        cause = f"{cols} is missing on all {len(daily)} days"
    raise InputDataError(
        path,
        f"{tower}no day with GPP from {span}: {cause}; the tower would drop out of the GPP "
        "evaluation",
    )


def _is_subdaily(index: pd.DatetimeIndex) -> bool:
    return len(index) > 1 and pd.Series(index).diff().dropna().min() < pd.Timedelta(days=1)


def _check_daily_steps(index: pd.DatetimeIndex, path: str | os.PathLike[str]) -> None:
    steps = pd.Series(index).diff().dropna()
    if len(steps) and steps.max() > pd.Timedelta(days=1):
        kind = "monthly" if steps.min() >= pd.Timedelta(days=28) else "weekly or gapped"
        raise InputDataError(
            path,
            f"not a daily or sub-daily FLUXNET file ({kind} time steps): use the DD or HH file",
        )


def daily_from_subdaily(df: pd.DataFrame, path: str | os.PathLike[str]) -> pd.DataFrame:
    """Half-hourly (HH) or hourly (HR) records -> daily values as in FLUXNET DD files.

    GPP: daily mean x UMOL_CO2_PER_S_TO_GC_PER_DAY; meteorology: daily means; QC: fraction
    of records with QC <= 1. A day is kept only when every record of it is present.
    """
    step = pd.Series(df.index).diff().dropna().mode().iloc[0]
    per_day = int(pd.Timedelta(days=1) / step)
    if per_day not in (24, 48):
        raise InputDataError(path, f"sub-daily step of {step} (expected 30 or 60 minutes)")
    days = df.index.normalize()
    out = pd.DataFrame(index=pd.DatetimeIndex(sorted(days.unique()), name="TIMESTAMP"))
    counts = df.groupby(days).size().reindex(out.index)
    for col in df.columns:
        grouped = df[col].groupby(days)
        if col == QC_COLUMN:
            values = (df[col] <= GOOD_SUBDAILY_QC).where(df[col].notna()).groupby(days).mean()
        else:
            values = grouped.mean().where(grouped.count() == per_day)
            if col.startswith("GPP_"):
                values = values * UMOL_CO2_PER_S_TO_GC_PER_DAY
        out[col] = values.reindex(out.index).where(counts == per_day)
    return out


def read_daily_gpp(
    path: str | os.PathLike[str],
    *,
    partitioning: str = "NT",
    min_qc: float = 0.5,
    met: Sequence[str] = MET_COLUMNS,
    site: str | None = None,
) -> pd.DataFrame:
    """Daily GPP (gC m-2 d-1), its QC fraction and the tower's meteorology from a FLUXNET
    DD or HH/HR file (FLUXNET2015, ONEFlux, ICOS and AmeriFlux FLUXNET products).

    partitioning: ``NT`` (GPP_NT_VUT_REF), ``DT`` (GPP_DT_VUT_REF) or ``mean`` of both.
    GPP is set missing on days whose NEE_VUT_REF_QC (fraction of measured or good
    gap-filled data) is below ``min_qc``. Columns: GPP, NEE_VUT_REF_QC, then ``met``.
    Refuses implausible values (:func:`check_plausible`) and a file without a day of GPP
    (:func:`observed_gpp`; ``site`` names the tower in that error).
    """
    if partitioning not in GPP_PARTITIONING:
        raise ValueError(f"partitioning must be one of {sorted(GPP_PARTITIONING)}")
    gpp_cols = GPP_PARTITIONING[partitioning]
    df = read_fluxnet(path, variables=[*gpp_cols, QC_COLUMN, *met])
    if _is_subdaily(df.index):
        df = daily_from_subdaily(df, path)
    else:
        _check_daily_steps(df.index, path)
    check_plausible(df, path)
    gpp = observed_gpp(df, path, partitioning=partitioning, min_qc=min_qc, site=site)
    out = pd.DataFrame({"GPP": gpp, QC_COLUMN: df[QC_COLUMN]}, index=df.index)
    for col in met:
        out[col] = df[col]
    out.attrs = {"source": str(path), "partitioning": partitioning, "min_qc": min_qc}
    return out


# --- real towers: the user's FLUXNET files into the workflow's raw layout ---------------


def find_site_file(flux_dir: str | os.PathLike[str], site_id: str) -> Path:
    """The one daily (DD) or half-hourly/hourly (HH/HR) FLUXNET CSV of a site in a folder.

    Accepts the names of FLUXNET2015 (``FLX_DE-Tha_FLUXNET2015_FULLSET_DD_...``), ONEFlux
    releases such as ICOS Warm Winter 2020 (``..._DD_1996-2020_beta-3.csv``), ICOS ETC L2
    (``ICOSETC_DE-Tha_FLUXNET_DD_L2.csv``) and AmeriFlux (``AMF_..._FLUXNET_FULLSET_DD_...``).
    Daily files win over sub-daily ones, FULLSET over SUBSET; a tie is an error.
    """
    folder = Path(flux_dir)
    if not folder.is_dir():
        raise InputDataError(flux_dir, f"FLUXNET folder does not exist (site {site_id})")
    pattern = re.compile(rf"(^|_){re.escape(site_id)}_.*FLUXNET.*_(DD|HH|HR)(_|\.)", re.IGNORECASE)
    found = sorted(
        p for p in folder.iterdir() if p.suffix.lower() == ".csv" and pattern.search(p.name)
    )
    if not found:
        raise InputDataError(
            flux_dir,
            f"no FLUXNET DD/HH/HR CSV file of site {site_id} "
            f"(expected e.g. FLX_{site_id}_FLUXNET2015_FULLSET_DD_<Y1>-<Y2>_<V>.csv)",
        )

    def rank(p: Path) -> tuple[int, int]:
        name = p.name.upper()
        return (0 if "_DD" in name else 1, 0 if "FULLSET" in name else 1)

    best = min(rank(p) for p in found)
    chosen = [p for p in found if rank(p) == best]
    if len(chosen) > 1:
        raise InputDataError(
            flux_dir,
            f"several FLUXNET files of site {site_id}: {', '.join(p.name for p in chosen)}; "
            "keep one",
        )
    return chosen[0]


def study_period(
    source: str | os.PathLike[str],
    first_year: int,
    last_year: int,
    *,
    partitioning: str = "NT",
    min_qc: float = 0.5,
    site: str | None = None,
) -> pd.DataFrame:
    """The source's days of ``first_year``..``last_year`` (every column; HH/HR records
    reduced to days as :func:`daily_from_subdaily` does), checked as the GPP evaluation
    will read them: plausible values, and at least one day of GPP of ``partitioning``
    with a QC fraction of ``min_qc`` (else the tower ``site`` would drop out)."""
    if partitioning not in GPP_PARTITIONING:
        raise ValueError(f"partitioning must be one of {sorted(GPP_PARTITIONING)}")
    df = read_fluxnet(source)
    needed = [*GPP_PARTITIONING[partitioning], QC_COLUMN]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise InputDataError(source, f"missing variables: {', '.join(missing)}")
    if _is_subdaily(df.index):
        df = daily_from_subdaily(df, source)
    else:
        _check_daily_steps(df.index, source)
    period = df[(df.index.year >= first_year) & (df.index.year <= last_year)]
    if period.empty:
        raise InputDataError(
            source,
            f"no day in the study years {first_year}-{last_year} "
            f"(the file covers {df.index[0]:%Y-%m-%d} to {df.index[-1]:%Y-%m-%d})",
        )
    check_plausible(period, source)
    observed_gpp(period, source, partitioning=partitioning, min_qc=min_qc, site=site)
    return period


def write_study_period(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    first_year: int,
    last_year: int,
    *,
    partitioning: str = "NT",
    min_qc: float = 0.5,
    site: str | None = None,
) -> int:
    """:func:`study_period` written as a FLUXNET DD file; nothing is written when a check
    fails. Returns the days."""
    period = study_period(
        source, first_year, last_year, partitioning=partitioning, min_qc=min_qc, site=site
    )
    write_fluxnet_dd(period, out)
    return len(period)
