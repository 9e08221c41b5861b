"""Rule gpp_inputs: daily features of every input set at every tower
(ecoembed.evaluation.oracle).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/gpp_inputs.py
"""

import _common


def main(embeddings, sites, cubes, tiles, truths, flux, site_ids, out, gpp: dict, fp: dict):
    from ecoembed.evaluation.oracle import write_inputs_table

    write_inputs_table(
        embeddings,
        sites,
        dict(zip(tiles, cubes, strict=True)),
        dict(zip(tiles, truths, strict=True)) if truths else None,
        dict(zip(site_ids, flux, strict=True)),
        out,
        names=list(gpp["input_sets"]),
        partitioning=gpp["partitioning"],
        min_qc=float(gpp["min_qc"]),
        radius_m=float(fp["radius_m"]),
        stride_px=int(fp["stride_px"]),
    )


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("gpp_inputs")
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.input.embeddings,
        snakemake.input.sites,
        list(snakemake.input.cubes),
        list(snakemake.params.tiles),
        list(snakemake.input.truths),
        list(snakemake.input.flux),
        list(snakemake.params.site_ids),
        snakemake.output.table,
        dict(snakemake.params.gpp),
        dict(snakemake.params.sites),
    )
