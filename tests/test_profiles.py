"""Snakemake profiles (issue #9): profiles/default stays minimal; profiles/slurm sends the
model rules to a GPU partition and retries every job with more memory and time.

The rules are read from rules/*.smk as text (their ``resources:`` block), so the profile
cannot drift from them unnoticed; tests/cluster/run_slurm.sh submits them for real.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from snakemake.cli import parse_set_resources
from snakemake.resources import Resources

REPO = Path(__file__).resolve().parents[1]
SLURM = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8"))


def rule_blocks() -> dict[str, str]:
    """Each rule's text in rules/*.smk, by name."""
    blocks = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        parts = re.split(r"^rule (\w+):\n", smk.read_text(encoding="utf-8"), flags=re.M)
        blocks.update(dict(zip(parts[1::2], parts[2::2], strict=True)))
    return blocks


def local_rules() -> set[str]:
    names = set()
    for smk in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        for block in re.findall(r"^localrules:\n((?:    .*\n)+)", smk.read_text(), flags=re.M):
            names |= {n.strip().rstrip(",") for n in block.splitlines()}
    return names


def declared(block: str) -> dict[str, int]:
    """The integer resources a rule declares (mem_mb=6000, gpu=1 ...)."""
    m = re.search(r"^    resources:\n((?:        .*\n)+)", block, flags=re.M)
    return {k: int(v) for k, v in re.findall(r"^\s+(\w+)=(\d+)", m[1], flags=re.M)} if m else {}


RULES = rule_blocks()
JOB_RULES = {n: b for n, b in RULES.items() if n not in local_rules()}


def evaluate(rule: str, attempt: int) -> dict:
    """The profile's set-resources of a rule as Snakemake parses and evaluates them."""
    entries = [f"{rule}:{k}={v}" for k, v in SLURM["set-resources"].get(rule, {}).items()]
    parsed: Resources = parse_set_resources(entries).get(rule, Resources())
    return {
        name: res.evaluate(
            wildcards=None, input=None, attempt=attempt, threads=1, rulename=rule, async_run=None
        ).value
        for name, res in parsed.items()
    }


def test_every_job_rule_declares_threads_memory_runtime_and_a_log():
    assert len(JOB_RULES) >= 15
    for name, block in JOB_RULES.items():
        assert re.search(r"^    threads: \d+", block, flags=re.M), name
        assert {"mem_mb", "runtime"} <= declared(block).keys(), name
        assert re.search(r"^    log:\n", block, flags=re.M), name


def test_the_rules_that_run_the_model_ask_for_a_gpu_and_only_those():
    gpu = {n for n, b in JOB_RULES.items() if declared(b).get("gpu") == 1}
    assert gpu == {"pretrain", "train_fusion", "embed", "embed_daily", "site_embeddings"}


def test_gpu_rules_go_to_the_gpu_partition_the_rest_to_the_cpu_one():
    assert SLURM["executor"] == "slurm"
    assert SLURM["default-resources"]["slurm_partition"] == "cpu"
    for name, block in JOB_RULES.items():
        partition = SLURM["set-resources"].get(name, {}).get("slurm_partition", "cpu")
        assert partition == ("gpu" if declared(block).get("gpu") else "cpu"), name


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_retries_scale_the_rules_own_memory_and_runtime(attempt):
    """Attempt 1 asks for what the rule declares, attempt k for k times as much."""
    assert SLURM["retries"] >= 1
    scaled = 0
    for name in SLURM["set-resources"]:
        assert name in JOB_RULES, f"set-resources names no rule {name!r}"
        res, own = evaluate(name, attempt), declared(JOB_RULES[name])
        for key in ("mem_mb", "runtime"):
            if key in res:
                assert res[key] == own[key] * attempt, (name, key)
                scaled += 1
    assert scaled >= 2 * 8


def test_default_profile_stays_minimal():
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert set(default) <= {"show-failed-logs", "rerun-incomplete", "printshellcmds"}
    # a --workflow-profile replaces profiles/default: the slurm profile repeats its settings
    assert {k: SLURM.get(k) for k in default} == default
