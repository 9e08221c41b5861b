"""Where the model runs: a CUDA GPU when PyTorch sees one, the CPU otherwise.

Training (both stages) and inference (export, tower series) choose alike; the log line
says which of the two the device is for.
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def model_device(purpose: str, announce: bool = True) -> torch.device:
    """``ECOEMBED_DEVICE`` (e.g. ``cpu``, ``cuda:1``) overrides the automatic choice.
    ``announce`` logs "<purpose> on <device>"; False keeps quiet (data-parallel ranks
    other than 0)."""
    name = os.environ.get("ECOEMBED_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if announce:
        log.info("%s on %s", purpose, device)
    return device


def training_device(announce: bool = True) -> torch.device:
    """The device the training loops use (logged as "training on ...")."""
    return model_device("training", announce)


def resolve_device(name: str = "auto", purpose: str = "inference") -> str:
    """A config's (or the command line's) device setting for ``purpose``: ``auto`` picks as
    training does, anything else is used as given; either is logged as "<purpose> on ..."."""
    if name == "auto":
        return str(model_device(purpose))
    log.info("%s on %s", purpose, name)
    return name
