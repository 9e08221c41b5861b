"""Rule acquire: one batch of a tile's acquisitions loaded onto its grid, COGs and STAC
item each, and the batch's ItemCollection (ecoembed.acquire.batches.acquire_batch).

Outside Snakemake, for debugging:
    python workflow_scripts/acquire.py results/raw/manifests/DE-Tha.json sentinel-2-l2a-001 \
        results/raw/tiles/DE-Tha /tmp/batch.json
"""

import argparse

import _common


def main(
    manifest,
    batch: str,
    tile_dir,
    out,
    *,
    batch_size: int,
    resampling: str,
    retries: int,
    backoff_s: float,
    threads: int,
    verify: str,
) -> None:
    from ecoembed.acquire.batches import acquire_batch

    acquire_batch(
        manifest,
        batch,
        tile_dir,
        out,
        batch_size=batch_size,
        resampling=resampling,
        retries=retries,
        backoff_s=backoff_s,
        threads=threads,
        verify=verify,
    )


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.input.manifest,
        snakemake.wildcards.batch,
        snakemake.params.tile_dir,
        snakemake.output.batch,
        batch_size=int(snakemake.params.batch_size),
        resampling=snakemake.params.resampling,
        retries=int(snakemake.params.retries),
        backoff_s=float(snakemake.params.backoff_s),
        threads=snakemake.threads,
        verify=snakemake.params.verify,
    )
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="the tile's manifest (checkpoint stac_search)")
    parser.add_argument("batch", help="batch id, e.g. sentinel-2-l2a-001")
    parser.add_argument("tile_dir", help="the tile's raw folder")
    parser.add_argument("out", help="the batch's item collection to write")
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--resampling", default="nearest")
    parser.add_argument("--verify", default="auto")
    args = parser.parse_args()
    _common.start_logging()
    main(
        args.manifest,
        args.batch,
        args.tile_dir,
        args.out,
        batch_size=args.batch_size,
        resampling=args.resampling,
        retries=4,
        backoff_s=2.0,
        threads=2,
        verify=args.verify,
    )
