# Stage 1: self-supervised pretraining of one context autoencoder per sensor (stage 2, the
# fusion network over the frozen encoders, is in rules/fusion.smk).
#
# The resume checkpoint lives in results/models/checkpoints/ and is NOT a declared output:
# Snakemake deletes a job's outputs before running it, and a re-run after an interruption
# must find the last finished epoch there.

rule pretrain:
    """Train the encoder of one sensor on all tiles' cubes."""
    input:
        cubes=expand(CUBE, tile=TILES),
    output:
        encoder=protected(ENCODER),
        curves=PRETRAIN_CURVES,
        heldout=PRETRAIN_HELDOUT,
    params:
        cfg=pretrain_params,
        checkpoint=PRETRAIN_CHECKPOINT,
    log:
        log_of("pretrain/{modality}"),
    benchmark:
        benchmark_of("pretrain/{modality}")
    wildcard_constraints:
        modality="|".join(MODALITIES),
    threads: 1  # the two sensors train side by side on a 2-core laptop
    resources:
        mem_mb=per_attempt(6000),
        runtime=per_attempt(60),
        gpu=1,  # runs the model: on a CUDA device where there is one (train/device.py)
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/pretrain.py"


rule pretrained:
    """Target: the pretrained encoder of every sensor."""
    input:
        expand(ENCODER, modality=MODALITIES),


localrules:
    pretrained,
