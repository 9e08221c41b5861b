"""Rule tile_items: a tile's STAC ItemCollection from its acquire batches
(ecoembed.acquire.batches.write_tile_items).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/tile_items.py --configfile config/real_example.yaml tile=DE-Tha
"""

import _common


def main(manifest, batches, out) -> None:
    from ecoembed.acquire.batches import write_tile_items

    write_tile_items(manifest, batches, out)


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("tile_items", tile="DE-Tha")
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.input.manifest,
        list(snakemake.input.batches),
        snakemake.output.item_collection,
    )
