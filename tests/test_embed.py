"""Export: dense embeddings equal the per-pixel model, streaming is exact, products are
well-formed, and tower series and the reconstruction evaluation compute what they say."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from ecoembed.embed import dense
from ecoembed.embed.baselines import linear_fill
from ecoembed.embed.export import export_tile, read_window
from ecoembed.embed.model import load_embedding_model
from ecoembed.io.errors import InputDataError
from ecoembed.io.sentinel import S2_BAND_NAMES
from ecoembed.io.timeaxis import day_numbers
from ecoembed.io.zarrio import open_zarr
from ecoembed.models import dense as window
from ecoembed.models.checkpoint import untrained_checkpoint
from ecoembed.train.sampling import Centres, extract_neighbourhoods
from ecoembed.train.series import SensorSeries
from tests.conftest import cut_cube

SIZE, FRAMES, LATENT = 7, 5, 4
ENCODER_SHA256 = {"s2": "0" * 64, "s1": "1" * 64}


# Per-pixel references: one neighbourhood per code and brute-force searches, written
# independently of the dense gathers that export and the fusion training share.
@torch.no_grad()
def encode_at(enc, s, t, r, c):
    x, dt = extract_neighbourhoods(
        s.values, s.day_of, Centres(t, r, c), size=enc.size, frames=enc.frames
    )
    return enc(torch.from_numpy(x), torch.from_numpy(dt)).numpy()


def _nearest_clear(valid_px, t, k, lo, hi):
    """Up to k // 2 clear dates before and after t (within lo..hi), nearest first."""
    before = [u for u in range(t - 1, lo - 1, -1) if valid_px[u]][: k // 2]
    after = [u for u in range(t + 1, hi + 1) if valid_px[u]][: k - k // 2]
    return before + after


def nearest_views(valid, t):
    """(T, 1) clear views of one pixel, dates (1,) -> nearest clear index before, after."""
    col = valid[:, 0]
    before = [u for u in range(t[0] - 1, -1, -1) if col[u]]
    after = [u for u in range(t[0] + 1, col.size) if col[u]]
    return np.array([before[0] if before else -1]), np.array([after[0] if after else -1])


def view_values(s, idx, t, r, c):
    if idx[0] < 0:
        return np.full((1, s.values.shape[1]), np.nan, np.float32), np.zeros(1, np.float32)
    value = s.values[idx[0], :, r[0], c[0]][None].astype(np.float32)
    return value, np.array([s.day_of[idx[0]] - s.day_of[t[0]]], np.float32)


def random_checkpoint(path):
    """A fusion checkpoint in the trained format, with random weights (small model)."""
    ckpt = untrained_checkpoint(size=SIZE, frames=FRAMES, latent_dim=LATENT, embedding_dim=5)
    ckpt["encoder_sha256"] = ENCODER_SHA256  # as if trained from encoder files
    # an untrained anchored head adds nothing (its last layer starts at zero): give it a
    # correction, so that the tests see it
    last = ckpt["fusion"]["anchored.net.4.weight"]
    gen = torch.Generator().manual_seed(0)
    ckpt["fusion"]["anchored.net.4.weight"] = 0.3 * torch.randn(last.shape, generator=gen)
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "fusion.pt")


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_embedding_model(checkpoint)


def random_series(rng, t2=14, t1=11, h=12, w=10, halo=SIZE // 2, cloud=0.4, s1_start=7998.7):
    hh, ww = h + 2 * halo, w + 2 * halo
    s2 = rng.normal(size=(t2, len(S2_BAND_NAMES), hh, ww)).astype(np.float32)
    s2[rng.random((t2, hh, ww))[:, None].repeat(s2.shape[1], 1) < cloud] = np.nan
    s2 = np.where(np.isfinite(s2).all(axis=1, keepdims=True), s2, np.nan)
    s1 = rng.normal(size=(t1, 2, hh, ww)).astype(np.float32)
    s2_days = np.cumsum(rng.integers(3, 8, t2)).astype(float) + 8000.4
    s1_days = np.cumsum(rng.integers(4, 10, t1)).astype(float) + s1_start
    return dense.WindowSeries(s2, s2_days, s1, s1_days)


def test_context_indices_match_a_brute_force_search():
    rng = np.random.default_rng(1)
    clear = rng.random((20, 30)) < 0.4
    days = np.arange(20) * 5.0
    targets = dense.daily_targets(days, 0, 99)
    n_before = np.where(
        targets.s2_index >= 0, targets.s2_index, np.searchsorted(days, targets.days, "left")
    )
    first_after = np.where(
        targets.s2_index >= 0, targets.s2_index + 1, np.searchsorted(days, targets.days, "right")
    )
    idx, ok = window.context_indices(window.ClearRanks.of(clear), n_before, first_after, 4)
    for d in range(0, 100, 7):
        for p in range(30):
            before = [t for t in range(20) if clear[t, p] and days[t] < targets.days[d]]
            if targets.s2_index[d] >= 0:
                before = [t for t in before if t < targets.s2_index[d]]
            after = [
                t
                for t in range(20)
                if clear[t, p] and days[t] > targets.days[d] and t != targets.s2_index[d]
            ]
            want = before[::-1][:2] + after[:2]
            assert idx[d, p][ok[d, p]].tolist() == want


def test_daily_targets_take_the_acquisition_time_on_s2_days():
    days = np.array([8000.44, 8005.43, 8005.9, 8010.44])
    t = dense.daily_targets(days, 7999, 8011)
    assert t.days.size == 13
    assert t.s2_index[1] == 0 and t.days[1] == 8000.44
    assert t.s2_index[6] == 1  # the first of two acquisitions on one day
    assert t.days[0] == 7999.5 and t.s2_index[0] == -1


def test_dense_codes_equal_per_pixel_neighbourhoods(model):
    rng = np.random.default_rng(2)
    series = random_series(rng)
    enc = model.encoders["s2"]
    w = series.s2.shape[3] - 2 * model.halo
    pixels = np.arange((series.s2.shape[2] - 2 * model.halo) * w)
    feats = window.stem_features(enc, series.s2, pixels)
    days = torch.from_numpy(window.padded_days(series.s2_days, FRAMES // 2)).float()
    # interior dates (full temporal context), arbitrary pixels
    t = np.array([2, 5, 8, 11, 6])
    p = np.array([0, 17, 63, pixels.size - 1, 40])
    got = window.codes_at(enc, feats, days, t, p).numpy()
    ref = encode_at(
        enc,
        SensorSeries(series.s2, series.s2_days.astype(np.float32), None),
        t,
        p // w + model.halo,
        p % w + model.halo,
    )
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_fused_embedding_equals_the_training_inputs_per_pixel(model):
    """Vectorised gathers (day code, nearest clear context, the ``other_tokens`` nearest S1
    acquisitions) against a per-pixel construction with the training code's own helpers
    and a brute-force choice of the S1 acquisitions (a longer S1 series, so that several
    tokens have their full temporal context)."""
    rng = np.random.default_rng(3)
    series = random_series(rng, t1=20, s1_start=7975.2)
    k1 = model.other_tokens
    assert k1 > 1  # the default: several S1 tokens
    targets = dense.s2_date_targets(series.s2_days)
    prod = dense.embed_window(model, series, targets)
    halo, w = model.halo, series.s2.shape[3] - 2 * model.halo
    ser2 = SensorSeries(series.s2, series.s2_days.astype(np.float32), None)
    ser1 = SensorSeries(series.s1, series.s1_days.astype(np.float32), None)
    enc2, enc1 = model.encoders["s2"], model.encoders["s1"]
    t2 = series.s2.shape[0]
    checked = 0
    for t in (3, 6, 9):
        for p in (5, 30, 77):
            r, c = p // w + halo, p % w + halo
            clear = np.isfinite(series.s2[:, :, r, c]).all(axis=1)
            near = _nearest_clear(clear, t, 4, 0, t2 - 1)
            frames_ok = all(FRAMES // 2 <= u < t2 - FRAMES // 2 for u in [t, *near])
            gap1 = np.abs(series.s1_days - series.s2_days[t])
            s1_ts = [int(i) for i in np.argsort(gap1, kind="stable")[:k1]]  # nearest first
            if not frames_ok or not all(
                FRAMES // 2 <= i < series.s1.shape[0] - FRAMES // 2 for i in s1_ts
            ):
                continue  # the reference helpers need full temporal context

            def code(enc, s, ts, r=r, c=c):
                ts = np.array(ts)
                return torch.from_numpy(
                    encode_at(enc, s, ts, np.full(ts.size, r), np.full(ts.size, c))
                )

            ctx = code(enc2, ser2, near or [t])
            k = len(near)
            ctx_codes = torch.zeros(1, 4, LATENT)
            ctx_codes[0, :k] = ctx[:k]
            ctx_dt = torch.zeros(1, 4)
            ctx_dt[0, :k] = torch.tensor(series.s2_days[near] - series.s2_days[t]).float()
            present = torch.zeros(1, 4, dtype=torch.bool)
            present[0, :k] = True
            with torch.no_grad():
                emb, dec = model.fusion(
                    code(enc2, ser2, [t]) if clear[t] else torch.zeros(1, LATENT),
                    torch.tensor([bool(clear[t])]),
                    ctx_codes,
                    ctx_dt,
                    present,
                    {
                        "s1": (
                            code(enc1, ser1, s1_ts)[None],
                            torch.tensor(series.s1_days[s1_ts] - series.s2_days[t])[None].float(),
                            torch.ones(1, k1, dtype=torch.bool),
                        )
                    },
                )
            np.testing.assert_allclose(prod.embedding[t, :, p], emb[0].numpy(), atol=1e-5)
            # the anchored reconstruction's views, with the training code's helpers
            ta, ra, ca = np.array([t]), np.array([r]), np.array([c])
            if clear[t]:
                own = torch.from_numpy(series.s2[t, :, r, c][None])
                views = (own, own, torch.zeros(1), torch.zeros(1))
            else:
                before, after = nearest_views(clear[:, None], ta)
                (bv, bdt), (av, adt) = (view_values(ser2, i, ta, ra, ca) for i in (before, after))
                views = tuple(torch.from_numpy(v) for v in (bv, av, bdt, adt))
            with torch.no_grad():
                rec = model.fusion.reconstruct(emb, dec["s2"], *views)
            want_s2 = model.denormalise("s2", rec.numpy(), axis=1)[0]
            np.testing.assert_allclose(prod.s2[t, :, p], want_s2, atol=1e-5)
            assert prod.observed[t, p] == clear[t]
            checked += 1
    assert checked >= 4


def test_untrained_anchored_reconstruction_is_linear_gap_filling(tmp_path):
    """With its correction at zero (as it starts) the reconstruction is the linear
    baseline of the same clear views: the observation on clear days, the interpolation
    between the nearest clear days elsewhere, held beyond the first and last (on S2 dates
    and on days between them alike)."""
    path = tmp_path / "untrained.pt"
    torch.save(
        untrained_checkpoint(size=SIZE, frames=FRAMES, latent_dim=LATENT, embedding_dim=5), path
    )
    model = load_embedding_model(path)
    series = random_series(np.random.default_rng(7))
    first, last = int(series.s2_days[0]) - 3, int(series.s2_days[-1]) + 3
    targets = dense.concat_targets(
        dense.s2_date_targets(series.s2_days), dense.daily_targets(series.s2_days, first, last)
    )
    prod = dense.embed_window(model, series, targets)
    core = window.core_values(series.s2, model.halo)
    want = linear_fill(model.denormalise("s2", core, axis=1), series.s2_days, targets.days)
    ok = np.isfinite(want).all(axis=1)
    assert ok.mean() > 0.9 and (~prod.observed & ok).sum() > 200
    np.testing.assert_allclose(
        np.moveaxis(prod.s2, 1, 2)[ok], np.moveaxis(want, 1, 2)[ok], atol=2e-5
    )


def test_daily_product_equals_the_s2_date_product_on_s2_days(model):
    series = random_series(np.random.default_rng(4))
    s2t = dense.s2_date_targets(series.s2_days)
    first, last = int(series.s2_days[0]) - 2, int(series.s2_days[-1]) + 2
    daily = dense.daily_targets(series.s2_days, first, last)
    both = dense.embed_window(model, series, dense.concat_targets(s2t, daily))
    n = len(s2t)
    on_s2 = daily.s2_index >= 0
    # equal up to float rounding: the two sit in different batches, and with several
    # threads the kernels may sum in another order
    np.testing.assert_allclose(
        both.embedding[n:][on_s2], both.embedding[:n][daily.s2_index[on_s2]], rtol=0, atol=1e-6
    )
    alone = dense.embed_window(model, series, daily)
    np.testing.assert_allclose(alone.embedding, both.embedding[n:], atol=1e-5)
    # a day without S2 is never "observed"
    assert not both.observed[n:][~on_s2].any()


def test_bf16_export_stays_within_the_stated_tolerance_of_fp32(model):
    """Mixed precision (for GPUs): the embedding within 1 % of its spread (RMS; 5 % at
    worst), the reconstructed reflectance within 1e-3, a fifth of the observation's own
    error. Measured on this random model: 0.4 % and 1.4 %, 3e-4; on the tiny run's
    trained model 0.26 % and 2.2 %, 1.6e-4."""
    series = random_series(np.random.default_rng(4))
    targets = dense.s2_date_targets(series.s2_days)
    fp32 = dense.embed_window(model, series, targets)
    bf16 = dense.embed_window(model, series, targets, precision="bf16")
    assert bf16.embedding.dtype == np.float32 and bf16.s2.dtype == np.float32
    diff = bf16.embedding - fp32.embedding
    spread = fp32.embedding.std()
    assert np.sqrt((diff**2).mean()) < 0.01 * spread
    assert np.abs(diff).max() < 0.05 * spread
    assert np.abs(diff).max() > 0  # it did run in bf16
    assert np.abs(bf16.s2 - fp32.s2).max() < 1e-3
    with pytest.raises(ValueError, match="precision must be one of"):
        dense.embed_window(model, series, targets, precision="fp16")


def test_export_streams_exactly_and_records_its_provenance(products_cube, checkpoint, tmp_path):
    """The command line with 64 px windows (and batches of 100 pixel-dates) and the library
    with one window of the whole tile write the same embeddings: halos carry the exact
    context across window edges."""
    _, shared = products_cube
    cube_path = cut_cube(shared, tmp_path / "cube.zarr", dates=12)  # the whole grid
    out64, out128 = tmp_path / "e64.zarr", tmp_path / "e128.zarr"
    rec = tmp_path / "rec.zarr"
    run = subprocess.run(
        [sys.executable, "-m", "ecoembed", "embed", "--checkpoint", str(checkpoint)]
        + ["--cube", str(cube_path), "--out", str(out64), "--window-px", "64", "--batch", "100"]
        + ["--device", "cpu", "--threads", "2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    export_tile(
        cube_path,
        checkpoint,
        embeddings_path=out128,
        reconstruction_path=rec,
        window_px=128,
        provenance={"config_hash": "abc"},
        progress=False,
    )
    a, b = open_zarr(out64), open_zarr(out128)
    cube = open_zarr(cube_path)
    assert (
        a["embedding"].shape == (12, 5, cube.sizes["y"], cube.sizes["x"]) and cube.sizes["y"] > 64
    )
    np.testing.assert_allclose(a["embedding"].values, b["embedding"].values, atol=2e-5)
    assert np.isfinite(a["embedding"].values).all()
    # one shard per streaming window and variable, whole time axis, small chunks inside
    assert a["embedding"].encoding["shards"] == (16, 5, 64, 64)
    assert a["embedding"].encoding["chunks"] == (8, 5, 64, 64)
    assert b["embedding"].encoding["shards"] == (16, 5, 128, 128)
    assert len([f for f in (out64 / "embedding").rglob("*") if f.is_file()]) == 4 + 1
    assert len([f for f in (out128 / "embedding").rglob("*") if f.is_file()]) == 1 + 1
    np.testing.assert_array_equal(a["observed"].values, cube["s2_valid"].values)
    assert b.rio.crs == cube.rio.crs and b.rio.transform() == cube.rio.transform()
    model_info = json.loads(b.attrs["model"])
    assert len(model_info["fusion_sha256"]) == 64
    assert model_info["encoder_sha256"] == ENCODER_SHA256
    assert b.attrs["config_hash"] == "abc"
    r = open_zarr(rec)
    assert r["s2"].dims == ("time", "band", "y", "x") and np.isfinite(r["s2"].values).all()
    assert [str(v) for v in r["band"].values] == list(S2_BAND_NAMES)


def test_daily_period_limits_the_daily_product_to_its_days(
    products_cube, checkpoint, tmp_path, capsys
):
    _, shared = products_cube
    cube_path = cut_cube(shared, tmp_path / "cube.zarr", px=24, dates=6)
    cube = open_zarr(cube_path)
    first = pd.Timestamp(min(cube["time"].values[0], cube["time_s1"].values[0])).normalize()
    out = tmp_path / "daily.zarr"
    # a period starting before the cube is cut to the cube's first day
    start = f"{first - pd.Timedelta(days=30):%Y-%m-%d}"
    end = f"{first + pd.Timedelta(days=9):%Y-%m-%d}"
    export_tile(
        cube_path, checkpoint, daily_path=out, daily_start=start, daily_end=end, progress=False
    )
    days = pd.DatetimeIndex(open_zarr(out)["day"].values)
    assert list(days) == list(pd.date_range(first, periods=10, freq="D"))
    with pytest.raises(InputDataError, match=r"cube\.zarr: the daily period 1990-01-01"):
        export_tile(
            cube_path,
            checkpoint,
            daily_path=tmp_path / "none.zarr",
            daily_start="1990-01-01",
            daily_end="1990-12-31",
            progress=False,
        )
    assert not (tmp_path / "none.zarr").exists()
    # the command line: the same days, and a date that is none refused by name
    from ecoembed.__main__ import main

    cli = tmp_path / "cli.zarr"
    args = ["embed", "--checkpoint", str(checkpoint), "--cube", str(cube_path)]
    args += ["--out", str(tmp_path / "e.zarr"), "--daily", str(cli), "--device", "cpu"]
    assert main([*args, "--daily-start", start, "--daily-end", end]) == 0
    assert list(pd.DatetimeIndex(open_zarr(cli)["day"].values)) == list(days)
    with pytest.raises(SystemExit):
        main([*args, "--daily-end", "2022-02-30"])
    assert "'2022-02-30' is not a date" in capsys.readouterr().err


def test_export_refuses_a_cube_of_other_bands(products_cube, checkpoint, tmp_path):
    _, cube_path = products_cube
    cube = open_zarr(cube_path)
    bad = cube.assign_coords(pol=np.array(["HH", "HV"], dtype=object))
    bad_path = tmp_path / "bad.zarr"
    bad.to_zarr(bad_path, zarr_format=3, consolidated=True)
    out = tmp_path / "out.zarr"
    with pytest.raises(InputDataError, match="s1 bands"):
        export_tile(bad_path, checkpoint, embeddings_path=out, progress=False)
    assert not out.exists() and not list(tmp_path.glob(".out.zarr*"))


def test_checkpoint_without_encoders_is_refused(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"config": {}, "fusion": {}}, path)
    with pytest.raises(InputDataError, match="self-contained"):
        load_embedding_model(path)
    with pytest.raises(InputDataError, match="does not exist"):
        load_embedding_model(tmp_path / "missing.pt")


def test_cli_embed_names_a_missing_checkpoint(products_cube, tmp_path):
    _, cube_path = products_cube
    bad = subprocess.run(
        [sys.executable, "-m", "ecoembed", "embed", "--checkpoint", str(tmp_path / "no.pt")]
        + ["--cube", str(cube_path), "--out", str(tmp_path / "x.zarr")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 1 and "no.pt" in bad.stderr
    assert not (tmp_path / "x.zarr").exists()


def test_read_window_pads_beyond_the_tile_with_missing_values(products_cube, model):
    _, cube_path = products_cube
    cube = open_zarr(cube_path)
    ws = read_window(cube, model, slice(0, 8), slice(0, 8))
    assert ws.s2.shape[2:] == (8 + 2 * model.halo,) * 2
    assert np.isnan(ws.s2[:, :, : model.halo]).all() and np.isnan(ws.s1[:, :, :, 0]).all()
    inner = ws.s1[:, :, model.halo :, model.halo :]
    want = model.normalise("s1", cube["s1"].values[:, :, : 8 + model.halo, : 8 + model.halo])
    np.testing.assert_allclose(inner, want)


# --- tower series --------------------------------------------------------------------


def test_footprint_weights_are_a_centred_gaussian():
    from ecoembed.embed.sites import footprint

    dr, dc, w = footprint(300.0, 10.0, 3)
    assert w.sum() == pytest.approx(1.0)
    assert ((dr == 0) & (dc == 0)).sum() == 1  # the tower pixel is sampled
    assert np.hypot(dr, dc).max() * 10 <= 300
    centre = w[(dr == 0) & (dc == 0)][0]
    assert centre == w.max()
    # symmetric, and exp(-d^2 / 2 sigma^2) with sigma 100 m
    k = np.flatnonzero((dr == 3) & (dc == 0))[0]
    assert w[k] / centre == pytest.approx(np.exp(-0.5 * 30**2 / 100**2))
    assert np.allclose(np.sort(w[dr > 0]), np.sort(w[dr < 0]))


def test_weighted_series_renormalises_over_pixels_with_values():
    from ecoembed.embed.sites import weighted_series

    values = np.array([[[1.0, 3.0, np.nan]], [[np.nan, np.nan, np.nan]]])
    w = np.array([0.5, 0.25, 0.25])
    out = weighted_series(values, w)
    assert out[0, 0] == pytest.approx((0.5 * 1 + 0.25 * 3) / 0.75)
    assert np.isnan(out[1, 0])


def test_site_embeddings_locate_towers_and_report_those_outside(
    products, products_cube, checkpoint, tmp_path
):
    from ecoembed.embed.sites import extract_site_embeddings
    from ecoembed.io.fluxnet import read_site_table

    _, cube_path = products_cube
    sites = read_site_table(products["flux_dir"] / "sites_tile00.csv")
    far = pd.DataFrame(
        [{"SITE_ID": "XX-FAR", "LOCATION_LAT": -33.0, "LOCATION_LONG": 151.0, "IGBP": "GRA"}]
    )
    table_in = tmp_path / "sites.csv"
    pd.concat([sites, far], ignore_index=True).to_csv(table_in, index=False)
    out, table = tmp_path / "emb.parquet", tmp_path / "table.csv"
    df = extract_site_embeddings(
        {"tile00": cube_path},
        checkpoint,
        table_in,
        out_path=out,
        table_path=table,
        radius_m=100,
        stride_px=2,
        progress=False,
    )
    status = pd.read_csv(table).set_index("site")
    assert status.loc["XX-FAR", "status"] == "outside"
    truth = open_zarr(products["truth_path"])
    for site, row, col in zip(
        truth["site"].values, truth["site_row"].values, truth["site_col"].values, strict=True
    ):
        assert (status.loc[site, "row"], status.loc[site, "col"]) == (row, col)
    back = pd.read_parquet(out)
    assert "XX-FAR" in back.attrs["sites_outside"] and "XX-FAR" not in set(back["site"])
    cube = open_zarr(cube_path)
    n_days = (
        pd.Timestamp(max(cube["time"].values.max(), cube["time_s1"].values.max())).normalize()
        - pd.Timestamp(min(cube["time"].values.min(), cube["time_s1"].values.min())).normalize()
    ).days + 1
    for (site, source), g in back.groupby(["site", "source"], observed=True):
        assert len(g) == n_days and g["date"].is_monotonic_increasing
        assert g[["e0", "e1", "e2", "e3"]].notna().all().all(), (site, source)
    fused = df[df["source"] == "fused"]
    assert fused["observed_fraction"].between(0, 1).all() and fused["e4"].notna().all()


# --- reconstruction evaluation -------------------------------------------------------


def test_daily_truth_reproduces_the_truth_reflectance_on_s2_dates(products):
    """The daily truth of days without S2 comes from the same model as s2_clear."""
    from ecoembed.evaluation.reconstruction import daily_truth

    truth = open_zarr(products["truth_path"])
    days = day_numbers(truth["time"].values[[3, 10, 20]])
    r, c = np.meshgrid(np.arange(4, 12), np.arange(2, 8), indexing="ij")
    got = daily_truth(truth, days, slice(0, 40), slice(10, 50), r, c)
    want = truth["s2_clear"].values[[3, 10, 20]][:, :, r, c + 10]
    assert got.shape == want.shape == (3, len(S2_BAND_NAMES), 8, 6)
    np.testing.assert_allclose(got, want, atol=1.5e-4)  # int16 packing of s2_clear: 1e-4


def test_linear_and_whittaker_baselines_use_clear_observations_only():
    from ecoembed.embed.baselines import choose_lambda, linear_fill, whittaker_fill

    rng = np.random.default_rng(5)
    days = np.sort(rng.uniform(0, 365, 60))
    signal = 0.2 + 0.1 * np.sin(2 * np.pi * days / 365)
    values = np.broadcast_to(signal[:, None, None], (60, 2, 20)).copy()
    values += rng.normal(0, 0.01, values.shape)
    hidden = rng.random((60, 20)) < 0.5
    values[np.broadcast_to(hidden[:, None], values.shape)] = np.nan
    values[:, :, 0] = np.nan  # a pixel never seen clear: no value
    to = np.arange(0, 365, 5.0)
    want = 0.2 + 0.1 * np.sin(2 * np.pi * to / 365)
    lin = linear_fill(values, days, to)
    assert np.isnan(lin[:, :, 0]).all()
    lam, scores = choose_lambda(values, days, [1.0, 1e3, 1e5], rng)
    assert lam == min(scores, key=scores.get) and lam > 1.0  # a smooth signal: smooth more
    wh = whittaker_fill(values, days, to, lam)
    inside = (to > days[5]) & (to < days[-5])
    err_lin = np.nanmean((lin[inside, :, 1:] - want[inside, None, None]) ** 2)
    err_wh = np.nanmean((wh[inside, :, 1:] - want[inside, None, None]) ** 2)
    assert err_wh < err_lin < 0.01**2 * 2  # both follow the signal; the smoother beats noise
    # linear interpolation passes through the clear observations themselves
    p = 3
    clear = np.flatnonzero(~hidden[:, p])
    np.testing.assert_allclose(
        linear_fill(values[:, :, [p]], days, days[clear])[:, :, 0], values[clear, :, p], atol=1e-6
    )


def test_scores_compare_20m_bands_on_2x2_blocks():
    from ecoembed.evaluation.reconstruction import ErrorSums, score

    truth = np.zeros((1, 2, 4, 4), np.float32)
    pred = np.zeros_like(truth)
    pred[0, :, 0, 0] = 0.4  # one pixel off in both bands
    mask = np.ones((1, 4, 4), bool)
    sums = ErrorSums()
    score(sums, "s2_dates", {"fused": pred}, truth, {"all": mask}, ["B04", "B11"])
    t = sums.table(["B04", "B11"]).set_index("band")
    assert t.loc["B04", "n"] == 16 and t.loc["B04", "rmse"] == pytest.approx(0.1)
    # B11 (20 m): 4 blocks, the first off by the block mean 0.1
    assert t.loc["B11", "n"] == 4 and t.loc["B11", "rmse"] == pytest.approx(0.05)
    assert t.loc["all", "rmse"] == pytest.approx(np.sqrt((0.01 + 0.0025) / 2))


def test_nearest_acquisitions_match_a_brute_force_search():
    rng = np.random.default_rng(0)
    valid = rng.random((30, 50)) < 0.8
    days = np.cumsum(rng.integers(3, 9, 30)).astype(float)
    targets = np.linspace(days[0] - 10, days[-1] + 10, 40)
    one, one_ok = window.nearest_acquisition(valid, days, targets)
    idx, ok = window.nearest_acquisitions(valid, days, targets, 1)
    np.testing.assert_array_equal(idx[..., 0][one_ok], one[one_ok])
    idx, ok = window.nearest_acquisitions(valid, days, targets, 5)
    for d in range(targets.size):
        for p in range(valid.shape[1]):
            v = np.flatnonzero(valid[:, p])
            want = np.sort(np.abs(days[v] - targets[d]))[:5]
            got = np.abs(days[idx[d, p][ok[d, p]]] - targets[d])
            np.testing.assert_allclose(got, want)  # nearest first


def test_dense_codes_with_the_centre_skip_equal_per_pixel_neighbourhoods():
    """With ``centre_skip`` the temporal module also reads each frame's own pixel: dense
    codes (window stem + the window's own values) still equal one neighbourhood per code,
    and the code now changes with the central pixel alone."""
    from ecoembed.models import ContextEncoder

    torch.manual_seed(3)
    enc = ContextEncoder(10, size=SIZE, frames=FRAMES, latent_dim=LATENT, centre_skip=True).eval()
    series = random_series(np.random.default_rng(5))
    halo = SIZE // 2
    w = series.s2.shape[3] - 2 * halo
    pixels = np.arange((series.s2.shape[2] - 2 * halo) * w)
    feats = window.stem_features(enc, series.s2, pixels)
    days = torch.from_numpy(window.padded_days(series.s2_days, FRAMES // 2)).float()
    t = np.array([2, 5, 8, 11, 6])
    p = np.array([0, 17, 63, pixels.size - 1, 40])
    got = window.codes_at(enc, feats, days, t, p).numpy()
    s = SensorSeries(series.s2, series.s2_days.astype(np.float32), None)
    ref = encode_at(enc, s, t, p // w + halo, p % w + halo)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    # the centre alone moves the code (it would not through a stem that ignored it)
    x, dt = extract_neighbourhoods(
        series.s2,
        s.day_of,
        Centres(t[:1], p[:1] // w + halo, p[:1] % w + halo),
        size=SIZE,
        frames=FRAMES,
    )
    y = x.copy()
    y[:, FRAMES // 2, :, halo, halo] += 1.0
    with torch.no_grad():
        a = enc(torch.from_numpy(np.nan_to_num(x)), torch.from_numpy(dt))
        b = enc(torch.from_numpy(np.nan_to_num(y)), torch.from_numpy(dt))
    assert not torch.allclose(a, b, atol=1e-4)
