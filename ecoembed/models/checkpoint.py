"""The checkpoint format, in one place: what training writes and what inference reads.

Every checkpoint is a dict written with ``torch.save`` (atomically, :func:`save_checkpoint`)
that holds only tensors, numbers, strings, None and lists, tuples or dicts of them (no
numpy arrays), so that it is read with PyTorch's weights-only unpickler
(:func:`load_checkpoint`): a crafted file cannot run code. There are three kinds:

* a stage-1 encoder, ``encoder_{sensor}.pt`` (:func:`encoder_checkpoint`): the encoder
  and decoder weights, the config, the per-band normalisation;
* the fusion checkpoint, ``fusion.pt`` (:func:`fusion_checkpoint`): self-contained, the
  frozen encoders travel inside (:func:`encoder_record`), so this file alone embeds new
  data; :func:`read_fusion_checkpoint` reads it back, :func:`untrained_checkpoint` makes
  one with random weights;
* a resume checkpoint of either stage (:func:`resume_checkpoint`): the last finished
  epoch and what the run was made from.

The files carry no version number: a file of another format is told by what it holds
(missing keys, numpy arrays inside), and refused with what to do about it.

Below ``ecoembed.train`` (which writes) and ``ecoembed.embed`` (which reads), so that
inference never imports the trainer to read a file.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecoembed.io.atomic import atomic_path
from ecoembed.io.errors import InputDataError
from ecoembed.io.sensors import SENSORS
from ecoembed.models.encoder import ContextEncoder
from ecoembed.models.fusion import FusionNetwork, freeze
from ecoembed.models.settings import FusionConfig, PretrainConfig

RETRAIN = "retrain it (`snakemake pretrained` or `snakemake train_fusion`)"
RETRAIN_FUSION = "retrain it with `snakemake train_fusion`"
RESTART = "delete it to retrain from the start"  # what to do with an unusable resume checkpoint


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` atomically. It must hold only what :func:`load_checkpoint` reads:
    tensors, numbers, strings, None and lists, tuples or dicts of them (no numpy arrays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, replace="any") as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, what: str = "checkpoint", remedy: str = RETRAIN) -> dict:
    """A checkpoint this project wrote, read with PyTorch's weights-only unpickler.

    Nothing in the file can run: an object other than tensors and plain data (a crafted
    pickle, another program's checkpoint, one of an older ecoembed that stored numpy
    arrays) is refused unread, like a corrupt or truncated file, with an InputDataError
    that names the file, says what is wrong with it (``what``: the kind of checkpoint
    expected) and, for an older format, what to do (``remedy``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, f"{what} does not exist")
    if path.stat().st_size == 0:
        raise InputDataError(path, f"{what} is empty")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # zip, pickle-protocol and torch errors alike
        raise InputDataError(path, _unreadable(exc, what, remedy)) from None
    if not isinstance(state, dict):
        raise InputDataError(path, f"{what} holds a {type(state).__name__}, not a checkpoint")
    return state


def _unreadable(exc: Exception, what: str, remedy: str) -> str:
    """What a failed weights-only read of a ``what`` means, in one line."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "WeightsUnpickler error:" in text:
        # torch's message is long and suggests loading the file unsafely: keep its one fact
        after = text.split("WeightsUnpickler error:", 1)[1].strip()
        fact = after.splitlines()[0].split(" was not an allowed global")[0].strip(" .")
        if fact.startswith("Unsupported global: GLOBAL numpy"):
            return f"{what} of an older format (it stores numpy arrays); {remedy}"
        if fact.startswith("Unsupported global"):
            return (
                f"{what} refused unread: it holds Python objects other than tensors and plain "
                f"data ({fact}), which a checkpoint of this project never does; nothing in it "
                "was run"
            )
        return (
            f"{what} refused unread: not the kind of pickle this project writes ({fact}); "
            "nothing in it was run"
        )
    first = text.strip().splitlines()[0].split(". ")[0] if text.strip() else "no message"
    return f"{what} is not a readable PyTorch checkpoint ({type(exc).__name__}: {first})"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes: what identifies an encoder or fusion checkpoint."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resume_checkpoint(
    epoch: int, run: dict, weights: dict, curves: list[dict], extra: Mapping | None = None
) -> dict:
    """A resume checkpoint after ``epoch``: what the run was made from (``run``), the
    stage's weights and optimiser state, the curves so far and the stage's ``extra``."""
    return {"epoch": epoch, **run, **weights, "curves": curves, **(extra or {})}


# --- stage 1: one sensor's encoder ------------------------------------------------------

ENCODER_KEYS = ("modality", "config", "encoder", "channels", "norm_mean", "norm_std")


def encoder_checkpoint(
    modality: str,
    config: dict,
    enc: nn.Module,
    dec: nn.Module,
    mean: np.ndarray,
    std: np.ndarray,
) -> dict:
    """The final stage-1 checkpoint of one sensor: weights, config, normalisation."""
    return {
        "modality": modality,
        "config": config,
        "encoder": enc.state_dict(),
        "decoder": dec.state_dict(),
        "norm_mean": torch.from_numpy(mean),  # tensors: read without unpickling numpy
        "norm_std": torch.from_numpy(std),
        "channels": len(mean),
    }


def encoder_record(state: dict) -> dict:
    """What of a stage-1 checkpoint the encoder needs at inference (not its decoder)."""
    return {k: state[k] for k in ENCODER_KEYS}


def encoder_norm(state: dict) -> tuple[np.ndarray, np.ndarray]:
    """An encoder's per-band mean and standard deviation (stored as tensors) as arrays."""
    return (
        np.asarray(state["norm_mean"], dtype=np.float32),
        np.asarray(state["norm_std"], dtype=np.float32),
    )


def encoder_from_state(state: dict) -> ContextEncoder:
    """The frozen encoder of a stage-1 checkpoint (or of its record)."""
    cfg = state["config"]
    enc = ContextEncoder(
        state["channels"],
        size=cfg["size"],
        frames=cfg["frames"],
        latent_dim=cfg["latent_dim"],
        centre_skip=bool(cfg.get("centre_skip", False)),  # absent: made before the option
    )
    enc.load_state_dict(state["encoder"])
    return freeze(enc)


def load_encoder(path: str | Path) -> tuple[ContextEncoder, dict]:
    """A frozen stage-1 encoder and its checkpoint (config, normalisation); a file that is
    not a stage-1 encoder checkpoint of this format is refused (InputDataError)."""
    state = load_checkpoint(path, "stage-1 encoder checkpoint")
    missing = [k for k in ENCODER_KEYS if k not in state]
    if missing:
        raise InputDataError(
            path, f"not a stage-1 encoder checkpoint (missing {missing}); {RETRAIN}"
        )
    try:
        return encoder_from_state(state), state
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputDataError(
            path, f"stage-1 encoder checkpoint does not fit its model ({exc})"
        ) from None


# --- stage 2: the fusion checkpoint -----------------------------------------------------

FUSION_KEYS = ("fusion", "encoder_states", "channels", "config")  # what inference reads


def fusion_checkpoint(
    config: dict,
    fusion: FusionNetwork,
    encoder_states: dict[str, dict],
    channels: dict[str, list[str]],
    encoder_paths: dict[str, str | Path] | None = None,
    encoder_sha256: dict[str, str] | None = None,
) -> dict:
    """The final fusion checkpoint: self-contained, the frozen encoders travel inside, so
    this file alone embeds new data (ecoembed.embed.model.load_embedding_model).
    ``encoder_sha256`` (the encoder files' hashes when they were loaded) defaults to the
    hashes of ``encoder_paths`` now."""
    paths = encoder_paths or {}
    if encoder_sha256 is None:
        encoder_sha256 = {m: file_sha256(p) for m, p in paths.items()}
    return {
        "config": config,
        "fusion": fusion.state_dict(),
        "encoders": {m: str(p) for m, p in paths.items()},
        "encoder_states": {m: encoder_record(st) for m, st in encoder_states.items()},
        "encoder_sha256": dict(encoder_sha256),
        "channels": channels,
    }


def read_fusion_checkpoint(path: str | Path) -> dict:
    """A fusion checkpoint of this format, read safely; anything else (no encoders inside,
    an older format, a crafted or corrupt file) is refused with an InputDataError."""
    state = load_checkpoint(path, "fusion checkpoint", RETRAIN_FUSION)
    missing = set(FUSION_KEYS) - set(state)
    if missing:
        raise InputDataError(
            path,
            f"not a self-contained fusion checkpoint (missing {sorted(missing)}); {RETRAIN_FUSION}",
        )
    return state


# Typical per-band scales of the sensors (reflectance, dB): the hand-made checkpoint's
# normalisation.
_TYPICAL_NORM = {"s2": (0.1, 0.05), "s1": (-12.0, 3.0)}


def untrained_checkpoint(
    *,
    size: int = 15,
    frames: int = 11,
    latent_dim: int = 7,
    embedding_dim: int = 7,
    context_dates: int = 4,
    other_tokens: int = FusionConfig.other_tokens,
    seed: int = 0,
) -> dict:
    """A fusion checkpoint of the given architecture with random weights, in the format
    training writes: what export speed does not depend on (benchmarks) and what
    equivalence tests need."""
    torch.manual_seed(seed)
    bands = {name: list(s.channels) for name, s in SENSORS.items()}
    states = {}
    for name, names in bands.items():
        cfg = PretrainConfig(size=size, frames=frames, latent_dim=latent_dim)
        enc = ContextEncoder(
            len(names),
            size=size,
            frames=frames,
            latent_dim=latent_dim,
            centre_skip=cfg.centre_skip,
        )
        mean, std = _TYPICAL_NORM[name]
        states[name] = {
            "modality": name,
            "config": asdict(cfg),
            "encoder": enc.state_dict(),
            "channels": len(names),
            "norm_mean": torch.full((len(names),), mean, dtype=torch.float32),
            "norm_std": torch.full((len(names),), std, dtype=torch.float32),
        }
    fusion = FusionNetwork(
        {m: len(n) for m, n in bands.items()}, latent_dim=latent_dim, embedding_dim=embedding_dim
    )
    config = asdict(
        FusionConfig(
            embedding_dim=embedding_dim,
            context_dates=context_dates,
            other_tokens=other_tokens,
            seed=seed,
        )
    )
    return fusion_checkpoint(config, fusion, states, bands)
