"""FLUXNET2015 files (real ones from shared/realdata), the site table and FLUXNET file names."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecoembed.io.errors import InputDataError
from ecoembed.io.fluxnet import (
    MISSING,
    read_fluxnet,
    read_site_table,
    write_fluxnet_dd,
    write_site_table,
)
from ecoembed.io.names import fluxnet_dd_filename, parse_fluxnet_filename

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "fluxnet2015"
US_AR1_DD = REALDATA / "FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.csv"
FR_PUE_MM = REALDATA / "FLX_FR-Pue_FLUXNET2015_FULLSET_MM_2007-2014_2-3.csv"
SITES = REALDATA / "sites.csv"

needs_realdata = pytest.mark.skipif(
    not US_AR1_DD.is_file(), reason="shared/realdata/fluxnet2015 not next to the clone"
)


# ---------------------------------------------------------------- real files


@needs_realdata
def test_read_real_daily_file_us_ar1():
    df = read_fluxnet(US_AR1_DD)
    assert df.shape == (1461, 74)  # 75 columns minus TIMESTAMP, now the index
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.name == "TIMESTAMP"
    assert df.index[0] == pd.Timestamp("2009-01-01")
    assert df.index[-1] == pd.Timestamp("2012-12-31")
    assert (df.dtypes == np.float64).all()
    # values read by hand from the CSV text, row 20100715
    row = df.loc["2010-07-15"]
    assert row["TA_F"] == 27.203
    assert row["GPP_NT_VUT_REF"] == 8.10124
    assert row["GPP_DT_VUT_REF"] == 7.39967
    assert row["NEE_VUT_REF"] == -4.16146
    assert row["NEE_VUT_REF_QC"] == 0.979167
    assert row["SWC_F_MDS_1"] == 19.847
    assert df.loc["2012-12-31", "GPP_NT_VUT_REF"] == -0.190303
    # SWC_F_MDS_1 is -9999 on 2009-01-01 (and 104 days in all); first value 2009-04-15
    assert np.isnan(df.loc["2009-01-01", "SWC_F_MDS_1"])
    assert int(df["SWC_F_MDS_1"].isna().sum()) == 104
    assert df["SWC_F_MDS_1"].first_valid_index() == pd.Timestamp("2009-04-15")
    assert not (df == MISSING).any().any()


@needs_realdata
def test_read_real_daily_file_selected_variables():
    wanted = ["GPP_NT_VUT_REF", "NEE_VUT_REF_QC", "SW_IN_F", "TA_F", "VPD_F", "P_F"]
    df = read_fluxnet(US_AR1_DD, variables=wanted)
    assert list(df.columns) == wanted and len(df) == 1461
    with pytest.raises(InputDataError, match="missing variables: FOO, BAR") as info:
        read_fluxnet(US_AR1_DD, variables=["GPP_NT_VUT_REF", "FOO", "BAR"])
    assert US_AR1_DD.name in str(info.value)


@needs_realdata
def test_read_real_monthly_file_fr_pue_crlf_no_trailing_newline():
    raw = FR_PUE_MM.read_bytes()
    assert b"\r\n" in raw and not raw.endswith(b"\n")  # the case this test is about
    df = read_fluxnet(FR_PUE_MM)
    assert df.shape == (96, 321)
    assert df.index[0] == pd.Timestamp("2007-01-01")
    assert df.index[-1] == pd.Timestamp("2014-12-01")
    assert "SWC_F_MDS_1" not in df.columns
    # hand-read: 200807 TA_F 22.057, P_F 0.4, NEE_VUT_REF_QC 0.919355, GPP_NT_VUT_REF 5.64777
    jul = df.loc["2008-07-01"]
    assert (jul["TA_F"], jul["P_F"]) == (22.057, 0.4)
    assert jul["NEE_VUT_REF_QC"] == 0.919355
    assert jul["GPP_NT_VUT_REF"] == 5.64777
    assert df.loc["2014-12-01", "GPP_NT_VUT_REF"] == 0.883383
    # the last cell of the file (no newline after it) is -9999
    assert np.isnan(df.iloc[-1, -1])


@needs_realdata
def test_read_real_site_table():
    sites = read_site_table(SITES)
    assert list(sites["SITE_ID"]) == ["US-AR1", "FR-Pue"]
    us = sites.set_index("SITE_ID").loc["US-AR1"]
    assert (us["LOCATION_LAT"], us["LOCATION_LONG"], us["IGBP"]) == (36.4267, -99.42, "GRA")
    assert sites.set_index("SITE_ID").loc["FR-Pue", "MAP"] == 883


@needs_realdata
def test_real_file_names_parse():
    info = parse_fluxnet_filename(US_AR1_DD)
    assert info == {
        "site": "US-AR1",
        "product": "SUBSET",
        "resolution": "DD",
        "first_year": 2009,
        "last_year": 2012,
        "version": "1-3",
    }
    info = parse_fluxnet_filename(FR_PUE_MM.name)
    assert (info["site"], info["product"], info["resolution"]) == ("FR-Pue", "FULLSET", "MM")


# ---------------------------------------------------------------- write / read round trip


def _daily_frame():
    idx = pd.date_range("2020-01-01", periods=5, freq="D")
    return pd.DataFrame(
        {
            "GPP_NT_VUT_REF": [1.23456789, np.nan, 0.0, 12.5, -0.000123456],
            "NEE_VUT_REF_QC": [1.0, 0.958333333, np.nan, 0.5, 0.0],
            "TA_F": [-3.25, 0.1, 25.123456, np.nan, 4.0],
        },
        index=idx,
    )


def test_write_dd_format_and_roundtrip(tmp_path):
    path = tmp_path / fluxnet_dd_filename("XX-Syn", 2020, 2020)
    df = _daily_frame()
    write_fluxnet_dd(df, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "TIMESTAMP,GPP_NT_VUT_REF,NEE_VUT_REF_QC,TA_F"
    assert lines[1] == "20200101,1.23457,1,-3.25"
    assert lines[2] == "20200102,-9999,0.958333,0.1"
    assert lines[3] == "20200103,0,-9999,25.1235"
    assert lines[5] == "20200105,-0.000123456,0,4"
    back = read_fluxnet(path)
    assert back.index.equals(pd.DatetimeIndex(df.index, name="TIMESTAMP"))
    pd.testing.assert_frame_equal(back, df, check_freq=False, check_names=False, rtol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_write_dd_rejects_non_daily_index(tmp_path):
    df = _daily_frame()
    with pytest.raises(ValueError, match="DatetimeIndex"):
        write_fluxnet_dd(df.reset_index(drop=True), tmp_path / "a.csv")
    shifted = df.set_axis(df.index + pd.Timedelta(hours=12))
    with pytest.raises(ValueError, match="midnight"):
        write_fluxnet_dd(shifted, tmp_path / "a.csv")
    with pytest.raises(ValueError, match="increasing"):
        write_fluxnet_dd(df.iloc[::-1], tmp_path / "a.csv")


def test_read_halfhourly_start_end_and_float_missing(tmp_path):
    path = tmp_path / "FLX_XX-Syn_FLUXNET2015_FULLSET_HH_2020-2020_1-4.csv"
    path.write_bytes(
        b"TIMESTAMP_START,TIMESTAMP_END,NEE_VUT_REF,SW_IN_F\r\n"
        b"202001010000,202001010030,-9999.0,0\r\n"
        b"202001010030,202001010100,1.5,-9999\r\n"
        b"202001010100,202001010130,2.25,12.0"
    )
    df = read_fluxnet(path)
    assert list(df.columns) == ["NEE_VUT_REF", "SW_IN_F"]
    assert list(df.index) == list(pd.date_range("2020-01-01", periods=3, freq="30min"))
    assert df.index.name == "TIMESTAMP"
    assert np.isnan(df.iloc[0, 0]) and np.isnan(df.iloc[1, 1])
    assert df.iloc[2].tolist() == [2.25, 12.0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("DATE,GPP\n20200101,1\n", "no TIMESTAMP or TIMESTAMP_START column"),
        ("TIMESTAMP,GPP\n2020-01-01,1\n", "TIMESTAMP is not a FLUXNET timestamp column"),
        ("TIMESTAMP,GPP\n20200101,1\n2020010,1\n", "not a FLUXNET timestamp column"),
        ("TIMESTAMP,GPP\n20200230,1\n", "TIMESTAMP holds an invalid date"),
        ("TIMESTAMP,GPP\n20200102,1\n20200101,2\n", "not strictly increasing"),
        ("TIMESTAMP,GPP\n20200101,1\n20200101,2\n", "not strictly increasing"),
        (
            "TIMESTAMP,GPP\n20200101,1\n20200102,n/a\n",
            r"non-numeric values in columns: GPP \(first 'n/a' in data row 2\)",
        ),
        ("", "not a readable CSV"),
        # a header and nothing else (before: an IndexError naming no file)
        ("TIMESTAMP,GPP_NT_VUT_REF,NEE_VUT_REF_QC\n", "no data rows"),
        ("TIMESTAMP,GPP_NT_VUT_REF,NEE_VUT_REF_QC\r\n\r\n\n", "no data rows"),
        ("TIMESTAMP_START,TIMESTAMP_END,GPP_NT_VUT_REF", "no data rows"),
    ],
)
def test_read_errors_name_file_and_problem(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputDataError, match=problem) as info:
        read_fluxnet(path)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")


HEADER = "TIMESTAMP,GPP_NT_VUT_REF,TA_F\n"
ROWS = "20200101,1.5,2.25\n20200102,1.25,-0.5\n20200103,2,3\n"


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        # the last line cut mid-row: fewer fields than the header (before: "non-numeric")
        ("20200104,1.", r"\(line 5\) has 2 of the header's 3 fields"),
        ("20200104,1.75,3.2\n20200105", r"\(line 6\) has 1 of the header's 3 fields"),
        ("2020010", r"\(line 5\) has 1 of the header's 3 fields"),  # cut inside the date
        ("20200104,1.75\n", r"\(line 5\) has 2 of the header's 3 fields"),  # newline after
        ("20200104,1.75\n\n\n", r"\(line 5\) has 2 of the header's 3 fields"),
        # all fields there, but the file ends inside the last one
        ("20200104,1.75,", r"\(line 5\) ends in '', not a number"),
        ("20200104,1.75,2e", r"\(line 5\) ends in '2e', not a number"),
        ("20200104,1.75,-", r"\(line 5\) ends in '-', not a number"),
    ],
)
def test_truncated_file_is_reported_as_truncated(tmp_path, tail, problem):
    path = tmp_path / "FLX_XX-Cut_FLUXNET2015_FULLSET_DD_2020-2020_1-4.csv"
    path.write_text(HEADER + ROWS + tail, newline="")
    with pytest.raises(InputDataError, match="truncated: the last line " + problem) as info:
        read_fluxnet(path)
    assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(InputDataError, match="truncated"):  # also with a column selection
        read_fluxnet(path, variables=["GPP_NT_VUT_REF"])


def test_truncated_crlf_file_counts_lines(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes((HEADER + ROWS).replace("\n", "\r\n").encode() + b"20200104,1.7")
    with pytest.raises(InputDataError, match=r"\(line 5\) has 2 of the header's 3 fields"):
        read_fluxnet(path)


@pytest.mark.parametrize("end", ["20200104,1.75,-9999", "20200104,1.75,3.5\n", "20200104,1,3"])
def test_complete_last_line_is_not_truncated(tmp_path, end):
    """A last line with every field, with or without a newline after it, reads whole."""
    path = tmp_path / "whole.csv"
    path.write_text(HEADER + ROWS + end, newline="")
    df = read_fluxnet(path)
    assert len(df) == 4 and df.index[-1] == pd.Timestamp("2020-01-04")
    assert df["GPP_NT_VUT_REF"].iloc[-1] == float(end.split(",")[1])


def test_read_missing_file(tmp_path):
    with pytest.raises(InputDataError, match="nope.csv: FLUXNET file does not exist"):
        read_fluxnet(tmp_path / "nope.csv")


# ---------------------------------------------------------------- site table


def test_site_table_roundtrip_and_validation(tmp_path):
    sites = pd.DataFrame(
        {
            "SITE_ID": ["XX-Aaa", "XX-Bbb"],
            "LOCATION_LAT": [46.01234567, -10.5],
            "LOCATION_LONG": [9.0012345678, 120.25],
            "IGBP": ["CRO", "DBF"],
            "PARCEL": [3, 17],
        }
    )
    path = tmp_path / "sites.csv"
    write_site_table(sites, path)
    back = read_site_table(path)
    pd.testing.assert_frame_equal(back, sites, check_dtype=False)
    assert back.loc[0, "LOCATION_LONG"] == 9.0012345678  # full precision kept

    with pytest.raises(InputDataError, match="lacks columns: IGBP"):
        write_site_table(sites.drop(columns="IGBP"), tmp_path / "x.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("SITE_ID,LOCATION_LAT,LOCATION_LONG\nA,1,2\n")
    with pytest.raises(InputDataError, match="bad.csv: site table lacks columns: IGBP"):
        read_site_table(bad)
    bad.write_text("SITE_ID,LOCATION_LAT,LOCATION_LONG,IGBP\nA,91,2,GRA\nB,1,2,GRA\n")
    with pytest.raises(InputDataError, match="LOCATION_LAT invalid for sites: A"):
        read_site_table(bad)
    bad.write_text("SITE_ID,LOCATION_LAT,LOCATION_LONG,IGBP\nA,1,2,GRA\nA,1,2,GRA\n")
    with pytest.raises(InputDataError, match="duplicate SITE_ID: A"):
        read_site_table(bad)
    assert not (tmp_path / "x.csv").exists()


# ---------------------------------------------------------------- file names


def test_fluxnet_dd_filename_roundtrip():
    name = fluxnet_dd_filename("DE-Hai", 2017, 2020)
    assert name == "FLX_DE-Hai_FLUXNET2015_FULLSET_DD_2017-2020_1-4.csv"
    assert parse_fluxnet_filename(name) == {
        "site": "DE-Hai",
        "product": "FULLSET",
        "resolution": "DD",
        "first_year": 2017,
        "last_year": 2020,
        "version": "1-4",
    }
    assert fluxnet_dd_filename("XX-S01", 2019, 2019, version="2-3").endswith("2019-2019_2-3.csv")


def test_fluxnet_filename_errors():
    with pytest.raises(ValueError, match="AMF_US-Ha1_FLUXNET_FULLSET_DD.csv: not a FLUXNET2015"):
        parse_fluxnet_filename("AMF_US-Ha1_FLUXNET_FULLSET_DD.csv")
    with pytest.raises(ValueError, match="not a FLUXNET2015"):
        parse_fluxnet_filename("FLX_US-AR1_FLUXNET2015_SUBSET_XX_2009-2012_1-3.csv")
    with pytest.raises(ValueError, match="site id"):
        fluxnet_dd_filename("USAR1", 2009, 2012)
    with pytest.raises(ValueError, match="after last year"):
        fluxnet_dd_filename("US-AR1", 2012, 2009)


# --- daily GPP for the evaluation ----------------------------------------------------


@needs_realdata
def test_daily_gpp_of_the_real_us_ar1_file():
    """Values read by hand from the CSV (rows 20090101, 20090531, 20100516)."""
    from ecoembed.io.fluxnet import read_daily_gpp

    nt = read_daily_gpp(US_AR1_DD, partitioning="NT", min_qc=0.5)
    assert list(nt.columns) == ["GPP", "NEE_VUT_REF_QC", "SW_IN_F", "TA_F", "VPD_F"]
    assert len(nt) == 1461
    may31 = nt.loc["2009-05-31"]
    assert may31["GPP"] == pytest.approx(8.23474)
    assert may31["NEE_VUT_REF_QC"] == pytest.approx(0.916667)
    assert (may31["SW_IN_F"], may31["TA_F"], may31["VPD_F"]) == pytest.approx(
        (311.459, 25.853, 17.916)
    )
    # 2009-01-01 has QC 0: its GPP (0.0122488) is not kept; 233 days have QC < 0.5
    assert np.isnan(nt.loc["2009-01-01", "GPP"]) and nt["GPP"].notna().sum() == 1461 - 233
    dt = read_daily_gpp(US_AR1_DD, partitioning="DT", min_qc=0.0)
    assert dt.loc["2010-05-16", "GPP"] == pytest.approx(1.01119)
    both = read_daily_gpp(US_AR1_DD, partitioning="mean", min_qc=0.0)
    assert both.loc["2009-05-31", "GPP"] == pytest.approx((8.23474 + 5.64524) / 2)


@needs_realdata
def test_daily_gpp_refuses_the_real_monthly_file():
    from ecoembed.io.fluxnet import read_daily_gpp

    with pytest.raises(InputDataError, match="monthly") as err:
        read_daily_gpp(FR_PUE_MM)
    assert "FR-Pue" in str(err.value)


def test_daily_gpp_from_halfhourly_records(tmp_path):
    """HH -> daily: GPP mean in umol m-2 s-1 times 1.0377, QC = share of QC <= 1,
    incomplete days dropped."""
    from ecoembed.io.fluxnet import UMOL_CO2_PER_S_TO_GC_PER_DAY, read_daily_gpp

    start = pd.date_range("2020-06-01", periods=48 * 2 + 10, freq="30min")
    gpp = np.where(np.arange(start.size) % 48 < 24, 4.0, 8.0)  # mean 6 on full days
    qc = np.zeros(start.size, int)
    qc[:12] = 2  # a quarter of day 1 medium-quality gap-filled
    df = pd.DataFrame(
        {
            "TIMESTAMP_START": start.strftime("%Y%m%d%H%M"),
            "TIMESTAMP_END": (start + pd.Timedelta("30min")).strftime("%Y%m%d%H%M"),
            "GPP_NT_VUT_REF": gpp,
            "NEE_VUT_REF_QC": qc,
            "SW_IN_F": 100.0,
            "TA_F": np.arange(start.size) / 10,
            "VPD_F": -9999,
        }
    )
    path = tmp_path / "FLX_XX-Hh1_FLUXNET2015_FULLSET_HH_2020-2020_1-4.csv"
    df.to_csv(path, index=False)
    daily = read_daily_gpp(path, min_qc=0.8)
    assert list(daily.index.strftime("%Y-%m-%d")) == ["2020-06-01", "2020-06-02", "2020-06-03"]
    assert daily["NEE_VUT_REF_QC"].iloc[0] == pytest.approx(0.75)
    assert np.isnan(daily["GPP"].iloc[0])  # QC 0.75 < 0.8
    assert daily["GPP"].iloc[1] == pytest.approx(6.0 * UMOL_CO2_PER_S_TO_GC_PER_DAY)
    assert daily["TA_F"].iloc[1] == pytest.approx(np.arange(48, 96).mean() / 10)
    assert daily["VPD_F"].isna().all()  # -9999 throughout
    assert daily.iloc[2].isna().all()  # 10 of 48 records: incomplete day


# --- implausible values and towers without GPP --------------------------------------------


def _tower_frame(first: str = "2019-01-01", last: str = "2021-12-31") -> pd.DataFrame:
    """A plausible daily FLUXNET table (every column the workflow reads)."""
    days = pd.date_range(first, last, freq="D")
    season = np.sin(2 * np.pi * (days.day_of_year.to_numpy() - 110) / 365)
    return pd.DataFrame(
        {
            "GPP_NT_VUT_REF": 5 + 4 * season,
            "GPP_DT_VUT_REF": 5.5 + 4 * season,
            "NEE_VUT_REF_QC": np.full(len(days), 0.9),
            "SW_IN_F": 180 + 120 * season,
            "TA_F": 9 + 10 * season,
            "VPD_F": 6 + 5 * season,
        },
        index=pd.DatetimeIndex(days, name="TIMESTAMP"),
    )


TOWER_FILE = "FLX_XX-Twr_FLUXNET2015_FULLSET_DD_2019-2021_1-4.csv"


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("GPP_NT_VUT_REF", 1e30, "1e+30"),
        ("GPP_NT_VUT_REF", -9998.0, "-9998"),  # not the missing code, nonsense
        ("GPP_NT_VUT_REF", -10.5, "-10.5"),
        ("GPP_DT_VUT_REF", 50.5, "50.5"),
        ("NEE_VUT_REF_QC", 1.5, "1.5"),
        ("SW_IN_F", 700.0, "700"),
        ("TA_F", -100.0, "-100"),
        ("VPD_F", 250.0, "250"),
        ("VPD_F", -6.0, "-6"),
    ],
)
def test_implausible_daily_values_are_refused(tmp_path, column, value, shown):
    from ecoembed.io.fluxnet import read_daily_gpp, study_period, write_study_period

    df = _tower_frame()
    df.loc["2020-03-04", column] = value
    df.loc["2020-05-06", column] = value  # the error names the first of the two
    path = tmp_path / TOWER_FILE
    write_fluxnet_dd(df, path)
    problem = rf"implausible daily {column} on 2020-03-04: {re.escape(shown)} \(outside .* on 2 day"
    partitioning = "DT" if column == "GPP_DT_VUT_REF" else "NT"
    with pytest.raises(InputDataError, match=problem) as info:
        read_daily_gpp(path, partitioning=partitioning)
    assert info.value.path == path
    with pytest.raises(InputDataError, match=problem):
        study_period(path, 2020, 2020, partitioning=partitioning)
    out = tmp_path / "out.csv"
    with pytest.raises(InputDataError, match=problem):
        write_study_period(path, out, 2020, 2020, partitioning=partitioning)
    assert not out.exists()
    # outside the study years the value is cut away with the rest of that year
    df.loc["2020"] = _tower_frame("2020-01-01", "2020-12-31").to_numpy()
    df.loc["2019-07-01", column] = value
    other = tmp_path / "FLX_XX-Oth_FLUXNET2015_FULLSET_DD_2019-2021_1-4.csv"
    write_fluxnet_dd(df, other)
    assert len(study_period(other, 2020, 2021, partitioning=partitioning)) == 366 + 365


def test_bounds_of_the_plausible_ranges_are_accepted(tmp_path):
    from ecoembed.io.fluxnet import PLAUSIBLE_DAILY, read_daily_gpp

    df = _tower_frame()
    for k, (column, (low, high, _unit)) in enumerate(PLAUSIBLE_DAILY.items()):
        df.iloc[2 * k, df.columns.get_loc(column)] = low
        df.iloc[2 * k + 1, df.columns.get_loc(column)] = high
    path = tmp_path / TOWER_FILE
    write_fluxnet_dd(df, path)
    daily = read_daily_gpp(path, min_qc=0.0)
    assert daily["GPP"].iloc[0] == -10.0 and daily["GPP"].iloc[1] == 50.0


def test_implausible_halfhourly_value_is_refused_on_its_day(tmp_path):
    from ecoembed.io.fluxnet import read_daily_gpp

    start = pd.date_range("2020-06-01", periods=48 * 3, freq="30min")
    gpp = np.full(start.size, 5.0)
    gpp[48 + 20] = 1e30
    df = pd.DataFrame(
        {
            "TIMESTAMP_START": start.strftime("%Y%m%d%H%M"),
            "TIMESTAMP_END": (start + pd.Timedelta("30min")).strftime("%Y%m%d%H%M"),
            "GPP_NT_VUT_REF": gpp,
            "NEE_VUT_REF_QC": 0,
            "SW_IN_F": 100.0,
            "TA_F": 15.0,
            "VPD_F": 8.0,
        }
    )
    path = tmp_path / "FLX_XX-Hh1_FLUXNET2015_FULLSET_HH_2020-2020_1-4.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputDataError, match="implausible daily GPP_NT_VUT_REF on 2020-06-02"):
        read_daily_gpp(path)


@needs_realdata
def test_real_us_ar1_file_is_within_the_plausible_ranges():
    """The bounds refuse nothing of a real tower: its extremes lie well inside them."""
    from ecoembed.io.fluxnet import PLAUSIBLE_DAILY, study_period

    period = study_period(US_AR1_DD, 2009, 2012, partitioning="mean", min_qc=0.0)
    assert len(period) == 1461
    for column, (low, high, _unit) in PLAUSIBLE_DAILY.items():
        assert low <= period[column].min() <= period[column].max() <= high, column
    assert period["GPP_NT_VUT_REF"].min() == -2.42949  # 2009-08-18, hand-read


@pytest.mark.parametrize(
    ("partitioning", "blank", "cause"),
    [
        ("NT", ["GPP_NT_VUT_REF"], "GPP_NT_VUT_REF is missing on all 366 days"),
        ("DT", ["GPP_DT_VUT_REF"], "GPP_DT_VUT_REF is missing on all 366 days"),
        ("mean", ["GPP_DT_VUT_REF"], "GPP_NT_VUT_REF and GPP_DT_VUT_REF are never both present"),
        ("NT", ["NEE_VUT_REF_QC"], "NEE_VUT_REF_QC is missing on all 366 days with GPP_NT"),
    ],
)
def test_tower_without_gpp_in_the_study_period_is_an_error(tmp_path, partitioning, blank, cause):
    """All missing in the study years (2020), present in the others: refused when the file
    is cut to the study years, and when the evaluation reads it."""
    from ecoembed.io.fluxnet import read_daily_gpp, write_study_period

    df = _tower_frame()
    df.loc["2020", blank] = np.nan
    source = tmp_path / TOWER_FILE
    write_fluxnet_dd(df, source)
    assert len(read_daily_gpp(source, partitioning=partitioning)) == 1096  # other years
    out = tmp_path / "FLX_XX-Twr_FLUXNET2015_FULLSET_DD_2020-2020_1-4.csv"
    problem = rf"tower XX-Twr: no day with GPP from 2020-01-01 to 2020-12-31: {cause}"
    with pytest.raises(InputDataError, match=problem) as info:
        write_study_period(source, out, 2020, 2020, partitioning=partitioning, site="XX-Twr")
    assert info.value.path == source and "drop out of the GPP evaluation" in str(info.value)
    assert not out.exists()
    # the file of the study year alone, as rule gpp_inputs reads it
    write_fluxnet_dd(df.loc["2020"], out)
    with pytest.raises(InputDataError, match=problem) as info:
        read_daily_gpp(out, partitioning=partitioning, site="XX-Twr")
    assert info.value.path == out
    # with the partitioning that has its columns, the same file is fine
    if blank != ["NEE_VUT_REF_QC"]:
        other = "DT" if blank == ["GPP_NT_VUT_REF"] else "NT"
        assert read_daily_gpp(out, partitioning=other)["GPP"].notna().sum() == 366


def test_qc_variant_names_the_days_that_had_gpp(tmp_path):
    from ecoembed.io.fluxnet import read_daily_gpp

    df = _tower_frame("2020-01-01", "2020-01-10")
    df["NEE_VUT_REF_QC"] = 0.3
    df.iloc[:4, 0] = np.nan  # GPP on 6 of the 10 days
    path = tmp_path / TOWER_FILE
    write_fluxnet_dd(df, path)
    with pytest.raises(
        InputDataError, match=r"QC is below min_qc = 0.5 \(gpp.min_qc\) on all 6 days"
    ):
        read_daily_gpp(path)
    assert read_daily_gpp(path, min_qc=0.3)["GPP"].notna().sum() == 6
    df.iloc[5, 2] = np.nan  # one of them without QC
    path = tmp_path / "FLX_XX-Qc2_FLUXNET2015_FULLSET_DD_2020-2020_1-4.csv"
    write_fluxnet_dd(df, path)
    with pytest.raises(InputDataError, match=r"\(gpp.min_qc\) or missing on all 6 days"):
        read_daily_gpp(path)


# --- the rules that collect the flux files ---------------------------------------------


def _workflow_script(name: str):
    import importlib.util
    import sys

    scripts = Path(__file__).resolve().parents[1] / "workflow_scripts"
    if str(scripts) not in sys.path:
        sys.path.insert(0, str(scripts))
    spec = importlib.util.spec_from_file_location(name, scripts / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _site_table(path: Path, ids: list[str]) -> Path:
    rows = [{"SITE_ID": i, "LOCATION_LAT": 50.0, "LOCATION_LONG": 10.0, "IGBP": "GRA"} for i in ids]
    write_site_table(pd.DataFrame(rows), path)
    return path


def test_collect_flux_refuses_a_tower_without_gpp_and_copies_nothing(tmp_path):
    collect_flux = _workflow_script("collect_flux")
    parts = tmp_path / "parts"
    parts.mkdir()
    ids = ["XX-G01", "XX-G02"]
    sources = [parts / fluxnet_dd_filename(i, 2020, 2020) for i in ids]
    good = _tower_frame("2020-01-01", "2020-12-31")
    write_fluxnet_dd(good, sources[0])
    write_fluxnet_dd(good.assign(GPP_NT_VUT_REF=np.nan), sources[1])
    tables = [_site_table(parts / "sites_tile00.csv", ids)]
    out = tmp_path / "flux"
    outputs = [out / p.name for p in sources]
    with pytest.raises(InputDataError, match="tower XX-G02: no day with GPP") as info:
        collect_flux.main(sources, outputs, tables, out / "sites.csv", "NT", 0.5)
    assert info.value.path == sources[1]
    assert not out.exists()  # not even the good tower's copy
    # DT is there: the same files collect, byte for byte
    collect_flux.main(sources, outputs, tables, out / "sites.csv", "DT", 0.5)
    assert [p.read_bytes() for p in outputs] == [p.read_bytes() for p in sources]


def test_collect_real_flux_refuses_a_tower_without_gpp_and_writes_nothing(tmp_path):
    collect_real_flux = _workflow_script("collect_real_flux")
    flux_dir = tmp_path / "fluxdata"
    flux_dir.mkdir()
    df = _tower_frame()
    write_fluxnet_dd(df, flux_dir / "FLX_DE-Aaa_FLUXNET2015_FULLSET_DD_2019-2021_beta-3.csv")
    df.loc["2021", "GPP_NT_VUT_REF"] = np.nan  # missing in the study year only
    bad = flux_dir / "ICOSETC_DE-Bbb_FLUXNET_DD_L2.csv"
    write_fluxnet_dd(df, bad)
    sites = [{"id": i, "lat": 50.0, "lon": 10.0, "igbp": "GRA"} for i in ("DE-Aaa", "DE-Bbb")]
    out = tmp_path / "flux"
    outputs = [out / fluxnet_dd_filename(s["id"], 2021, 2021) for s in sites]
    args = (flux_dir, sites, 2021, 2021, outputs, out / "sites.csv")
    with pytest.raises(InputDataError, match="tower DE-Bbb: no day with GPP from 2021-01-01") as e:
        collect_real_flux.main(*args, "NT", 0.5)
    assert e.value.path == bad
    assert not out.exists()
    collect_real_flux.main(*args, "DT", 0.5)
    assert [len(read_fluxnet(p)) for p in outputs] == [365, 365]
    assert read_site_table(out / "sites.csv")["SITE_ID"].tolist() == ["DE-Aaa", "DE-Bbb"]
