"""Rule pretrain: stage-1 training of one sensor's context autoencoder (ecoembed.train).

Outside Snakemake, for debugging:
    python workflow_scripts/pretrain.py config.yaml s2 /tmp/models results/cube/*.zarr
"""

import argparse
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


if "snakemake" in globals():
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
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config file (validated, defaults filled in)")
    parser.add_argument("modality", choices=["s1", "s2"])
    parser.add_argument("out", type=Path, help="folder for the model outputs")
    parser.add_argument("cubes", nargs="+", help="the tiles' cube stores")
    args = parser.parse_args()
    _common.start_logging()
    from ecoembed.config import load_config
    from ecoembed.train.pretrain import PretrainOutputs

    c = load_config(args.config)
    cfg = {
        "size": c["context"]["size"],
        "frames": c["context"]["frames"],
        "latent_dim": c["latent_dim"],
        "seed": c["seed"],
        **c["pretrain"],
    }
    outs = PretrainOutputs.in_dir(args.out, args.modality)
    main(
        args.cubes,
        args.modality,
        {k: getattr(outs, k) for k in ("encoder", "curves", "heldout", "checkpoint")},
        cfg,
        1,
    )
