"""Rule tile_items: a tile's STAC ItemCollection from its acquisitions
(ecoembed.io.acquire.write_tile_items).

Outside Snakemake, for debugging:
    python workflow_scripts/tile_items.py MANIFEST OUT_ITEMS_JSON ACQUISITION_DIR [...]
"""

import argparse

import _common


def main(manifest, acquisitions, out) -> None:
    from ecoembed.io.acquire import write_tile_items

    write_tile_items(manifest, acquisitions, out)


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.input.manifest,
        list(snakemake.input.acquisitions),
        snakemake.output.item_collection,
    )
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="the tile's manifest")
    parser.add_argument("out", help="items.json to write")
    parser.add_argument("acquisitions", nargs="*", help="acquisition folders")
    args = parser.parse_args()
    _common.start_logging()
    main(args.manifest, args.acquisitions, args.out)
