"""The workflow config: loading, validation against the schema, provenance hash.

The schema, ``ecoembed/config.schema.yaml``, ships with the package (package data), so an
installed ecoembed validates configs as a checkout does; the Snakefile validates with it too.

rules/common.smk validates the workflow's config with :func:`validate_config`, the function
behind :func:`load_config`, so a config that loads here is a config the workflow accepts,
and the other way round.

Light on purpose (PyYAML, jsonschema through snakemake.utils, and the pure-Python site
plan and file names): the Snakefile imports it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from ecoembed.io.names import fluxnet_dd_filename
from ecoembed.io.sensors import SENSORS
from ecoembed.synth import plan

# The JSON schema of the config, read through importlib.resources (a file of the package).
SCHEMA: Traversable = files("ecoembed") / "config.schema.yaml"


class ConfigError(ValueError):
    """An invalid config; the message names the offending key."""


class _NoTimestampLoader(yaml.SafeLoader):
    """SafeLoader that keeps ``2022-01-01`` a string (the schema checks dates as strings)."""


_NoTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def normalize_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Turn the dates YAML parses from unquoted ``2022-01-01`` back into ISO strings.

    The schema types dates as strings; without this an unquoted date in a YAML config
    would fail validation with a confusing ``datetime.date(...) is not of type 'string'``.
    Works in place (Snakemake's ``config`` is a global dict) and returns ``cfg``.
    """

    def fix(value: Any) -> Any:
        if isinstance(value, dict):
            for key, item in value.items():
                value[key] = fix(item)
        elif isinstance(value, list):
            value[:] = [fix(item) for item in value]
        elif isinstance(value, dt.date):  # also datetime, a subclass
            return value.isoformat()
        return value

    return fix(cfg)


def check_config(cfg: dict[str, Any]) -> None:
    """Checks beyond the schema's reach, on a schema-valid config with defaults filled in:
    everything the workflow would otherwise refuse later (at DAG time or in a job).

    Raises :class:`ConfigError` naming the key. One function per data source and per
    section, so a new check goes where its keys are.
    """
    _check_period(cfg["synth"], "synth")
    if cfg["data_source"] == "stac":
        _check_stac(cfg)
    else:
        _check_synth(cfg)
    _check_context_fits_period(cfg)
    _check_daily_period(cfg)
    _check_pretrain(cfg["pretrain"])
    _check_figures(cfg)


def tiles_of(cfg: dict[str, Any]) -> list[str]:
    """The tile ids of a (checked) config: the synthetic world's, or one per real site."""
    if cfg["data_source"] == "stac":
        return [s["id"] for s in cfg["stac"]["sites"]]
    return plan.tile_ids(cfg["synth"])


def _check_synth(cfg: dict[str, Any]) -> None:
    """The synthetic towers' ids keep the FLUXNET form their file names need."""
    synth = cfg["synth"]
    n = int(synth["n_sites"])
    # ids grow with the tower's number (XX-D01 ... XX-G99, XX-E100): the first that breaks
    # the form is among the first 100
    for k, site in enumerate(plan.site_plan({**synth, "n_sites": min(n, 100)})):
        try:
            fluxnet_dd_filename(site.site_id, 2000, 2000)
        except ValueError:
            raise ConfigError(
                f"synth.n_sites: {n} towers is too many; tower {k + 1} would be "
                f"{site.site_id!r}, but site ids must keep the FLUXNET form CC-XXX (two "
                "letters, a hyphen, three letters or digits) that the FLUXNET file names "
                f"need, so at most {k} towers (ecoembed.synth.plan, ecoembed.io.names)"
            ) from None


# Nominal revisit of the real sensors (ecoembed.io.sensors). The shorter S1 value (two
# satellites) is taken, so that a period is refused only when it cannot hold the context
# at the best nominal revisit; fewer acquisitions (clouds over the max_cloud_cover, one
# satellite) still fail later, in the search or in pretraining.
STAC_REVISIT_DAYS = {s.name: s.revisit_days for s in SENSORS.values()}


def _check_context_fits_period(cfg: dict[str, Any]) -> None:
    """Pretraining cuts windows of ``context.frames`` consecutive acquisitions of each
    sensor, centred on a valid one (ecoembed.train.sampling.sample_centres): a series of
    fewer acquisitions has no centre at all, and pretraining would fail naming no key."""
    frames = int(cfg["context"]["frames"])
    if cfg["data_source"] == "stac":
        section, name = cfg["stac"], "stac"
        need = max((frames - 1) * days + 1 for days in STAC_REVISIT_DAYS.values())
        how = (
            f"{frames} acquisitions of each sensor at the nominal revisit "
            f"(S2 every {STAC_REVISIT_DAYS['s2']} days, S1 every {STAC_REVISIT_DAYS['s1']} days)"
        )
    else:
        section, name = cfg["synth"], "synth"
        need = plan.min_days_for_frames(cfg["synth"], frames)
        how = (
            f"{frames} acquisitions of each sensor on every tile (S2 every "
            f"{section['s2_revisit_days']} days, S1 every {section['s1_revisit_days']} days "
            "on two orbits)"
        )
    days = (dt.date.fromisoformat(section["end"]) - dt.date.fromisoformat(section["start"])).days
    if days + 1 < need:
        raise ConfigError(
            f"{name}.start/{name}.end: {section['start']} to {section['end']} is {days + 1} "
            f"days, too short for context.frames = {frames}: pretraining needs {how}, at "
            f"least {need} days; lengthen the period or lower context.frames"
        )


def _check_period(section: dict[str, Any], name: str) -> None:
    """``start`` and ``end`` of a section are real ISO dates, start before end."""
    days = {}
    for key in ("start", "end"):
        try:
            days[key] = dt.date.fromisoformat(section[key])
        except ValueError as err:
            raise ConfigError(f"{name}.{key}: {section[key]!r} is not a valid date") from err
    if days["start"] >= days["end"]:
        raise ConfigError(
            f"{name}.start ({section['start']}) must be before {name}.end ({section['end']})"
        )


def _check_daily_period(cfg: dict[str, Any]) -> None:
    """The daily product's days are real dates, in order, overlapping the study period
    (else the product would be empty)."""
    embed = cfg["embed"]
    name = "stac" if cfg["data_source"] == "stac" else "synth"
    study = cfg[name]
    bounds = {}
    for key, default in (("daily_start", study["start"]), ("daily_end", study["end"])):
        value = embed[key] if embed[key] is not None else default
        try:
            bounds[key] = dt.date.fromisoformat(value)
        except ValueError as err:
            raise ConfigError(f"embed.{key}: {value!r} is not a valid date") from err
    start, end = bounds["daily_start"], bounds["daily_end"]
    if start > end:
        raise ConfigError(
            f"embed.daily_start ({start}) must be on or before embed.daily_end ({end})"
        )
    if end < dt.date.fromisoformat(study["start"]) or start > dt.date.fromisoformat(study["end"]):
        raise ConfigError(
            f"embed.daily_start/embed.daily_end: {start} to {end} lies outside the study "
            f"period {name}.start/{name}.end ({study['start']} to {study['end']}); the daily "
            "product would have no day"
        )


def _check_pretrain(pre: dict[str, Any]) -> None:
    """Dense stage-1 training shares one stem pass among a window's centres: a hidden
    central pixel would change the stem's output for that centre alone."""
    if pre["centres_per_window"] > 1 and pre["p_centre"] > 0:
        raise ConfigError(
            f"pretrain.p_centre: must be 0 with pretrain.centres_per_window > 1 "
            f"(got {pre['p_centre']} and {pre['centres_per_window']})"
        )
    if pre["centres_per_window"] > pre["window_px"] ** 2:
        raise ConfigError(
            f"pretrain.centres_per_window: {pre['centres_per_window']} centres do not fit "
            f"in a window of pretrain.window_px {pre['window_px']} x {pre['window_px']} pixels"
        )


def _check_stac(cfg: dict[str, Any]) -> None:
    """A real study names its sites, a real period and its FLUXNET folder, and asks for
    nothing that needs the synthetic world's truth."""
    study = cfg["stac"]
    if not study["sites"]:
        raise ConfigError("stac.sites: data_source stac needs at least one site")
    ids = [s["id"] for s in study["sites"]]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        raise ConfigError(f"stac.sites: duplicate site ids {dups}")
    _check_period(study, "stac")
    if study["flux_dir"] is None:
        raise ConfigError(
            "stac.flux_dir: data_source stac needs the folder of the sites' FLUXNET files"
        )
    if "oracle" in cfg["gpp"]["input_sets"]:
        raise ConfigError(
            "gpp.input_sets: 'oracle' reads the synthetic world's truth, which real data lack"
        )


def _check_figures(cfg: dict[str, Any]) -> None:
    """The figures show a tile of the run, a model and split that the GPP evaluation
    runs, on a real date."""
    figures, gpp = cfg["figures"], cfg["gpp"]
    tiles = tiles_of(cfg)
    if figures["tile"] is not None and figures["tile"] not in tiles:
        which = "stac.sites" if cfg["data_source"] == "stac" else "synth.n_tiles"
        raise ConfigError(
            f"figures.tile: {figures['tile']!r} is not one of the tiles {tiles} "
            f"(from {which}; null = the first)"
        )
    if figures["model"] is not None and figures["model"] not in gpp["models"]:
        raise ConfigError(
            f"figures.model: {figures['model']!r} is not among gpp.models {gpp['models']}"
        )
    if figures["split"] not in gpp["splits"]:
        raise ConfigError(
            f"figures.split: {figures['split']!r} is not among gpp.splits {gpp['splits']}"
        )
    if figures["date"] != "auto":
        try:
            dt.date.fromisoformat(figures["date"])
        except ValueError as err:
            raise ConfigError(
                f"figures.date: {figures['date']!r} is neither 'auto' nor a date (YYYY-MM-DD)"
            ) from err


def validate_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Validate ``cfg`` in place against :data:`SCHEMA`, filling in defaults; returns ``cfg``.

    Raises :class:`ConfigError` whose message starts with the dotted key at fault.
    """
    from jsonschema import ValidationError
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    normalize_config(cfg)
    try:
        with as_file(SCHEMA) as schema:
            validate(cfg, str(schema), set_default=True)
    except WorkflowError as err:
        # snakemake raises WorkflowError while handling jsonschema's ValidationError
        cause = err.__cause__ or err.__context__
        if not isinstance(cause, ValidationError):
            raise ConfigError(str(err)) from err
        where = ".".join(str(part) for part in cause.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: {cause.message}") from err
    check_config(cfg)
    return cfg


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) config file and validate it, defaults filled in."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        cfg = yaml.load(f, Loader=_NoTimestampLoader)
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys, got {type(cfg).__name__}")
    return validate_config(cfg)


def config_hash(cfg: dict[str, Any]) -> str:
    """First 16 hex digits of the sha256 of the config as canonical JSON (for provenance)."""
    canonical = json.dumps(cfg, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]
