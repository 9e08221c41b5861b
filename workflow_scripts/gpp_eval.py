"""Rule gpp_eval: all predictions in one table, the metrics, their intervals and the skill
decomposition (ecoembed.gpp.evaluate).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/gpp_eval.py
"""

import _common


def main(predictions, sites, outputs: dict, provenance: dict, confidence: dict, seed):
    from ecoembed.gpp.confidence import config_from
    from ecoembed.gpp.evaluate import collect, site_classes

    collect(
        predictions,
        outputs["predictions"],
        outputs["metrics"],
        provenance,
        outputs["summary"],
        outputs["differences"],
        outputs["decomposition"],
        igbp=site_classes(sites),
        bootstrap=config_from(confidence),
        seasonal_window_days=int(confidence["seasonal_window_days"]),
        seed=int(seed),
    )


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("gpp_eval")
    _common.start_logging(snakemake.log[0])
    main(
        list(snakemake.input.predictions),
        snakemake.input.sites,
        dict(snakemake.output.items()),
        dict(snakemake.params.provenance),
        dict(snakemake.params.confidence),
        snakemake.params.seed,
    )
