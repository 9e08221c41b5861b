"""Every figure rule: one figure from its inputs (ecoembed.plots.figures).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/plot_figure.py --rule figure_embedding_map
"""

import _common


def main(name: str, inputs: dict, figures: dict, output: str):
    from ecoembed.plots.figures import make_figure

    make_figure(name, inputs, figures, output)


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("figure_gpp_scatter")
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.params.name,
        dict(snakemake.input.items()),
        dict(snakemake.params.figures),
        snakemake.output.figure,
    )
