"""Rule pretrain: stage-1 training of one sensor's context autoencoder (ecoembed.train).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/pretrain.py modality=s1 --configfile config/tiny.yaml
"""

from pathlib import Path

import _common


def main(cubes, modality: str, outputs: dict, cfg: dict, threads: int) -> None:
    import torch

    from ecoembed.io.zarrio import open_zarr
    from ecoembed.models.settings import PretrainConfig
    from ecoembed.train.pretrain import PretrainOutputs, pretrain
    from ecoembed.train.series import sensor_series

    torch.set_num_threads(max(1, threads))
    series = [sensor_series(open_zarr(c), modality) for c in cubes]
    out = PretrainOutputs(**{k: Path(v) for k, v in outputs.items()})
    pretrain(series, modality, out, PretrainConfig(**cfg), progress=True)


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("pretrain", modality="s2")
    _common.start_logging(snakemake.log[0])
    main(
        list(snakemake.input.cubes),
        snakemake.wildcards.modality,
        {
            "encoder": snakemake.output.encoder,
            "curves": snakemake.output.curves,
            "heldout": snakemake.output.heldout,
            "checkpoint": snakemake.params.checkpoint,
        },
        dict(snakemake.params.cfg),
        snakemake.threads,
    )
