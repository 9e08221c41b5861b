"""Rule flux_real: the sites' FLUXNET files from the user's folder, cut to the study years,
and the site table from the config (ecoembed.io.fluxnet).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/collect_real_flux.py --configfile config/real_example.yaml
"""

import _common


def main(
    flux_dir,
    sites: list[dict],
    first_year: int,
    last_year: int,
    outputs,
    table,
    partitioning: str,
    min_qc: float,
) -> None:
    import logging

    import pandas as pd

    from ecoembed.io.fluxnet import find_site_file, study_period, write_fluxnet_dd, write_site_table

    log = logging.getLogger("ecoembed.workflow")
    # Every site's file read and checked (plausible values, a day of GPP as the GPP
    # evaluation will filter it) before any is written, so a bad one leaves nothing behind.
    periods = []
    for site in sites:
        source = find_site_file(flux_dir, site["id"])
        period = study_period(
            source,
            first_year,
            last_year,
            partitioning=partitioning,
            min_qc=min_qc,
            site=site["id"],
        )
        periods.append(period)
        log.info("site %s: %d days from %s", site["id"], len(period), source)
    for period, out in zip(periods, outputs, strict=True):
        write_fluxnet_dd(period, out)
    rows = [
        {
            "SITE_ID": s["id"],
            "LOCATION_LAT": s["lat"],
            "LOCATION_LONG": s["lon"],
            "IGBP": s["igbp"],
        }
        for s in sites
    ]
    write_site_table(pd.DataFrame(rows), table)


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("flux_real")
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.params.flux_dir,
        list(snakemake.params.sites),
        int(snakemake.params.first_year),
        int(snakemake.params.last_year),
        list(snakemake.output.files),
        snakemake.output.sites,
        snakemake.params.partitioning,
        float(snakemake.params.min_qc),
    )
