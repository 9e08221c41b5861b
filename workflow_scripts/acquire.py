"""Rule acquire: one batch of a tile's acquisitions loaded onto its grid, COGs and STAC
item each, and the batch's ItemCollection (ecoembed.acquire.batches.acquire_batch).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/acquire.py --configfile config/real_example.yaml \
        tile=DE-Tha batch=sentinel-2-l2a-001
"""

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


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("acquire", tile="DE-Tha", batch="sentinel-2-l2a-001")
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
