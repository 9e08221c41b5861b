"""Rule stac_catalog: one STAC catalog over the tiles' item collections (ecoembed.io.stac).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/build_catalog.py --configfile config/tiny.yaml
"""

from pathlib import Path

import _common


def main(item_collections, catalog) -> None:
    from ecoembed.io.stac import build_catalog

    build_catalog([Path(p) for p in item_collections], Path(catalog))


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("stac_catalog")
    _common.start_logging(snakemake.log[0])
    main(snakemake.params.item_collections, snakemake.output.catalog)
