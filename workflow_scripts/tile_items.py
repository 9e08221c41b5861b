"""Rule tile_items: a tile's STAC ItemCollection from its acquire batches
(ecoembed.acquire.batches.write_tile_items).

Outside Snakemake, for debugging:
    python workflow_scripts/tile_items.py MANIFEST OUT_ITEMS_JSON BATCH_JSON [...]
"""

import argparse

import _common


def main(manifest, batches, out) -> None:
    from ecoembed.acquire.batches import write_tile_items

    write_tile_items(manifest, batches, out)


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.input.manifest,
        list(snakemake.input.batches),
        snakemake.output.item_collection,
    )
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="the tile's manifest")
    parser.add_argument("out", help="items.json to write")
    parser.add_argument("batches", nargs="*", help="the batches' item collections")
    args = parser.parse_args()
    _common.start_logging()
    main(args.manifest, args.batches, args.out)
