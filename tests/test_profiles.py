"""Snakemake profiles (issue #9): profiles/default stays minimal; profiles/slurm maps jobs
onto partitions and retries them, while the rules' own resources grow with the attempt.

The rules are read through Snakemake (the workflow parsed by its API, jobs built as a run
builds them: workflow_scripts/_common.py), so the checks see what a run would submit;
tests/cluster/run_slurm.sh submits them for real.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SLURM = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8"))
sys.path.insert(0, str(REPO / "workflow_scripts"))
import _common  # noqa: E402

# The synthetic world (default config) and real data (its rules in rules/acquire.smk), and
# a value for each wildcard of their rules, to build one job of each.
CONFIGS = {"synthetic": [], "stac": [REPO / "config" / "real_example.yaml"]}
WILDCARDS = {
    "synthetic": {"tile": "tile00", "modality": "s2", "input_set": "fused"},
    "stac": {"tile": "DE-Tha", "modality": "s1", "input_set": "s1", "batch": "sentinel-1-rtc-001"},
}
MODEL_RULES = {"pretrain", "train_fusion", "embed", "embed_daily", "site_embeddings"}


@pytest.fixture(scope="module", params=list(CONFIGS))
def workflow(request, tmp_path_factory):
    """The workflow on each data source's config, parsed in an empty working directory."""
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp_path_factory.mktemp("profiles"))
    mp.setenv("PC_SDK_SUBSCRIPTION_KEY", "x")  # checked at DAG time by the stac config
    with _common.loaded_workflow(CONFIGS[request.param]) as wf:
        yield wf
    mp.undo()


def job_rules(workflow) -> list:
    """The rules that compute (run a script), local or not."""
    return [r for r in workflow.rules if r.script]


def job(workflow, rule, attempt: int = 1):
    values = WILDCARDS[workflow.config["data_source"]]
    wildcards = {w: values[w] for w in rule.wildcard_names}
    return _common.job_snakemake(workflow, rule.name, attempt, **wildcards)


def test_every_computing_rule_declares_threads_memory_runtime_a_log_and_a_benchmark(workflow):
    rules = job_rules(workflow)
    assert len(rules) >= 15
    for rule in rules:
        first = job(workflow, rule)
        assert first.threads >= 1, rule.name
        assert {"mem_mb", "runtime"} <= set(rule.resources), rule.name
        assert len(first.log) == 1, rule.name
        assert rule.benchmark is not None, rule.name


def test_the_rules_that_run_the_model_ask_for_a_gpu_and_only_those(workflow):
    gpu = {r.name for r in job_rules(workflow) if job(workflow, r).resources.get("gpu") == 1}
    assert gpu == MODEL_RULES


def test_gpu_rules_go_to_the_gpu_partition_the_rest_to_the_cpu_one(workflow):
    assert SLURM["executor"] == "slurm"
    assert SLURM["default-resources"]["slurm_partition"] == "cpu"
    names = {r.name for r in job_rules(workflow)}
    assert set(SLURM["set-resources"]) <= names, "set-resources names no rule"
    for name in names:
        partition = SLURM["set-resources"].get(name, {}).get("slurm_partition", "cpu")
        assert partition == ("gpu" if name in MODEL_RULES else "cpu"), name


def test_the_real_data_rules_are_covered(workflow):
    names = {r.name for r in job_rules(workflow)}
    if workflow.config["data_source"] == "stac":
        assert {"stac_search", "plan", "acquire", "tile_items", "flux_real"} <= names
    else:
        assert {"synthesize_tile", "flux_files"} <= names


def test_the_slurm_profile_keeps_only_executor_settings():
    """Memory and runtime are the rules' own (they scale with the attempt there); the
    profile only maps jobs onto partitions."""
    assert SLURM["retries"] >= 1
    assert set(SLURM["default-resources"]) == {"slurm_partition"}
    for name, resources in SLURM["set-resources"].items():
        assert set(resources) == {"slurm_partition"}, name


@pytest.mark.parametrize("attempt", [2, 3])
def test_retries_scale_the_rules_own_memory_and_runtime(workflow, attempt):
    """Attempt 1 asks for what the rule declares, attempt k for k times as much, as
    Snakemake evaluates a job's resources on a retry."""
    scaled = 0
    for rule in job_rules(workflow):
        first, retry = job(workflow, rule).resources, job(workflow, rule, attempt).resources
        for key in ("mem_mb", "runtime"):
            assert retry[key] == first[key] * attempt, (rule.name, key)
            scaled += 1
    assert scaled >= 2 * 15


def test_first_attempt_asks_for_what_the_rule_declares(workflow):
    cube = job(workflow, workflow.get_rule("cube")).resources
    assert (cube["mem_mb"], cube["runtime"]) == (3000, 30)
    fusion = job(workflow, workflow.get_rule("train_fusion"), attempt=2).resources
    assert (fusion["mem_mb"], fusion["runtime"], fusion["gpu"]) == (12000, 120, 1)


def test_default_profile_stays_minimal():
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert set(default) <= {"show-failed-logs", "rerun-incomplete", "printshellcmds"}
    # a --workflow-profile replaces profiles/default: the slurm profile repeats its settings
    assert {k: SLURM.get(k) for k in default} == default
