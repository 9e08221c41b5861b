# Stage 2: the fusion network over the frozen encoders of stage 1 (rules/pretrain.smk).
#
# Its resume checkpoint, like stage 1's, lives in results/models/checkpoints/ and is not a
# declared output (a re-run after an interruption must find the last finished epoch there).


# The encoders are plain inputs (no ancient()): a re-run of pretraining (new parameters,
# code or cubes) must re-run the fusion, and everything downstream, in the same invocation.
# An encoder file rewritten with the same content only costs a fusion re-run; a killed
# fusion job still resumes, since its checkpoint is matched by the encoders' SHA-256.
rule train_fusion:
    """Stage 2: the fusion network over both frozen encoders, on all tiles' cubes."""
    input:
        cubes=expand(CUBE, tile=TILES),
        # encoder_s2, encoder_s1: one per sensor of the registry
        **{f"encoder_{m}": at(ENCODER, modality=m) for m in MODALITIES},
    output:
        model=protected(FUSION),
        curves=FUSION_CURVES,
        heldout=FUSION_HELDOUT,
    params:
        cfg=fusion_params,
        checkpoint=FUSION_CHECKPOINT,
    log:
        log_of("train_fusion"),
    benchmark:
        benchmark_of("train_fusion")
    threads: 2
    resources:
        mem_mb=per_attempt(6000),
        runtime=per_attempt(60),
        gpu=1,  # runs the model: on a CUDA device where there is one (train/device.py)
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/train_fusion.py"
