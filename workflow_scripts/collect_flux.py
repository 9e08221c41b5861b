"""Rule flux_files: copy the towers' FLUXNET files into the raw flux directory and merge the
per-tile site tables into one (see the comment at the top of rules/data.smk for why).

Outside Snakemake, for debugging:
    python workflow_scripts/collect_flux.py OUT_DIR results/synth/flux/tile00 [...]
"""

import argparse
import shutil
from pathlib import Path

import _common


def main(sources, outputs, tables, sites, partitioning: str, min_qc: float) -> None:
    import pandas as pd

    from ecoembed.io.atomic import atomic_path
    from ecoembed.io.fluxnet import read_daily_gpp, read_site_table, write_site_table
    from ecoembed.io.names import parse_fluxnet_filename

    # Every file checked before any is copied, as the GPP evaluation will read it (a tower
    # without a day of GPP would drop out of it), so a bad one leaves nothing behind.
    for source in sources:
        site = str(parse_fluxnet_filename(source)["site"])
        read_daily_gpp(source, partitioning=partitioning, min_qc=min_qc, met=(), site=site)
    for source, output in zip(sources, outputs, strict=True):
        with atomic_path(output, replace="any") as tmp:
            shutil.copyfile(source, tmp)
    merged = pd.concat([read_site_table(p) for p in tables], ignore_index=True)
    write_site_table(merged, sites)


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.params.sources,
        snakemake.output.files,
        snakemake.params.tables,
        snakemake.output.sites,
        snakemake.params.partitioning,
        float(snakemake.params.min_qc),
    )
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="flux directory to write")
    parser.add_argument("parts", type=Path, nargs="+", help="per-tile flux directories")
    parser.add_argument("--partitioning", default="NT", help="gpp.partitioning (NT, DT, mean)")
    parser.add_argument("--min-qc", type=float, default=0.5, help="gpp.min_qc")
    args = parser.parse_args()
    _common.start_logging()
    sources = sorted(p for part in args.parts for p in part.glob("FLX_*.csv"))
    main(
        sources,
        [args.out / p.name for p in sources],
        sorted(p for part in args.parts for p in part.glob("sites_*.csv")),
        args.out / "sites.csv",
        args.partitioning,
        args.min_qc,
    )
