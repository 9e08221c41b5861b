"""Rule flux_files: copy the towers' FLUXNET files into the raw flux directory and merge the
per-tile site tables into one (see the comment at the top of rules/data.smk for why).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/collect_flux.py
"""

import shutil

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


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("flux_files")
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.params.sources,
        snakemake.output.files,
        snakemake.params.tables,
        snakemake.output.sites,
        snakemake.params.partitioning,
        float(snakemake.params.min_qc),
    )
