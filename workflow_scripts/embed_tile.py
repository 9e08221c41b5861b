"""Rules embed and embed_daily: one tile's products (ecoembed.embed.export).

The same export is available outside Snakemake as ``python -m ecoembed embed``.

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/embed_tile.py tile=tile00 [--rule embed_daily]
"""

import _common


def main(cube, model, outputs: dict, embed_cfg: dict, provenance: dict, threads: int) -> None:
    import torch

    from ecoembed.embed.export import export_tile
    from ecoembed.train.device import resolve_device

    torch.set_num_threads(max(1, threads))
    export_tile(
        cube,
        model,
        embeddings_path=outputs.get("embeddings"),
        reconstruction_path=outputs.get("reconstruction"),
        daily_path=outputs.get("daily"),
        window_px=int(embed_cfg["window_px"]),
        daily_start=embed_cfg.get("daily_start"),
        daily_end=embed_cfg.get("daily_end"),
        provenance=provenance,
        device=resolve_device(embed_cfg["device"]),
        precision=embed_cfg["precision"],
        progress=True,
    )


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("embed", tile="tile00")
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.input.cube,
        snakemake.input.model,
        dict(snakemake.output.items()),
        dict(snakemake.params.embed),
        dict(snakemake.params.provenance),
        snakemake.threads,
    )
