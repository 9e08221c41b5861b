# Export: the fused embedding of every pixel on every S2 date (and, optionally, every day),
# the reflectance decoded from it, the daily series at the flux towers, and the
# measured quality of the cloud-free reconstruction.
#
# Every product is computed from the cube and the fusion checkpoint alone (the checkpoint
# carries both frozen encoders), the same path `python -m ecoembed embed` takes.


rule embed:
    """One tile's embeddings on its S2 dates and the reflectance decoded from them."""
    input:
        cube=CUBE,
        model=FUSION,
    output:
        embeddings=directory(EMBEDDINGS),
        reconstruction=directory(RECONSTRUCTION),
    params:
        embed=export_settings(daily=False),
        provenance=embed_provenance,
    log:
        log_of("embed/{tile}"),
    benchmark:
        benchmark_of("embed/{tile}")
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 2
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(120),
        gpu=1,  # runs the model: on a CUDA device where there is one (train/device.py)
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/embed_tile.py"


rule embed_daily:
    """One tile's daily product: an embedding for every calendar day."""
    input:
        cube=CUBE,
        model=FUSION,
    output:
        daily=directory(EMBEDDINGS_DAILY),
    params:
        embed=export_settings(daily=True),
        provenance=embed_provenance,
    log:
        log_of("embed_daily/{tile}"),
    benchmark:
        benchmark_of("embed_daily/{tile}")
    wildcard_constraints:
        tile=TILE_PATTERN,
    threads: 2
    resources:
        mem_mb=per_attempt(6000),
        runtime=per_attempt(240),
        gpu=1,  # runs the model: on a CUDA device where there is one (train/device.py)
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/embed_tile.py"


rule site_embeddings:
    """Daily fused, S2-only and S1-only series at every flux tower's footprint."""
    input:
        cubes=expand(CUBE, tile=TILES),
        model=FUSION,
        sites=FLUX_SITES,
    output:
        embeddings=SITE_EMBEDDINGS,
        table=SITE_TABLE,
    params:
        tiles=TILES,
        sites=config["sites"],
        device=config["embed"]["device"],
        provenance=embed_provenance,
    log:
        log_of("site_embeddings"),
    benchmark:
        benchmark_of("site_embeddings")
    threads: 2
    resources:
        mem_mb=per_attempt(3000),
        runtime=per_attempt(60),
        gpu=1,  # runs the model: on a CUDA device where there is one (train/device.py)
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/site_embeddings.py"


rule eval_reconstruction:
    """Reconstruction error under clouds (by truth cloud class, after unseen harvests and
    mowings, by cloud-gap length) and on days without S2, against two baselines; and the
    image-quality measures of the cloud-removal literature (PSNR, SSIM, SAM)."""
    input:
        reconstructions=expand(RECONSTRUCTION, tile=TILES),
        cubes=expand(CUBE, tile=TILES),
        truths=expand(TRUTH, tile=TILES),
        model=FUSION,
    output:
        table=RECONSTRUCTION_EVAL,
        image_quality=report(
            IMAGE_QUALITY_EVAL,
            caption="../report/image_quality.rst",
            category="Embeddings",
            labels={"result": "reconstruction image quality (table)"},
        ),
    params:
        tiles=TILES,
        eval=config["reconstruction_eval"],
        window_px=config["embed"]["window_px"],
        seed=config["seed"],
    log:
        log_of("eval_reconstruction"),
    benchmark:
        benchmark_of("eval_reconstruction")
    threads: 2
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(60),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/eval_reconstruction.py"


rule embeddings:
    """Target: every tile's embeddings and reconstruction (and daily product if enabled),
    the towers' series, and the reconstruction evaluation."""
    input:
        expand(EMBEDDINGS, tile=TILES),
        expand(RECONSTRUCTION, tile=TILES),
        expand(EMBEDDINGS_DAILY, tile=TILES) if config["embed"]["daily"] else [],
        rules.site_embeddings.output,
        rules.eval_reconstruction.output if SYNTHETIC else [],  # needs the synthetic truth


localrules:
    embeddings,
