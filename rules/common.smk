# Shared by every .smk file: config validation, path constants, what the world contains.
#
# Runs at DAG-building time (and again in every cluster job), so only light, pure-Python
# imports here: no numpy, torch or raster libraries.

import re
from pathlib import Path

from snakemake.utils import min_version

from ecoembed.config import config_hash, validate_config
from ecoembed.acquire import sites as real_sites
from ecoembed.acquire.credentials import check_credentials
from ecoembed.io.names import FIGURE_NAMES, fluxnet_dd_filename, gpp_input_set_names
from ecoembed.io.sites import years
from ecoembed.synth import plan

min_version("9.0")


# --- config: validated before any job runs ------------------------------------------
# snakemake.utils.validate against the JSON schema (filling in the defaults, in place),
# after turning unquoted YAML dates into ISO strings, plus the checks a schema cannot
# express (real dates, start before end). The error names the key at fault. The same
# function backs ecoembed.config.load_config and `python -m ecoembed validate-config`.
validate_config(config, Path(workflow.basedir) / "config.schema.yaml")


# --- paths ---------------------------------------------------------------------------
RAW = config["raw_dir"].rstrip("/")  # raw inputs in the layout real products have
TRUTH = "results/truth"  # the synthetic world's ground truth, one zarr per tile
SYNTH = "results/synth"  # intermediate outputs of the synthetic world
LOGS = "results/logs"
BENCHMARKS = "results/benchmarks"


# --- tiles and towers, known from the config alone -----------------------------------
# data_source synthetic: the synthetic world (rules/data.smk); stac: real sites, one tile
# around each, acquired from STAC APIs (rules/acquire.smk). Either way the later rules
# read the same raw layout.
SYNTHETIC = config["data_source"] == "synthetic"
SYNTH_CFG = config["synth"]
STAC_CFG = config["stac"]
if SYNTHETIC:
    TILES = plan.tile_ids(SYNTH_CFG)
    SITES = plan.site_plan(SYNTH_CFG)
    FIRST_YEAR, LAST_YEAR = years(SYNTH_CFG)
else:
    # The account keys the sources need, before any job is planned or submitted.
    check_credentials(STAC_CFG)
    TILES = real_sites.tile_ids(STAC_CFG)
    SITES = real_sites.site_plan(STAC_CFG)
    FIRST_YEAR, LAST_YEAR = years(STAC_CFG)
TILE_PATTERN = "|".join(re.escape(t) for t in TILES)  # constrains the {tile} wildcard
# The cube's input besides the catalog, per tile: the synthetic tile's folder, or the
# acquired tile's items.json (its folder is filled by one job per acquisition).
TILE_RAW = f"{RAW}/tiles/{{tile}}" if SYNTHETIC else f"{RAW}/tiles/{{tile}}/items.json"


def acquisition_batches(wildcards):
    """A real tile's batch item collections (rule acquire), from the manifest its STAC
    search wrote (checkpoint stac_search in rules/acquire.smk)."""
    from ecoembed.acquire.manifest import acquisition_batches

    manifest = checkpoints.stac_search.get(tile=wildcards.tile).output.manifest
    return [
        f"{RAW}/tiles/{wildcards.tile}/batches/{batch}.json"
        for batch in acquisition_batches(manifest, STAC_CFG["batch_size"])
    ]


def flux_file(site_id):
    """The FLUXNET2015 FULLSET daily file name of a site."""
    return fluxnet_dd_filename(site_id, FIRST_YEAR, LAST_YEAR)


# --- representation learning ----------------------------------------------------------
MODALITIES = ["s2", "s1"]


def pretrain_params(wildcards):
    """Stage-1 settings of one sensor, as ecoembed.models.settings.PretrainConfig takes them."""
    return {
        "size": config["context"]["size"],
        "frames": config["context"]["frames"],
        "latent_dim": config["latent_dim"],
        "seed": config["seed"],
        **config["pretrain"],
    }


def fusion_params(wildcards):
    """Stage-2 settings, as ecoembed.models.settings.FusionConfig takes them."""
    return {"embedding_dim": config["embedding_dim"], "seed": config["seed"], **config["fusion"]}


# --- provenance -------------------------------------------------------------------------
# Products record the config that made them. Sections read only by later stages are left
# out: a params change re-runs a rule, and re-plotting a figure or re-running the GPP
# evaluation must not re-run the export.
DOWNSTREAM_SECTIONS = {"export": ("reconstruction_eval", "gpp", "figures"), "gpp": ("figures",)}


def provenance_of(stage):
    recorded = {k: v for k, v in config.items() if k not in DOWNSTREAM_SECTIONS[stage]}
    return {"config_hash": config_hash(recorded), "config": recorded}


# --- export ---------------------------------------------------------------------------
def embed_provenance(wildcards):
    """What every exported product records about the run that made it (besides the
    checkpoint hashes, which the library reads from the checkpoint itself)."""
    return provenance_of("export")


def gpp_provenance(wildcards):
    """What the GPP predictions record about the run that made them."""
    return provenance_of("gpp")


# --- GPP evaluation -------------------------------------------------------------------
# Every configured input set, and each with the tower's meteorology.
GPP_INPUT_SETS = gpp_input_set_names(config["gpp"]["input_sets"])


def gpp_truths(wildcards):
    """The truth stores, read only by the oracle input set (synthetic world)."""
    if "oracle" in config["gpp"]["input_sets"]:
        return expand(f"{TRUTH}/{{tile}}.zarr", tile=TILES)
    return []


# --- figures --------------------------------------------------------------------------
# The reconstruction and temporal-fidelity figures show the synthetic truth.
TRUTH_FIGURES = ("reconstruction", "temporal_fidelity")
FIGURES = [f for f in FIGURE_NAMES if SYNTHETIC or f not in TRUTH_FIGURES]
FIGURE_TILE = config["figures"]["tile"] or TILES[0]  # one of TILES (validate_config)


def figure_output(name, category):
    """A figure's PNG, flagged for the report with its caption (report/<name>.rst)."""
    return report(
        f"results/figures/{name}.png",
        caption=f"../report/{name}.rst",
        category=category,
        labels={"figure": name},
    )


def figure_params(wildcards):
    """The figures section with its defaults resolved (the model: the first GPP model)."""
    return {
        **config["figures"],
        "tile": FIGURE_TILE,
        "model": config["figures"]["model"] or config["gpp"]["models"][0],
    }
