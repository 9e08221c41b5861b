# GPP evaluation at the flux towers (docs/design.md, "Evaluation protocol"): the daily inputs of
# every input set at every tower, out-of-fold predictions of every input set (one job per
# set, so sets run side by side), and the metrics table.


rule gpp_inputs:
    """Daily features of every input set and the towers' GPP and meteorology, one table."""
    input:
        embeddings=rules.site_embeddings.output.embeddings,
        sites=rules.site_embeddings.output.table,
        cubes=expand(CUBE, tile=TILES),
        truths=gpp_truths,
        flux=FLUX_FILES,
    output:
        table=GPP_INPUTS,
    params:
        tiles=TILES,
        site_ids=[s.site_id for s in SITES],
        gpp=config["gpp"],
        sites=config["sites"],
    log:
        log_of("gpp/inputs"),
    benchmark:
        benchmark_of("gpp/inputs")
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(20),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/gpp_inputs.py"


rule gpp_cv:
    """Cross-validated GPP predictions of one input set, by every model and split."""
    input:
        table=rules.gpp_inputs.output.table,
    output:
        predictions=GPP_CV,
    params:
        gpp=config["gpp"],
        seed=config["seed"],
    log:
        log_of("gpp/cv_{input_set}"),
    benchmark:
        benchmark_of("gpp/cv_{input_set}")
    wildcard_constraints:
        input_set="|".join(re.escape(s) for s in GPP_INPUT_SETS),
    threads: 1  # small models: one thread each, input sets side by side
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(60),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/gpp_cv.py"


rule gpp_eval:
    """Target: all predictions in one table, R², RMSE and bias per site and pooled, the
    pooled summary with bootstrap intervals and R² as a fraction of the oracle's, the
    paired differences of fused against every other set, and the skill decomposition."""
    input:
        predictions=expand(GPP_CV, input_set=GPP_INPUT_SETS),
        sites=FLUX_SITES,
    output:
        predictions=GPP_PREDICTIONS,
        metrics=report(
            GPP_METRICS,
            caption="../report/gpp_metrics.rst",
            category="GPP at the flux towers",
            labels={"result": "metrics per site and pooled (table)"},
        ),
        summary=report(
            GPP_SUMMARY,
            caption="../report/gpp_summary.rst",
            category="GPP at the flux towers",
            labels={"result": "pooled summary with intervals (table)"},
        ),
        differences=report(
            GPP_DIFFERENCES,
            caption="../report/gpp_differences.rst",
            category="GPP at the flux towers",
            labels={"result": "paired differences (table)"},
        ),
        decomposition=report(
            GPP_DECOMPOSITION,
            caption="../report/gpp_decomposition_table.rst",
            category="GPP at the flux towers",
            labels={"result": "skill decomposition (table)"},
        ),
    params:
        provenance=gpp_provenance,
        confidence=config["gpp_confidence"],
        seed=config["seed"],
    log:
        log_of("gpp/eval"),
    benchmark:
        benchmark_of("gpp/eval")
    threads: 1
    resources:
        mem_mb=per_attempt(3000),
        runtime=per_attempt(10),
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/gpp_eval.py"
