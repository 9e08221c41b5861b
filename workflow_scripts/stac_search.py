"""Checkpoint stac_search: STAC search over one site's tile, the manifest of its
acquisitions (ecoembed.acquire.search.search_tile).

Outside Snakemake, for debugging:
    python workflow_scripts/stac_search.py config/real_example.yaml DE-Tha /tmp/DE-Tha.json
"""

import argparse

import _common


def main(tile: str, site: dict, study: dict, manifest) -> None:
    from ecoembed.acquire.search import search_tile

    search_tile(tile, site, study, manifest)


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.wildcards.tile,
        dict(snakemake.params.site),
        dict(snakemake.params.study),
        snakemake.output.manifest,
    )
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config file with data_source: stac")
    parser.add_argument("tile", help="site id, e.g. DE-Tha")
    parser.add_argument("manifest", help="manifest JSON to write")
    args = parser.parse_args()
    _common.start_logging()
    from ecoembed.config import load_config

    study = load_config(args.config)["stac"]
    site = next(s for s in study["sites"] if s["id"] == args.tile)
    main(args.tile, site, study, args.manifest)
