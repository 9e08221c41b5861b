"""Rule gpp_cv: cross-validated GPP predictions of one input set (ecoembed.gpp.evaluate).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/gpp_cv.py input_set=fused+met
"""

import _common


def main(table, input_set, out, gpp: dict, seed, threads):
    import torch
    from threadpoolctl import threadpool_limits

    from ecoembed.gpp.evaluate import cross_validate_input_set

    torch.set_num_threads(max(1, threads))
    models = {name: dict(gpp[name]) for name in gpp["models"]}
    with threadpool_limits(max(1, threads)):  # scikit-learn's OpenMP threads
        cross_validate_input_set(
            table,
            input_set,
            out,
            window_days=int(gpp["window_days"]),
            lead_days=int(gpp["lead_days"]),
            models=models,
            splits=list(gpp["splits"]),
            seed=int(seed),
        )


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("gpp_cv", input_set="fused")
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.input.table,
        snakemake.wildcards.input_set,
        snakemake.output.predictions,
        dict(snakemake.params.gpp),
        snakemake.params.seed,
        snakemake.threads,
    )
