# ecoembed: context-aware multimodal Earth-observation embeddings (Sentinel-1 + Sentinel-2),
# evaluated on flux-tower GPP. See README.md and docs/ (docs/design.md: the design).
#
#   snakemake --cores 2 synthesize                       the synthetic world (embedded default)
#   snakemake --cores 2 cubes                            analysis-ready cubes of every tile
#   snakemake --cores 2 pretrained                       stage 1: one encoder per sensor
#   snakemake --cores 2 train_fusion                     stage 2: the fusion network
#   snakemake --cores 2 embeddings                       export, tower series, reconstruction eval
#   snakemake --cores 2 gpp_eval                         GPP at the flux towers: predictions, metrics
#   snakemake --cores 2 figures                          every figure, results/figures/*.png
#   snakemake --report results/report.html               the report (after the figures)
#   snakemake --cores 2 --configfile config/tiny.yaml    the same, test-sized
#
# The embedded default config.yaml is always read; --configfile files override its keys.
# Everything the workflow writes goes under results/ (relative to the working directory);
# the paths of every output family are in rules/common.smk. One rule's script by hand, on a
# mock of its job: python workflow_scripts/<script>.py [wildcard=value ...] (see _common.py).

from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


configfile: Path(workflow.basedir) / "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/catalog.smk"


# Raw inputs: the synthetic world, or real acquisitions (config data_source).
if SYNTHETIC:

    include: "rules/data.smk"

else:

    include: "rules/acquire.smk"


include: "rules/cube.smk"
include: "rules/pretrain.smk"
include: "rules/fusion.smk"
include: "rules/embed.smk"
include: "rules/gpp.smk"
include: "rules/figures.smk"


rule all:
    default_target: True
    input:
        rules.synthesize.input if SYNTHETIC else rules.acquired.input,
        rules.cubes.input,
        rules.pretrained.input,
        rules.train_fusion.output,
        rules.embeddings.input,
        rules.gpp_eval.output,
        rules.figures.input,


localrules:
    all,
