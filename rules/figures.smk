# Figures into results/figures/<name>.png, every one in the report: one rule per figure,
# rule figure_<name>, generated from the table below.
#
# Plotting rules read finished products only (they never train or export), so
# `snakemake results/figures/gpp_scatter.png` re-runs nothing upstream that is up to date.
# What they show is set by the config's `figures` section (figure_params in common.smk).
# A new figure: a row here, its plot in ecoembed.plots.figures, its caption
# report/<name>.rst.
#
# name -> what it shows, its report category, its inputs (the names make_figure reads),
# and its memory (MB, first attempt).
FIGURE_TABLE = {
    "embedding_map": dict(
        shows="One tile and date: S2 true colour, an S1 composite, the fused embedding's PCs.",
        category="Embeddings",
        inputs={
            "cube": at(CUBE, tile=FIGURE_TILE),
            "embeddings": at(EMBEDDINGS, tile=FIGURE_TILE),
        },
        mem_mb=2000,
    ),
    "reconstruction": dict(
        shows="A cloudy S2 date, its reconstruction, the clear-sky truth and the error map.",
        category="Embeddings",
        inputs={
            "cube": at(CUBE, tile=FIGURE_TILE),
            "reconstruction": at(RECONSTRUCTION, tile=FIGURE_TILE),
            "truth": at(TRUTH, tile=FIGURE_TILE),
        },
        mem_mb=3000,
    ),
    "temporal_fidelity": dict(
        shows="Embedding and NDVI over a season at a harvested field and a mown meadow.",
        category="Embeddings",
        inputs={
            "cube": at(CUBE, tile=FIGURE_TILE),
            "embeddings": at(EMBEDDINGS, tile=FIGURE_TILE),
            "reconstruction": at(RECONSTRUCTION, tile=FIGURE_TILE),
            "truth": at(TRUTH, tile=FIGURE_TILE),
        },
        mem_mb=2000,
    ),
    "gpp_timeseries": dict(
        shows="Observed and predicted GPP per tower: fused against the best baseline.",
        category="GPP at the flux towers",
        inputs={"predictions": GPP_PREDICTIONS, "metrics": GPP_METRICS},
        mem_mb=2000,
    ),
    "gpp_scatter": dict(
        shows="Predicted against observed GPP, pooled, one panel per input set.",
        category="GPP at the flux towers",
        inputs={"predictions": GPP_PREDICTIONS, "metrics": GPP_METRICS},
        mem_mb=2000,
    ),
    "gpp_skill": dict(
        shows="Pooled R² and RMSE with intervals, and paired differences of fused.",
        category="GPP at the flux towers",
        inputs={"summary": GPP_SUMMARY, "differences": GPP_DIFFERENCES},
        mem_mb=1000,
    ),
    "gpp_decomposition": dict(
        shows="R² across sites, of the seasonal cycle, of anomalies, and per IGBP class.",
        category="GPP at the flux towers",
        inputs={"decomposition": GPP_DECOMPOSITION},
        mem_mb=1000,
    ),
    "training_curves": dict(
        shows="Losses of both training stages per epoch.",
        category="Training",
        inputs={
            # pretrain_s2, pretrain_s1: one per sensor of the registry
            **{f"pretrain_{m}": at(PRETRAIN_CURVES, modality=m) for m in MODALITIES},
            "fusion": FUSION_CURVES,
        },
        mem_mb=1000,
    ),
}
assert set(FIGURE_TABLE) == set(FIGURE_NAMES), "one row per figure of ecoembed.plots"


for figure_name, figure in FIGURE_TABLE.items():

    rule:
        name:
            f"figure_{figure_name}"
        input:
            **figure["inputs"],
        output:
            figure=figure_output(figure_name, figure["category"]),
        params:
            name=figure_name,
            figures=figure_params,
        log:
            log_of(f"figures/{figure_name}"),
        benchmark:
            benchmark_of(f"figures/{figure_name}")
        threads: 1
        resources:
            mem_mb=per_attempt(figure["mem_mb"]),
            runtime=per_attempt(10),
        conda:
            "../envs/cpu.yaml"
        script:
            "../workflow_scripts/plot_figure.py"

    # a generated rule cannot have a docstring literal: its description, for --list-rules
    workflow.get_rule(f"figure_{figure_name}").docstring = figure["shows"]


rule figures:
    """Target: every figure."""
    input:
        expand(FIGURE, name=FIGURES),


localrules:
    figures,
