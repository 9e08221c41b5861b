# Stage 1: self-supervised pretraining of one context autoencoder per sensor.
#
# The resume checkpoint lives in results/models/checkpoints/ and is NOT a declared output:
# Snakemake deletes a job's outputs before running it, and a re-run after an interruption
# must find the last finished epoch there.

rule pretrain:
    """Train the encoder of one sensor on all tiles' cubes."""
    input:
        cubes=expand("results/cube/{tile}.zarr", tile=TILES),
    output:
        encoder=protected("results/models/encoder_{modality}.pt"),
        curves="results/models/pretrain_{modality}_curves.csv",
        heldout="results/models/pretrain_{modality}_heldout.csv",
    params:
        cfg=pretrain_params,
        checkpoint="results/models/checkpoints/pretrain_{modality}.pt",
    log:
        f"{LOGS}/pretrain/{{modality}}.log",
    benchmark:
        f"{BENCHMARKS}/pretrain/{{modality}}.tsv"
    wildcard_constraints:
        modality="|".join(MODALITIES),
    threads: 1  # the two sensors train side by side on a 2-core laptop
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/pretrain.py"


rule pretrained:
    """Target: the pretrained encoder of every sensor."""
    input:
        expand("results/models/encoder_{modality}.pt", modality=MODALITIES),


localrules:
    pretrained,
