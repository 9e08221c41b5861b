# Shared by every .smk file: config validation, the paths of every output family, what the
# world contains, resources that grow with the attempt.
#
# Runs at DAG-building time (and again in every cluster job), so only light, pure-Python
# imports here: no numpy, torch or raster libraries.

import re

from snakemake.utils import min_version

from ecoembed.config import config_hash, validate_config
from ecoembed.acquire import sites as real_sites
from ecoembed.acquire.credentials import check_credentials
from ecoembed.io.names import FIGURE_NAMES, fluxnet_dd_filename, gpp_input_set_names
from ecoembed.io.sensors import SENSOR_NAMES, SENSORS
from ecoembed.io.sites import years
from ecoembed.synth import plan

min_version("9.0")


# --- config: validated before any job runs ------------------------------------------
# snakemake.utils.validate against the JSON schema the package ships
# (ecoembed/config.schema.yaml; defaults filled in, in place), after turning unquoted YAML
# dates into ISO strings, plus the checks a schema cannot express (real dates, start before
# end). The error names the key at fault. The same function backs
# ecoembed.config.load_config and `python -m ecoembed validate-config`.
validate_config(config)


# --- paths: every output family, in one place -----------------------------------------
# Patterns with the wildcards the rules match ({tile}, {modality}, ...): rules name them as
# outputs and inputs, and expand() them over TILES, SENSOR_NAMES, ... . Nothing else in
# rules/ writes a path by hand. Everything goes under results/ (relative to the working
# directory); the raw inputs under config raw_dir (results/raw by default).
RESULTS = "results"
RAW = config["raw_dir"].rstrip("/")  # raw inputs in the layout real products have
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"

# raw inputs (rules/data.smk or rules/acquire.smk, and rules/catalog.smk)
RAW_TILE = f"{RAW}/tiles/{{tile}}"  # a tile's COGs and items.json
RAW_ITEMS = f"{RAW_TILE}/items.json"  # the tile's STAC ItemCollection
RAW_BATCH = f"{RAW_TILE}/batches/{{batch}}.json"  # one acquire job's items (real data)
RAW_MANIFEST = f"{RAW}/manifests/{{tile}}.json"  # a real tile's STAC search
RAW_PLAN = f"{RAW}/plan.csv"
CATALOG = f"{RAW}/catalog.json"
RAW_COLLECTION = f"{RAW}/{{collection}}"  # a collection beside the catalog
FLUX_DIR = f"{RAW}/flux"
FLUX_SITES = f"{FLUX_DIR}/sites.csv"
# the synthetic world's ground truth, and its towers' files before rule flux_files
TRUTH = f"{RESULTS}/truth/{{tile}}.zarr"
SYNTH_FLUX = f"{RESULTS}/synth/flux/{{tile}}"
# products
CUBE = f"{RESULTS}/cube/{{tile}}.zarr"
MODELS = f"{RESULTS}/models"
ENCODER = f"{MODELS}/encoder_{{modality}}.pt"
PRETRAIN_CURVES = f"{MODELS}/pretrain_{{modality}}_curves.csv"
PRETRAIN_HELDOUT = f"{MODELS}/pretrain_{{modality}}_heldout.csv"
FUSION = f"{MODELS}/fusion.pt"
FUSION_CURVES = f"{MODELS}/fusion_curves.csv"
FUSION_HELDOUT = f"{MODELS}/fusion_heldout.csv"
# resume checkpoints: not declared outputs (rules/pretrain.smk says why)
PRETRAIN_CHECKPOINT = f"{MODELS}/checkpoints/pretrain_{{modality}}.pt"
FUSION_CHECKPOINT = f"{MODELS}/checkpoints/fusion.pt"
EMBEDDINGS = f"{RESULTS}/embeddings/{{tile}}.zarr"
RECONSTRUCTION = f"{RESULTS}/reconstruction/{{tile}}.zarr"
EMBEDDINGS_DAILY = f"{RESULTS}/embeddings_daily/{{tile}}.zarr"
SITE_EMBEDDINGS = f"{RESULTS}/sites/site_embeddings.parquet"
SITE_TABLE = f"{RESULTS}/sites/sites.csv"
RECONSTRUCTION_EVAL = f"{RESULTS}/eval/reconstruction.csv"
IMAGE_QUALITY_EVAL = f"{RESULTS}/eval/image_quality.csv"
GPP = f"{RESULTS}/gpp"
GPP_INPUTS = f"{GPP}/inputs.parquet"
GPP_CV = f"{GPP}/cv/{{input_set}}.parquet"
GPP_PREDICTIONS = f"{GPP}/predictions.parquet"
GPP_METRICS = f"{GPP}/metrics.csv"
GPP_SUMMARY = f"{GPP}/summary.csv"
GPP_DIFFERENCES = f"{GPP}/differences.csv"
GPP_DECOMPOSITION = f"{GPP}/decomposition.csv"
FIGURE = f"{RESULTS}/figures/{{name}}.png"


def at(pattern, **wildcards):
    """One path of a pattern: at(CUBE, tile="tile00") is results/cube/tile00.zarr."""
    return pattern.format(**wildcards)


def log_of(job):
    """A job's log, results/logs/<job>.log (job: the rule, with its wildcards in it)."""
    return f"{LOGS}/{job}.log"


def benchmark_of(job):
    """A job's benchmark, results/benchmarks/<job>.tsv."""
    return f"{BENCHMARKS}/{job}.tsv"


# --- resources ------------------------------------------------------------------------
def per_attempt(amount):
    """A resource that grows with the attempt: ``amount`` on the first, twice as much on the
    second (a job killed for memory or time, retried with --retries, as the SLURM
    profile does), and so on."""

    def scaled(wildcards, attempt):
        return amount * attempt

    return scaled


# --- tiles and towers, known from the config alone -----------------------------------
# data_source synthetic: the synthetic world (rules/data.smk); stac: real sites, one tile
# around each, acquired from STAC APIs (rules/acquire.smk). Either way the later rules
# read the same raw layout.
SYNTHETIC = config["data_source"] == "synthetic"
SYNTH_CFG = config["synth"]
# the world's own seed, so that `seed` can vary training on one world (benchmarks/seeds.py)
WORLD_SEED = config["seed"] if config["world_seed"] is None else config["world_seed"]
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
TILE_RAW = RAW_TILE if SYNTHETIC else RAW_ITEMS


def acquisition_batches(wildcards):
    """A real tile's batch item collections (rule acquire), from the manifest its STAC
    search wrote (checkpoint stac_search in rules/acquire.smk)."""
    from ecoembed.acquire.manifest import acquisition_batches

    manifest = checkpoints.stac_search.get(tile=wildcards.tile).output.manifest
    return [
        at(RAW_BATCH, tile=wildcards.tile, batch=batch)
        for batch in acquisition_batches(manifest, STAC_CFG["batch_size"])
    ]


def flux_file(site_id):
    """The FLUXNET2015 FULLSET daily file name of a site."""
    return fluxnet_dd_filename(site_id, FIRST_YEAR, LAST_YEAR)


# every tower's FLUXNET file in {RAW}/flux/, in the order of SITES
FLUX_FILES = [f"{FLUX_DIR}/{flux_file(s.site_id)}" for s in SITES]


# --- representation learning ----------------------------------------------------------
# One encoder per sensor of the registry (ecoembed.io.sensors), in its order.
MODALITIES = list(SENSOR_NAMES)


def pretrain_params(wildcards):
    """Stage-1 settings of one sensor, as ecoembed.models.settings.PretrainConfig takes them."""
    return {
        "size": config["context"]["size"],
        "frames": config["context"]["frames"],
        "latent_dim": config["latent_dim"],
        "seed": config["seed"],
        **config["pretrain"],
        "centre_skip": wildcards.modality in config["pretrain"]["centre_skip"],
    }


def fusion_params(wildcards):
    """Stage-2 settings, as ecoembed.models.settings.FusionConfig takes them."""
    return {"embedding_dim": config["embedding_dim"], "seed": config["seed"], **config["fusion"]}


# --- provenance -------------------------------------------------------------------------
# Products record the config that made them. Sections read only by later stages are left
# out: a params change re-runs a rule, and re-plotting a figure or re-running the GPP
# evaluation must not re-run the export.
DOWNSTREAM_SECTIONS = {
    "export": ("reconstruction_eval", "gpp", "gpp_confidence", "figures"),
    "gpp": ("figures",),
}


def provenance_of(stage):
    recorded = {k: v for k, v in config.items() if k not in DOWNSTREAM_SECTIONS[stage]}
    return {"config_hash": config_hash(recorded), "config": recorded}


# --- export ---------------------------------------------------------------------------
def export_settings(daily: bool) -> dict:
    """The embed section as the export jobs read it. The S2-date export ignores the daily
    product's keys, so that changing them reruns embed_daily only."""
    return {k: v for k, v in config["embed"].items() if daily or not k.startswith("daily")}


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
        return expand(TRUTH, tile=TILES)
    return []


# --- figures --------------------------------------------------------------------------
# The reconstruction and temporal-fidelity figures show the synthetic truth.
TRUTH_FIGURES = ("reconstruction", "temporal_fidelity")
FIGURES = [f for f in FIGURE_NAMES if SYNTHETIC or f not in TRUTH_FIGURES]
FIGURE_TILE = config["figures"]["tile"] or TILES[0]  # one of TILES (validate_config)


def figure_output(name, category):
    """A figure's PNG, flagged for the report with its caption (report/<name>.rst)."""
    return report(
        at(FIGURE, name=name),
        caption=f"../report/{name}.rst",
        category=category,
        labels={"result": f"{name} (figure)"},
    )


def figure_params(wildcards):
    """The figures section with its defaults resolved (the model: the first GPP model)."""
    return {
        **config["figures"],
        "tile": FIGURE_TILE,
        "model": config["figures"]["model"] or config["gpp"]["models"][0],
    }
