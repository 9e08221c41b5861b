"""Every figure rule: one figure from its inputs (ecoembed.plots.figures)."""

import _common


def main(name: str, inputs: dict, figures: dict, output: str):
    from ecoembed.plots.figures import make_figure

    make_figure(name, inputs, figures, output)


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(
        snakemake.params.name,
        dict(snakemake.input.items()),
        dict(snakemake.params.figures),
        snakemake.output.figure,
    )
