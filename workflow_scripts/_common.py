"""Shared by the workflow scripts: the library on sys.path, logging into the rule's log, and
a mock of the ``snakemake`` object for running a rule's script by hand.

Snakemake puts this directory on sys.path of every script it runs (and Python does the
same when a script is run by hand), so scripts simply ``import _common``.

Every script has one code path: it reads the ``snakemake`` object Snakemake injects. Run by
hand (``python workflow_scripts/build_cube.py``, in a debugger, under ``torchrun``), it
builds that object with :func:`mock_snakemake` from the real workflow instead, as
PyPSA-Eur's scripts do, so its input, output, params, log, wildcards and resources are
exactly those of the job in the DAG::

    python workflow_scripts/build_cube.py                      # the script's default job
    python workflow_scripts/build_cube.py tile=tile01 --configfile config/tiny.yaml
    python workflow_scripts/embed_tile.py --rule embed_daily   # another rule, same script
    python -c 'import sys; sys.path.insert(0, "workflow_scripts"); import _common;
               print(_common.mock_snakemake("cube", tile="tile00").output.cube)'

Run it from the workflow's working directory (where results/ is): the paths are the rules'
own, relative to it. The job's inputs must exist, as for Snakemake; nothing upstream is run.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The workflow uses the library of its own checkout, also in a conda environment
# (--sdm conda) that has ecoembed's dependencies but not ecoembed itself installed.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
SNAKEFILE = REPO / "Snakefile"
_BY_HAND = False  # set by by_hand(): a person at a terminal, not Snakemake, is watching


def _report_to(log: Any, terminal: Any, log_path: Path):
    """An excepthook: the whole traceback into the log, its last line on the terminal."""

    def report(kind, value, tb) -> None:
        traceback.print_exception(kind, value, tb, file=log)
        print(f"{kind.__name__}: {value}\n(traceback in {log_path})", file=terminal)

    return report


def start_logging(log_path: str | Path | None = None) -> logging.Logger:
    """Route logging, warnings and an uncaught traceback to ``log_path`` (stderr if None).

    Under Snakemake, pass ``snakemake.log[0]``: stderr itself is redirected there, so a
    crash leaves its traceback in the rule's log, which Snakemake shows on failure.
    """
    stream = sys.stderr
    if log_path is not None:
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "w", buffering=1, encoding="utf-8")
        sys.stderr = stream
        if _BY_HAND:  # the traceback goes to the log; the terminal gets the error and where
            sys.excepthook = _report_to(stream, sys.__stderr__, log_path)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=stream,
        force=True,
    )
    logging.captureWarnings(True)
    return logging.getLogger("ecoembed.workflow")


@contextmanager
def loaded_workflow(configfiles: Sequence[str | Path] = ()) -> Iterator[Any]:
    """The workflow of this checkout's Snakefile, parsed by Snakemake's API under the
    embedded config.yaml and ``configfiles`` (as --configfile), in the current working
    directory: its rules, config and resources as a run would have them."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
    )

    configs = [Path(f).resolve() for f in configfiles]
    for path in configs:
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow_api = api.workflow(
            # as --cores all: a job gets the threads its rule declares, up to the machine's
            resource_settings=ResourceSettings(cores=os.cpu_count() or 1),
            config_settings=ConfigSettings(configfiles=configs),
            snakefile=SNAKEFILE,
            workdir=Path.cwd(),
        )
        workflow_api.dag(dag_settings=DAGSettings())
        yield workflow_api._workflow


def job_snakemake(workflow: Any, rule: str, attempt: int = 1, **wildcards: str) -> Any:
    """The ``snakemake`` object Snakemake hands the script of one job: rule ``rule`` with
    ``wildcards`` on attempt ``attempt`` (resources grow with it) of ``workflow``."""
    from snakemake.dag import DAG
    from snakemake.iocontainers import Snakemake
    from snakemake.jobs import Job

    job = Job(workflow.get_rule(rule), DAG(workflow, rules=[]), wildcards)
    job.attempt = attempt
    return Snakemake(
        job.input,
        job.output,
        job.params,
        job.wildcards,
        job.threads,
        job.resources,
        job.log,
        workflow.config,
        job.rule.name,
        None,
        str(Path(__file__).resolve().parent),
    )


def mock_snakemake(
    rule: str, configfiles: Sequence[str | Path] = (), attempt: int = 1, **wildcards: str
) -> Any:
    """The ``snakemake`` object of one job of the real workflow: rule ``rule`` with
    ``wildcards``, under the embedded config.yaml and ``configfiles``, in the current working
    directory, on attempt ``attempt``.

    Holds what Snakemake would hand the script: input, output, params, wildcards, threads,
    resources, log, config and rule name (paths as the rules write them, relative to the
    working directory), e.g. ``mock_snakemake("cube", ["config/tiny.yaml"], tile="tile00")``.
    """
    with loaded_workflow(configfiles) as workflow:
        return job_snakemake(workflow, rule, attempt, **wildcards)


def by_hand(rule: str, argv: Sequence[str] | None = None, **default_wildcards: str):
    """:func:`mock_snakemake` for a script run by hand, from its command line (``argv``,
    default ``sys.argv[1:]``): ``key=value`` overrides one of the script's default
    wildcards, ``--configfile FILE ...`` adds config files, ``--rule NAME`` picks another
    rule that runs the same script (embed_daily, figure_<name>)."""
    global _BY_HAND
    _BY_HAND = True
    argv = list(sys.argv[1:] if argv is None else argv)
    wildcards, configfiles = dict(default_wildcards), []
    while argv:
        arg = argv.pop(0)
        if arg == "--configfile":
            while argv and "=" not in argv[0] and not argv[0].startswith("--"):
                configfiles.append(argv.pop(0))
        elif arg == "--rule" and argv:
            rule = argv.pop(0)
        elif "=" in arg and not arg.startswith("-"):
            key, value = arg.split("=", 1)
            wildcards[key] = value
        else:
            raise SystemExit(
                f"{rule}: expected key=value, --configfile FILE or --rule NAME, got {arg!r}"
            )
    return mock_snakemake(rule, configfiles, **wildcards)
