# Figures, one rule each, into results/figures/<name>.png, and every one in the report.
#
# Plotting rules read finished products only (they never train or export), so
# `snakemake results/figures/gpp_scatter.png` re-runs nothing upstream that is up to date.
# What they show is set by the config's `figures` section (figure_params in common.smk).


rule figure_embedding_map:
    """One tile and date: S2 true colour, an S1 composite, the fused embedding's PCs."""
    input:
        cube=f"results/cube/{FIGURE_TILE}.zarr",
        embeddings=f"results/embeddings/{FIGURE_TILE}.zarr",
    output:
        figure=figure_output("embedding_map", "Embeddings"),
    params:
        name="embedding_map",
        figures=figure_params,
    log:
        f"{LOGS}/figures/embedding_map.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/plot_figure.py"


rule figure_reconstruction:
    """A cloudy S2 date, its reconstruction, the clear-sky truth and the error map."""
    input:
        cube=f"results/cube/{FIGURE_TILE}.zarr",
        reconstruction=f"results/reconstruction/{FIGURE_TILE}.zarr",
        truth=f"{TRUTH}/{FIGURE_TILE}.zarr",
    output:
        figure=figure_output("reconstruction", "Embeddings"),
    params:
        name="reconstruction",
        figures=figure_params,
    log:
        f"{LOGS}/figures/reconstruction.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/plot_figure.py"


rule figure_temporal_fidelity:
    """Embedding and NDVI over a season at a harvested field and a mown meadow."""
    input:
        cube=f"results/cube/{FIGURE_TILE}.zarr",
        embeddings=f"results/embeddings/{FIGURE_TILE}.zarr",
        reconstruction=f"results/reconstruction/{FIGURE_TILE}.zarr",
        truth=f"{TRUTH}/{FIGURE_TILE}.zarr",
    output:
        figure=figure_output("temporal_fidelity", "Embeddings"),
    params:
        name="temporal_fidelity",
        figures=figure_params,
    log:
        f"{LOGS}/figures/temporal_fidelity.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/plot_figure.py"


rule figure_gpp_timeseries:
    """Observed and predicted GPP per tower: fused against the best baseline."""
    input:
        predictions=rules.gpp_eval.output.predictions,
        metrics=rules.gpp_eval.output.metrics,
    output:
        figure=figure_output("gpp_timeseries", "GPP at the flux towers"),
    params:
        name="gpp_timeseries",
        figures=figure_params,
    log:
        f"{LOGS}/figures/gpp_timeseries.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/plot_figure.py"


rule figure_gpp_scatter:
    """Predicted against observed GPP, pooled, one panel per input set."""
    input:
        predictions=rules.gpp_eval.output.predictions,
        metrics=rules.gpp_eval.output.metrics,
    output:
        figure=figure_output("gpp_scatter", "GPP at the flux towers"),
    params:
        name="gpp_scatter",
        figures=figure_params,
    log:
        f"{LOGS}/figures/gpp_scatter.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/plot_figure.py"


rule figure_gpp_skill:
    """Pooled R² and RMSE per input set, model and cross-validation."""
    input:
        metrics=rules.gpp_eval.output.metrics,
    output:
        figure=figure_output("gpp_skill", "GPP at the flux towers"),
    params:
        name="gpp_skill",
        figures=figure_params,
    log:
        f"{LOGS}/figures/gpp_skill.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/plot_figure.py"


rule figure_training_curves:
    """Losses of both training stages per epoch."""
    input:
        pretrain_s2="results/models/pretrain_s2_curves.csv",
        pretrain_s1="results/models/pretrain_s1_curves.csv",
        fusion="results/models/fusion_curves.csv",
    output:
        figure=figure_output("training_curves", "Training"),
    params:
        name="training_curves",
        figures=figure_params,
    log:
        f"{LOGS}/figures/training_curves.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/plot_figure.py"


rule figures:
    """Target: every figure."""
    input:
        expand("results/figures/{name}.png", name=FIGURES),


localrules:
    figures,
