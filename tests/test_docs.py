"""The documentation cannot cite what does not exist: every test that docs/bad-inputs.md
names as the one showing a refusal is a test function of that file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_test_cited_in_the_bad_input_table_exists():
    text = (REPO / "docs" / "bad-inputs.md").read_text(encoding="utf-8")
    current = None
    cited = []
    # "test_x.py::test_a`, `::test_b" -- a bare ::name is of the file named before it
    for file, name in re.findall(r"(test_\w+\.py)?::(test_\w+)", text):
        current = file or current
        cited.append((current, name))
    assert len(cited) > 40
    missing = [
        f"{file}::{name}"
        for file, name in cited
        if name not in defined_functions(REPO / "tests" / file)
    ]
    assert missing == []


# --- the documentation site and its generated pages --------------------------------------

import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import yaml  # noqa: E402

sys.path.insert(0, str(REPO / "docs"))
import generate  # noqa: E402


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def test_the_docs_build_strictly(tmp_path):
    run = mkdocs_build(REPO / "mkdocs.yml", tmp_path / "site")
    assert run.returncode == 0, run.stdout + run.stderr
    page = (tmp_path / "site" / "configuration" / "index.html").read_text(encoding="utf-8")
    assert "fusion.other_tokens" in page
    assert (tmp_path / "site" / "results" / "index.html").is_file()


def test_a_broken_link_fails_the_docs_build(tmp_path):
    """Strict mode is what catches a link to a page or anchor that does not exist."""
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs)
    cfg = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.UnsafeLoader)
    cfg["docs_dir"] = str(docs)
    (tmp_path / "mkdocs.yml").write_text(yaml.dump(cfg), encoding="utf-8")
    page = docs / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n[gone](gpp.md#no-such-section)\n")
    run = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert run.returncode != 0
    assert "no-such-section" in run.stdout + run.stderr


def test_the_generated_pages_are_current():
    """docs/configuration.md, docs/results.md's tables and the README's headline are what
    docs/generate.py makes of their sources (the schema, docs/data/seeds/)."""
    assert generate.main(["--check"]) == 0


def test_a_stale_generated_page_is_found(tmp_path, monkeypatch, capsys):
    page = tmp_path / "configuration.md"
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    page.write_text(text.replace("| `42` |", "| `41` |", 1), encoding="utf-8")
    monkeypatch.setattr(generate, "CONFIG_PAGE", page)
    assert generate.main(["--check"]) == 1
    assert "configuration.md" in capsys.readouterr().err
    assert generate.main([]) == 0
    assert page.read_text(encoding="utf-8") == text


def test_type_text_reads_the_schema_as_a_user_would():
    assert (
        generate.type_text(
            {"type": "integer", "minimum": 1, "maximum": 9, "not": {"multipleOf": 2}}
        )
        == "integer 1-9, odd"
    )
    assert generate.type_text({"type": ["integer", "null"], "minimum": 0}) == "integer >= 0 or null"
    assert generate.type_text({"enum": ["mse", "huber", "l1"]}) == "`mse`, `huber` or `l1`"
    assert (
        generate.type_text({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1})
        == "number in (0, 1)"
    )
    items = {"type": "array", "items": {"type": "string", "enum": ["s2", "s1"]}}
    assert generate.type_text(items) == "list of `s2` or `s1`"


def test_the_published_seed_tables_give_the_headline():
    """The README's headline numbers are the means over seeds of the published tables."""
    import pandas as pd

    skill = pd.read_csv(REPO / "docs" / "data" / "seeds" / "skill.csv")
    fused = skill[
        (skill.input_set == "fused") & (skill.model == "temporal_net") & (skill.split == "loso")
    ]
    assert len(fused) == len(json_seeds()) and fused["r2"].notna().all()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"| `fused` | {fused['r2'].mean():.3f} ± {fused['r2'].std():.3f} |" in readme


def json_seeds() -> list[str]:
    import json

    stamp = json.loads((REPO / "docs" / "data" / "seeds" / "stamp.json").read_text())
    return [s.strip() for s in stamp["seeds"].split(",")]


def test_the_readme_is_short():
    """A newcomer reads it in five minutes; the rest lives in docs/."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 250


def test_a_published_benchmark_becomes_its_block_with_the_stamp(tmp_path):
    """benchmarks/record.py writes table + stamp; docs/generate.py shows exactly those."""
    import pandas as pd

    sys.path.insert(0, str(REPO / "benchmarks"))
    import record

    table = pd.DataFrame({"tile (px)": ["512 x 512"], "pixel-dates/s": ["22,100"]})
    record.publish(
        "export",
        table,
        ["2.87 MFLOP per pixel-date."],
        folder=tmp_path,
        argv=[str(REPO / "benchmarks" / "export.py"), "--sizes", "512", "--publish"],
        regenerate=False,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv", "export.json"]
    block = generate.bench_block("export", tmp_path)
    assert "`python benchmarks/export.py --sizes 512`" in block  # --publish is not part of it
    assert "| tile (px) | pixel-dates/s |\n|---|---|\n| 512 x 512 | 22,100 |" in block
    assert "- 2.87 MFLOP per pixel-date." in block
    assert "cores" in block  # the machine it ran on
    missing = generate.bench_block("cube_memory", tmp_path)
    assert missing.startswith("Not published yet: `python benchmarks/cube_memory.py --publish`")
    page = "x\n<!-- bench:export:start -->\nold\n<!-- bench:export:end -->\n"
    for name in generate.BENCHMARKS:
        if name != "export":
            page += f"<!-- bench:{name}:start -->\n<!-- bench:{name}:end -->\n"
    assert "22,100" in generate.bench_page(page, tmp_path)
    assert "old" not in generate.bench_page(page, tmp_path)
