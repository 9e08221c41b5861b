"""Rule flux_real: the sites' FLUXNET files from the user's folder, cut to the study years,
and the site table from the config (ecoembed.io.fluxnet).

Outside Snakemake, for debugging:
    python workflow_scripts/collect_real_flux.py config/real_example.yaml OUT_DIR
"""

import argparse
from pathlib import Path

import _common


def main(flux_dir, sites: list[dict], first_year: int, last_year: int, outputs, table) -> None:
    import logging

    import pandas as pd

    from ecoembed.io.fluxnet import find_site_file, write_site_table, write_study_period

    log = logging.getLogger("ecoembed.workflow")
    for site, out in zip(sites, outputs, strict=True):
        source = find_site_file(flux_dir, site["id"])
        days = write_study_period(source, out, first_year, last_year)
        log.info("site %s: %d days from %s", site["id"], days, source)
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


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.params.flux_dir,
        list(snakemake.params.sites),
        int(snakemake.params.first_year),
        int(snakemake.params.last_year),
        list(snakemake.output.files),
        snakemake.output.sites,
    )
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config file with data_source: stac")
    parser.add_argument("out", type=Path, help="flux folder to write")
    args = parser.parse_args()
    _common.start_logging()
    from ecoembed.config import load_config
    from ecoembed.io.names import fluxnet_dd_filename

    study = load_config(args.config)["stac"]
    y1, y2 = int(study["start"][:4]), int(study["end"][:4])
    main(
        study["flux_dir"],
        study["sites"],
        y1,
        y2,
        [args.out / fluxnet_dd_filename(s["id"], y1, y2) for s in study["sites"]],
        args.out / "sites.csv",
    )
