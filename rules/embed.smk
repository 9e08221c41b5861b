# Export: the fused embedding of every pixel on every S2 date (and, optionally, every day),
# the reflectance decoded from it, the daily series at the flux towers, and the
# measured quality of the cloud-free reconstruction.
#
# Every product is computed from the cube and the fusion checkpoint alone (the checkpoint
# carries both frozen encoders), the same path `python -m ecoembed embed` takes.


rule embed:
    """One tile's embeddings on its S2 dates and the reflectance decoded from them."""
    input:
        cube="results/cube/{tile}.zarr",
        model="results/models/fusion.pt",
    output:
        embeddings=directory("results/embeddings/{tile}.zarr"),
        reconstruction=directory("results/reconstruction/{tile}.zarr"),
    params:
        embed=config["embed"],
        provenance=embed_provenance,
    log:
        f"{LOGS}/embed/{{tile}}.log",
    benchmark:
        f"{BENCHMARKS}/embed/{{tile}}.tsv"
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,  # runs the model: on a CUDA device where there is one (train/device.py)
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/embed_tile.py"


rule embed_daily:
    """One tile's daily product: an embedding for every calendar day."""
    input:
        cube="results/cube/{tile}.zarr",
        model="results/models/fusion.pt",
    output:
        daily=directory("results/embeddings_daily/{tile}.zarr"),
    params:
        embed=config["embed"],
        provenance=embed_provenance,
    log:
        f"{LOGS}/embed_daily/{{tile}}.log",
    benchmark:
        f"{BENCHMARKS}/embed_daily/{{tile}}.tsv"
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=1,  # runs the model: on a CUDA device where there is one (train/device.py)
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/embed_tile.py"


rule site_embeddings:
    """Daily fused, S2-only and S1-only series at every flux tower's footprint."""
    input:
        cubes=expand("results/cube/{tile}.zarr", tile=TILES),
        model="results/models/fusion.pt",
        sites=f"{RAW}/flux/sites.csv",
    output:
        embeddings="results/sites/site_embeddings.parquet",
        table="results/sites/sites.csv",
    params:
        tiles=TILES,
        sites=config["sites"],
        device=config["embed"]["device"],
        provenance=embed_provenance,
    log:
        f"{LOGS}/site_embeddings.log",
    benchmark:
        f"{BENCHMARKS}/site_embeddings.tsv"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=60,
        gpu=1,  # runs the model: on a CUDA device where there is one (train/device.py)
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/site_embeddings.py"


rule eval_reconstruction:
    """Reconstruction error under clouds and on days without S2, against two baselines."""
    input:
        reconstructions=expand("results/reconstruction/{tile}.zarr", tile=TILES),
        cubes=expand("results/cube/{tile}.zarr", tile=TILES),
        truths=expand(f"{TRUTH}/{{tile}}.zarr", tile=TILES),
        model="results/models/fusion.pt",
    output:
        table="results/eval/reconstruction.csv",
    params:
        tiles=TILES,
        eval=config["reconstruction_eval"],
        window_px=config["embed"]["window_px"],
        seed=config["seed"],
    log:
        f"{LOGS}/eval_reconstruction.log",
    benchmark:
        f"{BENCHMARKS}/eval_reconstruction.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/eval_reconstruction.py"


rule embeddings:
    """Target: every tile's embeddings and reconstruction (and daily product if enabled),
    the towers' series, and the reconstruction evaluation."""
    input:
        expand("results/embeddings/{tile}.zarr", tile=TILES),
        expand("results/reconstruction/{tile}.zarr", tile=TILES),
        expand("results/embeddings_daily/{tile}.zarr", tile=TILES) if config["embed"]["daily"] else [],
        rules.site_embeddings.output,
        rules.eval_reconstruction.output if SYNTHETIC else [],  # needs the synthetic truth


localrules:
    embeddings,
