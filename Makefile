# Two commands (see README.md):
#   make run    set up .venv (first time only), build the workflow's main target, summarize it
#   make test   set up .venv (first time only) and run the tests
#   make docs   build the documentation site into site/
# The virtualenv is created here from pyproject.toml; nothing needs installing by hand.
# It is reinstalled only when pyproject.toml changes (the stamp file below).

PYTHON ?= python3
VENV ?= .venv
CORES ?= $(shell nproc 2>/dev/null || echo 2)
# The main target: the GPP evaluation at the flux towers (TARGET=all adds the whole-tile
# export and the reconstruction evaluation).
TARGET ?= gpp_eval

BIN := $(VENV)/bin
# The installer: uv (from PyPI, into .venv) resolves and installs the same releases as pip
# in about 15 s where pip takes about 2 min (measured 2026-12-04, docs/experiments.md); pip
# itself takes over where uv cannot be had. uv does not read pip's configuration, so pip's
# find-links (e.g. a local CPU wheel of torch) are passed on.
UV_FIND_LINKS := $(foreach d,$(PIP_FIND_LINKS) $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null),--find-links $(d))
STAMP := $(VENV)/.ecoembed-installed

.PHONY: setup run test lint docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "ecoembed needs Python >= 3.11; run e.g. 'make PYTHON=python3.11 ...'" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	{ $(BIN)/python -m pip install -q uv \
	  && $(BIN)/uv pip install -q --python $(BIN)/python $(UV_FIND_LINKS) -e '.[dev]'; } \
	  || $(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# After the workflow, what came out (python -m ecoembed summary). Its exit status does not
# fail `make run`: a target without the GPP tables (TARGET=embeddings) leaves it no summary.
run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(TARGET)
	-$(BIN)/python -m ecoembed summary

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakemake --lint --cores 1

# The documentation site (docs/, mkdocs.yml) into site/; open site/index.html. Strict: a
# broken link or a missing page fails, as in the tests.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Removes what the workflow wrote (results/ and Snakemake's metadata), not the virtualenv.
clean:
	rm -rf results .snakemake
