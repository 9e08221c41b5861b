"""Rule site_embeddings: daily footprint series at the flux towers (ecoembed.embed.sites).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/site_embeddings.py
"""

import _common


def main(cubes, tiles, model, sites, outputs: dict, cfg: dict, device, provenance, threads):
    import torch

    from ecoembed.embed.sites import extract_site_embeddings
    from ecoembed.train.device import resolve_device

    torch.set_num_threads(max(1, threads))
    extract_site_embeddings(
        dict(zip(tiles, cubes, strict=True)),
        model,
        sites,
        out_path=outputs["embeddings"],
        table_path=outputs["table"],
        radius_m=float(cfg["radius_m"]),
        stride_px=int(cfg["stride_px"]),
        provenance=provenance,
        device=resolve_device(device),
        progress=True,
    )


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("site_embeddings")
    _common.start_logging(snakemake.log[0])
    main(
        list(snakemake.input.cubes),
        list(snakemake.params.tiles),
        snakemake.input.model,
        snakemake.input.sites,
        dict(snakemake.output.items()),
        dict(snakemake.params.sites),
        snakemake.params.device,
        dict(snakemake.params.provenance),
        snakemake.threads,
    )
