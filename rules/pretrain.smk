# Stage 1: self-supervised pretraining of one context autoencoder per sensor;
# stage 2: the fusion network over the frozen encoders.
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
        gpu=1,  # runs the model: on a CUDA device where there is one (train/device.py)
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


# The encoders are plain inputs (no ancient()): a re-run of pretraining (new parameters,
# code or cubes) must re-run the fusion, and everything downstream, in the same invocation.
# An encoder file rewritten with the same content only costs a fusion re-run; a killed
# fusion job still resumes, since its checkpoint is matched by the encoders' SHA-256.
rule train_fusion:
    """Stage 2: the fusion network over both frozen encoders, on all tiles' cubes."""
    input:
        cubes=expand("results/cube/{tile}.zarr", tile=TILES),
        encoder_s2="results/models/encoder_s2.pt",
        encoder_s1="results/models/encoder_s1.pt",
    output:
        model=protected("results/models/fusion.pt"),
        curves="results/models/fusion_curves.csv",
        heldout="results/models/fusion_heldout.csv",
    params:
        cfg=fusion_params,
        checkpoint="results/models/checkpoints/fusion.pt",
    log:
        f"{LOGS}/train_fusion.log",
    benchmark:
        f"{BENCHMARKS}/train_fusion.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=1,  # runs the model: on a CUDA device where there is one (train/device.py)
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/train_fusion.py"
