"""Rule gpp_eval: all predictions in one table and the metrics (ecoembed.gpp.evaluate)."""

import _common


def main(predictions, out_predictions, out_metrics, out_summary, provenance: dict):
    from ecoembed.gpp.evaluate import collect

    collect(predictions, out_predictions, out_metrics, provenance, out_summary)


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        list(snakemake.input.predictions),
        snakemake.output.predictions,
        snakemake.output.metrics,
        snakemake.output.summary,
        dict(snakemake.params.provenance),
    )
