"""Rule train_fusion: stage-2 training of the fusion network (ecoembed.train.fusion).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/train_fusion.py --configfile config/tiny.yaml
"""

from pathlib import Path

import _common


def main(cubes, encoders: dict, outputs: dict, cfg: dict, threads: int) -> None:
    import torch

    from ecoembed.io.zarrio import open_zarr
    from ecoembed.models.settings import FusionConfig
    from ecoembed.train.fusion import FusionOutputs, train_fusion
    from ecoembed.train.series import sensor_series

    torch.set_num_threads(max(1, threads))
    opened = [open_zarr(c) for c in cubes]
    train_fusion(
        [sensor_series(c, "s2") for c in opened],
        [sensor_series(c, "s1") for c in opened],
        encoders,
        FusionOutputs(**{k: Path(v) for k, v in outputs.items()}),
        FusionConfig(**cfg),
        progress=True,
    )


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("train_fusion")
    _common.start_logging(snakemake.log[0])
    main(
        list(snakemake.input.cubes),
        {"s2": snakemake.input.encoder_s2, "s1": snakemake.input.encoder_s1},
        {
            "model": snakemake.output.model,
            "curves": snakemake.output.curves,
            "heldout": snakemake.output.heldout,
            "checkpoint": snakemake.params.checkpoint,
        },
        dict(snakemake.params.cfg),
        snakemake.threads,
    )
