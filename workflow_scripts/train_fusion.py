"""Rule train_fusion: stage-2 training of the fusion network (ecoembed.train.fusion).

Outside Snakemake, for debugging:
    python workflow_scripts/train_fusion.py config.yaml results/models results/cube/*.zarr
"""

import argparse
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


if "snakemake" in globals():
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
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config file (validated, defaults filled in)")
    parser.add_argument("models", type=Path, help="folder with encoder_s2.pt and encoder_s1.pt")
    parser.add_argument("cubes", nargs="+", help="the tiles' cube stores")
    args = parser.parse_args()
    _common.start_logging()
    from ecoembed.config import load_config
    from ecoembed.train.fusion import FusionOutputs

    c = load_config(args.config)
    outs = FusionOutputs.in_dir(args.models)
    main(
        args.cubes,
        {m: args.models / f"encoder_{m}.pt" for m in ("s2", "s1")},
        {k: getattr(outs, k) for k in ("model", "curves", "heldout", "checkpoint")},
        {"embedding_dim": c["embedding_dim"], "seed": c["seed"], **c["fusion"]},
        1,
    )
