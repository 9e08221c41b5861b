"""Checkpoint stac_search: STAC search over one site's tile, the manifest of its
acquisitions (ecoembed.acquire.search.search_tile).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/stac_search.py --configfile config/real_example.yaml tile=DE-Tha
"""

import _common


def main(tile: str, site: dict, study: dict, manifest) -> None:
    from ecoembed.acquire.search import search_tile

    search_tile(tile, site, study, manifest)


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("stac_search", tile="DE-Tha")
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.wildcards.tile,
        dict(snakemake.params.site),
        dict(snakemake.params.study),
        snakemake.output.manifest,
    )
