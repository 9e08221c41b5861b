"""Rule acquire: one acquisition loaded onto its tile's grid, COGs and STAC item
(ecoembed.io.acquire.acquire_acquisition).

Outside Snakemake, for debugging:
    python workflow_scripts/acquire.py results/raw/manifests/DE-Tha.json ACQUISITION_ID /tmp/acq
"""

import argparse

import _common


def main(
    manifest, acquisition: str, out, resampling: str, retries: int, backoff_s: float, threads: int
) -> None:
    from ecoembed.io.acquire import acquire_acquisition

    acquire_acquisition(
        manifest,
        acquisition,
        out,
        resampling=resampling,
        retries=retries,
        backoff_s=backoff_s,
        threads=threads,
    )


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.input.manifest,
        snakemake.wildcards.acquisition,
        snakemake.output.acquisition,
        snakemake.params.resampling,
        int(snakemake.params.retries),
        float(snakemake.params.backoff_s),
        snakemake.threads,
    )
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="the tile's manifest (checkpoint stac_search)")
    parser.add_argument("acquisition", help="acquisition id in the manifest")
    parser.add_argument("out", help="folder to write")
    parser.add_argument("--resampling", default="nearest")
    args = parser.parse_args()
    _common.start_logging()
    main(args.manifest, args.acquisition, args.out, args.resampling, 4, 2.0, 2)
