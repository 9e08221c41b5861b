"""The library's layering holds in the code, and docs/design.md draws it as it is
(docs/layers.py is the one statement of which package may import which)."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_layers():
    spec = importlib.util.spec_from_file_location("layers", REPO / "docs" / "layers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["layers"] = module
    spec.loader.exec_module(module)
    return module


layers = load_layers()


def test_no_import_breaks_the_layers_and_the_design_graph_is_current(capsys):
    assert layers.main(["--check"]) == 0, capsys.readouterr().err


def test_the_imports_seen_include_relative_and_function_level_ones():
    edges = layers.import_edges()
    assert edges[("embed", "models")] >= 2
    assert edges[("cube", "io")] >= 3
    assert all(src != dst for src, dst in edges)


def test_inference_reading_the_trainer_or_the_method_reading_a_producer_is_refused():
    bad = Counter({("embed", "train"): 1, ("gpp", "synth"): 1, ("io", "cube"): 1})
    found = layers.violations(bad)
    assert found == [
        "embed imports train, a sibling",
        "gpp imports synth: the method must not read a data producer",
        "io imports cube, a higher layer",
    ]
    assert layers.violations(Counter({("gpp", "embed"): 3, ("synth", "io"): 1})) == []


def test_a_package_outside_every_layer_is_named():
    assert layers.violations(Counter({("newthing", "io"): 1})) == [
        "newthing: not in any layer (docs/layers.py LAYERS)"
    ]
