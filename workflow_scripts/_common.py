"""Shared by the workflow scripts: the library on sys.path, logging into the rule's log.

Snakemake puts this directory on sys.path of every script it runs (and Python does the
same when a script is run by hand), so scripts simply ``import _common``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# The workflow uses the library of its own checkout, also in a conda environment
# (--sdm conda) that has ecoembed's dependencies but not ecoembed itself installed.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


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
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=stream,
        force=True,
    )
    logging.captureWarnings(True)
    return logging.getLogger("ecoembed.workflow")
