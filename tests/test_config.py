"""The config schema, ecoembed.config, and validation by the workflow before any job runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ecoembed.__main__ import main as cli
from ecoembed.config import SCHEMA as SCHEMA_FILE
from ecoembed.config import ConfigError, config_hash, load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted([REPO / "config.yaml", *(REPO / "config").glob("*.yaml")])


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def schema_leaves(schema: dict, prefix: str = "") -> dict[str, dict]:
    """Dotted key -> sub-schema of every key that is not itself an object of keys."""
    leaves = {}
    for key, sub in schema["properties"].items():
        if "properties" in sub:
            leaves.update(schema_leaves(sub, f"{prefix}{key}."))
        else:
            leaves[f"{prefix}{key}"] = sub
    return leaves


def schema_objects(schema: dict) -> list[dict]:
    found = [schema]
    for sub in schema.get("properties", {}).values():
        if sub.get("type") == "object":
            found.extend(schema_objects(sub))
    return found


SCHEMA = yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))


def test_schema_is_strict_and_complete():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for obj in schema_objects(SCHEMA):
        assert obj.get("additionalProperties") is False, obj.get("description")
    for key, sub in schema_leaves(SCHEMA).items():
        assert "default" in sub, f"{key} has no default"
        assert sub.get("description"), f"{key} has no description"


def test_schema_is_a_file_of_the_package():
    """Read through importlib.resources, from the package folder itself (not the checkout
    root, which an installed ecoembed does not have)."""
    import importlib.resources

    import ecoembed

    packaged = importlib.resources.files("ecoembed") / "config.schema.yaml"
    assert packaged.is_file() and packaged.read_bytes() == SCHEMA_FILE.read_bytes()
    assert Path(str(SCHEMA_FILE)).parent == Path(ecoembed.__file__).parent
    assert not (REPO / "config.schema.yaml").exists()  # one copy


def test_a_wheel_ships_the_schema(tmp_path):
    """A non-editable install has the schema: the wheel built from the package holds it."""
    import shutil
    import zipfile

    src = tmp_path / "src"
    shutil.copytree(
        REPO / "ecoembed", src / "ecoembed", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    run = subprocess.run(
        [*build, str(src), "-w", str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = (tmp_path / "dist").glob("ecoembed-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("ecoembed/config.schema.yaml") == SCHEMA_FILE.read_bytes()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_repository_configs_validate(path):
    cfg = load_config(path)
    assert set(cfg["synth"]) == set(SCHEMA["properties"]["synth"]["properties"])


def test_found_the_repository_configs():
    assert {p.relative_to(REPO).as_posix() for p in CONFIGS} >= {"config.yaml", "config/tiny.yaml"}


def test_tiny_is_one_small_tile_over_a_full_year():
    cfg = load_config(REPO / "config" / "tiny.yaml")
    assert cfg["synth"]["n_tiles"] == 1
    assert cfg["synth"]["start"].endswith("-01-01") and cfg["synth"]["end"].endswith("-12-31")


def test_embedded_default_equals_schema_defaults(tmp_path):
    # config.yaml spells out the defaults: a minimal config gets the same world
    empty = load_config(write_yaml(tmp_path / "empty.yaml", ""))
    assert empty == load_config(REPO / "config.yaml")
    assert empty["seed"] == 42
    assert empty["raw_dir"] == "results/raw"
    assert empty["synth"]["n_tiles"] == 3
    assert empty["synth"]["tile_size"] == 256
    assert empty["synth"]["epsg"] == 32632


def test_defaults_fill_a_partial_section(tmp_path):
    cfg = load_config(write_yaml(tmp_path / "c.yaml", "synth:\n  n_tiles: 2\n"))
    assert cfg["synth"]["n_tiles"] == 2
    assert cfg["synth"]["s1_revisit_days"] == 6
    assert cfg["synth"]["drought"] is True
    assert cfg["seed"] == 42


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("synth:\n  n_tile: 3\n", "n_tile"),  # unknown key
        ("synth:\n  tile_size: big\n", "tile_size"),  # wrong type
        ("synth:\n  tile_size: 97\n", "tile_size"),  # odd: 20 m bands would not align
        ("synth:\n  s1_revisit_days: 7\n", "s1_revisit_days"),
        ("synth:\n  cloud_cover_mean: 1.0\n", "cloud_cover_mean"),
        ("synth:\n  epsg: 4326\n", "epsg"),  # not a UTM zone
        ("synth:\n  drought: maybe\n", "drought"),
        ("synth:\n  start: 2022-02-30\n", "start"),  # no such day
        ("synth:\n  start: 01.01.2022\n", "start"),
        ("synth:\n  start: 2024-01-01\n", "start"),  # after the default end
        ("seeed: 1\n", "seeed"),
        ("seed: -1\n", "seed"),
        ("raw_dir: 3\n", "raw_dir"),
        ("fusion:\n  context_dates: 0\n", "context_dates"),  # the fusion needs S2 context
        ("cube:\n  s1_temporal_looks: 2\n", "s1_temporal_looks"),  # not centred
        ("embed:\n  daily_start: 2022-07-01\n  daily_end: 2022-06-01\n", "embed.daily_start"),
        ("embed:\n  daily_start: 2030-01-01\n", "embed.daily_start"),  # after synth.end
        (
            "embed:\n  daily_start: 2020-01-01\n  daily_end: 2021-01-01\n",
            "embed.daily_start/embed.daily_end",
        ),  # before synth.start
        ("embed:\n  daily_start: 2022-06-31\n", "embed.daily_start"),  # no such day
        ("embed:\n  daily_end: july\n", "embed.daily_end"),
        ("figures:\n  date: june\n", "figures.date"),
        ("figures:\n  date: 2022-06-31\n", "figures.date"),
        ("gpp:\n  models: [gbm]\nfigures:\n  model: temporal_net\n", "figures.model"),
        ("gpp:\n  splits: [loso]\nfigures:\n  split: loyo\n", "figures.split"),
        # a hidden central pixel cannot share the stem pass of dense training
        ("pretrain:\n  centres_per_window: 8\n  p_centre: 0.5\n", "pretrain.p_centre"),
        (
            "pretrain:\n  centres_per_window: 17\n  window_px: 4\n",
            "pretrain.centres_per_window",
        ),
    ],
)
def test_bad_config_fails_naming_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(write_yaml(tmp_path / "bad.yaml", text))


def test_unquoted_dates_are_accepted(tmp_path):
    cfg = load_config(write_yaml(tmp_path / "c.yaml", "synth:\n  start: 2021-03-01\n"))
    assert cfg["synth"]["start"] == "2021-03-01"


def test_config_hash():
    cfg = load_config(REPO / "config.yaml")
    h = config_hash(cfg)
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    reordered = json.loads(json.dumps(cfg))
    reordered = dict(reversed(list(reordered.items())))
    assert config_hash(reordered) == h
    changed = json.loads(json.dumps(cfg))
    changed["synth"]["n_sites"] += 1
    assert config_hash(changed) != h


def test_configuration_page_lists_every_key_with_its_default():
    """docs/configuration.md (generated by docs/generate.py) against the schema itself."""
    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z0-9_.]+)` \|[^|]*\| `([^`]*)` \|", page, re.MULTILINE))
    leaves = schema_leaves(SCHEMA)
    assert set(rows) == set(leaves)
    for key, sub in leaves.items():
        assert json.loads(rows[key]) == sub["default"], key


def test_cli(tmp_path, capsys):
    assert cli(["validate-config", str(REPO / "config.yaml")]) == 0
    assert "valid" in capsys.readouterr().out
    bad = write_yaml(tmp_path / "bad.yaml", "synth:\n  n_tile: 3\n")
    assert cli(["validate-config", str(bad)]) == 1
    assert "n_tile" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli(["--version"])
    assert exc.value.code == 0
    assert re.match(r"ecoembed \d", capsys.readouterr().out)


# --- through Snakemake itself ----------------------------------------------------------


def snakemake_dry_run(workdir: Path, configfile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "synthesize", "-n", "--cores", "1"]
        + ["-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
        + ["--configfile", str(configfile)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("synth:\n  n_tile: 3\n", "n_tile"),
        ("synth:\n  tile_size: big\n", "tile_size"),
        ("figures:\n  tile: tile07\n", "figures.tile"),  # was a ValueError of common.smk
    ],
)
def test_snakemake_rejects_bad_config_before_any_job(tmp_path, text, key):
    bad = write_yaml(tmp_path / "bad.yaml", text)
    workdir = tmp_path / "work"
    workdir.mkdir()
    run = snakemake_dry_run(workdir, bad)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert key in out
    assert "ConfigError" in out
    assert "rule synthesize_tile" not in out  # failed while parsing, before the DAG
    assert not (workdir / "results").exists()


STAC_STUDY = """data_source: stac
stac:
  sites:
    - {id: DE-Tha, lat: 50.96, lon: 13.56, igbp: ENF}
    - {id: DE-Hai, lat: 51.08, lon: 10.45, igbp: DBF}
  start: "2019-01-01"
  end: "2020-12-31"
  flux_dir: data/fluxnet
gpp:
  input_sets: [fused, s2]
"""


def test_a_real_study_validates(tmp_path):
    cfg = load_config(write_yaml(tmp_path / "study.yaml", STAC_STUDY))
    assert [s["id"] for s in cfg["stac"]["sites"]] == ["DE-Tha", "DE-Hai"]


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('end: "2020-12-31"', 'end: "2020-02-30"', "stac.end"),  # no such day
        ('start: "2019-01-01"', 'start: "2021-01-01"', "stac.start"),  # after the end
        ("DE-Hai", "DE-Tha", "stac.sites"),  # the same site twice
        ("  flux_dir: data/fluxnet\n", "", "stac.flux_dir"),
        ("[fused, s2]", "[fused, oracle]", "gpp.input_sets"),  # needs the synthetic truth
    ],
)
def test_bad_real_study_fails_naming_the_key(tmp_path, old, new, key):
    assert old in STAC_STUDY
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(write_yaml(tmp_path / "bad.yaml", STAC_STUDY.replace(old, new)))


# --- what the workflow refused only later: figure tile, tower count, period length ----------


def test_figure_tile_must_be_a_tile_of_the_world(tmp_path):
    cfg = load_config(write_yaml(tmp_path / "c.yaml", "figures:\n  tile: tile02\n"))
    assert cfg["figures"]["tile"] == "tile02"
    bad = write_yaml(tmp_path / "bad.yaml", "figures:\n  tile: tile03\n")  # 3 tiles: 00-02
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value) == (
        "figures.tile: 'tile03' is not one of the tiles ['tile00', 'tile01', 'tile02'] "
        "(from synth.n_tiles; null = the first)"
    )
    text = "synth:\n  n_tiles: 4\nfigures:\n  tile: tile03\n"
    assert load_config(write_yaml(tmp_path / "four.yaml", text))["figures"]["tile"] == "tile03"


def test_figure_tile_of_a_real_study_is_a_site(tmp_path):
    ok = STAC_STUDY + "figures:\n  tile: DE-Hai\n"
    assert load_config(write_yaml(tmp_path / "c.yaml", ok))["figures"]["tile"] == "DE-Hai"
    for tile in ("tile00", "DE-Gri"):
        bad = write_yaml(tmp_path / "bad.yaml", STAC_STUDY + f"figures:\n  tile: {tile}\n")
        with pytest.raises(ConfigError, match=r"figures.tile: .* \['DE-Tha', 'DE-Hai'\]"):
            load_config(bad)


def test_at_most_99_synthetic_towers(tmp_path):
    from ecoembed.io.names import fluxnet_dd_filename
    from ecoembed.synth.plan import site_plan

    cfg = load_config(write_yaml(tmp_path / "c.yaml", "synth:\n  n_sites: 99\n"))
    ids = [s.site_id for s in site_plan(cfg["synth"])]
    assert ids[-1] == "XX-G99"  # tower 99, a grassland
    for site in ids:  # what the DAG builds from them
        fluxnet_dd_filename(site, 2022, 2023)
    for n in (100, 250):
        with pytest.raises(ConfigError) as err:
            load_config(write_yaml(tmp_path / "bad.yaml", f"synth:\n  n_sites: {n}\n"))
        msg = str(err.value)
        assert msg.startswith(f"synth.n_sites: {n} towers is too many; tower 100 would be ")
        assert "'XX-E100'" in msg and "CC-XXX" in msg and "at most 99 towers" in msg
    with pytest.raises(ValueError, match="CC-XXX"):  # the DAG-time failure it prevents
        fluxnet_dd_filename(site_plan({"n_tiles": 3, "n_sites": 100})[-1].site_id, 2022, 2023)


def test_cli_refuses_what_the_workflow_would_refuse(tmp_path, capsys):
    for text, key in [
        ("figures:\n  tile: tile09\n", "figures.tile"),
        ("synth:\n  n_sites: 120\n", "synth.n_sites"),
        ('synth:\n  start: "2022-01-01"\n  end: "2022-02-01"\n', "synth.start/synth.end"),
    ]:
        bad = write_yaml(tmp_path / "bad.yaml", text)
        assert cli(["validate-config", str(bad)]) == 1
        assert key in capsys.readouterr().err


def _samplable(synth: dict, frames: int, days: int) -> bool:
    """Whether pretraining's sampler finds a centre on every tile of a synthetic world of
    ``days`` days, for both sensors: the acquisition schedule and S1 swaths of
    ecoembed.synth.grid, every S2 view clear (on 64-pixel tiles: the swaths' cover of the
    tiles does not depend on their size)."""
    import numpy as np
    import pandas as pd

    from ecoembed.synth import grid
    from ecoembed.train.sampling import sample_centres

    end = pd.Timestamp("2022-01-01") + pd.Timedelta(days=days - 1)
    period = grid.simulation_days("2022-01-01", f"{end:%Y-%m-%d}")
    s1_revisit = synth["s1_revisit_days"]
    orbits = grid.s1_orbits(s1_revisit, synth["n_tiles"], 64)
    s1 = sorted((d, o) for o in orbits for d in grid.s1_acquisitions(period, s1_revisit, o))
    for i in range(synth["n_tiles"]):
        x = grid.tile_grid(f"tile{i:02d}", i, 64, 32632).x_coords()
        s2_days = grid.s2_acquisitions(period, synth["s2_revisit_days"], i)
        s1_seen = np.array([np.isfinite(grid.s1_incidence_deg(o, x)) for _, o in s1])
        for acq, valid in (
            (s2_days, np.ones((s2_days.size, 64, 64), bool)),
            (np.array([d for d, _ in s1], int), np.repeat(s1_seen.reshape(-1, 1, 64), 64, 1)),
        ):
            try:
                sample_centres(
                    valid, period[acq], n=4, size=3, frames=frames, rng=np.random.default_rng(0)
                )
            except ValueError:
                return False
    return True


@pytest.mark.parametrize(
    ("synth", "frames", "need"),
    [
        # S2 phases 0, 2, 4 on three tiles: 4 + 10 x 5 + 1; S1 (days 1, 4, 7, ...) needs 32
        ({"n_tiles": 3, "s2_revisit_days": 5, "s1_revisit_days": 6}, 11, 55),
        # S1 every 12 days on two orbits (days 1, 7, 13, ...): the 11th on day 61, so 62
        ({"n_tiles": 1, "s2_revisit_days": 5, "s1_revisit_days": 12}, 11, 62),
        ({"n_tiles": 3, "s2_revisit_days": 5, "s1_revisit_days": 12}, 11, 62),
        # a fourth tile lies beyond the descending swath: its centre, the 6th acquisition
        # (day 31, descending), sees nothing; one more (day 37 ascending, 12th on day 67)
        ({"n_tiles": 4, "s2_revisit_days": 5, "s1_revisit_days": 12}, 11, 68),
        # with 9 frames the centre (the 5th, day 25) is ascending: the 9th on day 49
        ({"n_tiles": 4, "s2_revisit_days": 5, "s1_revisit_days": 12}, 9, 50),
        ({"n_tiles": 1, "s2_revisit_days": 10, "s1_revisit_days": 6}, 11, 101),
        # frames 1: one acquisition, but tile01's first S2 overpass is on its third day
        ({"n_tiles": 2, "s2_revisit_days": 3, "s1_revisit_days": 12}, 1, 3),
    ],
)
def test_synthetic_period_must_hold_the_context(tmp_path, synth, frames, need):
    """The minimum is the shortest world in which pretraining's sampler finds a centre on
    every tile; one day less is refused, naming the keys."""
    import pandas as pd

    from ecoembed.synth.plan import min_days_for_frames

    assert min_days_for_frames(synth, frames) == need
    assert _samplable(synth, frames, need) and not _samplable(synth, frames, need - 1)
    start = pd.Timestamp("2022-01-01")
    body = "".join(f"  {k}: {v}\n" for k, v in synth.items())
    text = f"context:\n  frames: {frames}\nsynth:\n{body}  start: '2022-01-01'\n"
    end = f"{start + pd.Timedelta(days=need - 1):%Y-%m-%d}"
    cfg = load_config(write_yaml(tmp_path / "ok.yaml", text + f"  end: '{end}'\n"))
    assert cfg["synth"]["end"] == end
    short = f"{start + pd.Timedelta(days=need - 2):%Y-%m-%d}"
    with pytest.raises(ConfigError) as err:
        load_config(write_yaml(tmp_path / "bad.yaml", text + f"  end: '{short}'\n"))
    assert str(err.value).startswith(
        f"synth.start/synth.end: 2022-01-01 to {short} is {need - 1} days, too short "
        f"for context.frames = {frames}"
    )
    assert f"at least {need} days" in str(err.value)


def test_real_study_period_must_hold_the_context(tmp_path):
    """Stac: frames acquisitions at the nominal revisit, S1 every 6 days deciding:
    (11 - 1) x 6 + 1 = 61 days."""
    short = STAC_STUDY.replace('start: "2019-01-01"', 'start: "2020-11-01"')
    assert load_config(write_yaml(tmp_path / "ok.yaml", short))["stac"]["start"] == "2020-11-01"
    shorter = STAC_STUDY.replace('start: "2019-01-01"', 'start: "2020-11-02"')
    with pytest.raises(ConfigError) as err:
        load_config(write_yaml(tmp_path / "bad.yaml", shorter))
    assert str(err.value).startswith(
        "stac.start/stac.end: 2020-11-02 to 2020-12-31 is 60 days, too short for "
        "context.frames = 11"
    )
    assert "at least 61 days" in str(err.value)
    fewer = shorter + "context:\n  frames: 9\n"  # (9 - 1) x 6 + 1 = 49 days
    assert load_config(write_yaml(tmp_path / "fewer.yaml", fewer))["context"]["frames"] == 9
