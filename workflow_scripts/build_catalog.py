"""Rule stac_catalog: one STAC catalog over the tiles' item collections (ecoembed.io.stac).

Outside Snakemake, for debugging:
    python workflow_scripts/build_catalog.py results/raw/catalog.json results/raw/tiles/*/items.json
"""

import argparse
from pathlib import Path

import _common


def main(item_collections, catalog) -> None:
    from ecoembed.io.stac import build_catalog

    build_catalog([Path(p) for p in item_collections], Path(catalog))


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(snakemake.params.item_collections, snakemake.output.catalog)
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalog", help="catalog.json to write")
    parser.add_argument("item_collections", nargs="+", help="items.json of each tile")
    args = parser.parse_args()
    _common.start_logging()
    main(args.item_collections, args.catalog)
