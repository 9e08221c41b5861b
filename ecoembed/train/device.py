"""Where training runs: a CUDA GPU when PyTorch sees one, the CPU otherwise."""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def training_device(announce: bool = True) -> torch.device:
    """``ECOEMBED_DEVICE`` (e.g. ``cpu``, ``cuda:1``) overrides the automatic choice.
    ``announce=False`` keeps quiet (data-parallel ranks other than 0)."""
    name = os.environ.get("ECOEMBED_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if announce:
        log.info("training on %s", device)
    return device


def resolve_device(name: str = "auto") -> str:
    """A config's device setting: ``auto`` picks as training does, anything else is used."""
    return str(training_device()) if name == "auto" else name
