"""Rule gpp_eval: all predictions in one table and the metrics (ecoembed.gpp.evaluate).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/gpp_eval.py
"""

import _common


def main(predictions, out_predictions, out_metrics, out_summary, provenance: dict):
    from ecoembed.gpp.evaluate import collect

    collect(predictions, out_predictions, out_metrics, provenance, out_summary)


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("gpp_eval")
    _common.start_logging(snakemake.log[0])
    main(
        list(snakemake.input.predictions),
        snakemake.output.predictions,
        snakemake.output.metrics,
        snakemake.output.summary,
        dict(snakemake.params.provenance),
    )
