"""Where the model runs: a CUDA GPU when PyTorch sees one, the CPU otherwise.

Training (both stages) and inference (export, tower series) choose alike; the log line
says which of the two the device is for. Training runs with deterministic kernels
(``reproducible_kernels``) unless ``ECOEMBED_DETERMINISTIC=0``.
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


def reproducible_kernels() -> bool:
    """Deterministic kernels for training, so that two runs of a job on one CUDA device
    give the same weights (CPU kernels already are): PyTorch's deterministic algorithms,
    cuBLAS with a fixed workspace (``CUBLAS_WORKSPACE_CONFIG``, read when cuBLAS starts,
    so set before the first matrix product) and no cuDNN autotuning. An operation without
    a deterministic CUDA kernel warns instead of failing. ``ECOEMBED_DETERMINISTIC=0``
    leaves PyTorch's defaults (faster kernels, run-to-run differences). Returns whether
    the mode is on."""
    if os.environ.get("ECOEMBED_DETERMINISTIC", "1") == "0":
        return False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    return True


def training_device(announce: bool = True) -> torch.device:
    """The device the training loops use (logged as "training on ..."); on CUDA with
    deterministic kernels unless switched off (``reproducible_kernels``)."""
    device = model_device("training", announce)
    if device.type == "cuda":  # CPU kernels are deterministic already: nothing to pay for
        deterministic = reproducible_kernels()
        if announce:
            log.info("deterministic CUDA kernels %s", "on" if deterministic else "off")
    return device


def resolve_device(name: str = "auto", purpose: str = "inference") -> str:
    """A config's (or the command line's) device setting for ``purpose``: ``auto`` picks as
    training does, anything else is used as given; either is logged as "<purpose> on ..."."""
    if name == "auto":
        return str(model_device(purpose))
    log.info("%s on %s", purpose, name)
    return name
