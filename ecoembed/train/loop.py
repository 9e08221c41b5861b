"""The skeleton both training stages share: resume, the epoch loop, a checkpoint per
epoch, the end of the run.

A stage (stage 1: one sensor's autoencoder, ``pretrain``; stage 2: the fusion network,
``fusion``) says only what is particular to it, as a :class:`Stage`: the loss of a batch,
its figures at the end of an epoch and of the run, the weights it saves. :func:`fit` does
the rest, the same way for both:

* a resume checkpoint is used only when it was made from the same inputs (``run``:
  config, sensor, encoders, data; :func:`check_resume`), and is read before the stage is
  built, so a refusal costs nothing;
* every epoch draws from a random stream seeded by ``[seed, epoch]``, so a resumed run
  ends bit-identical to an uninterrupted one;
* each epoch ends with an atomic resume checkpoint;
* a finished run writes its held-out figures, its curves and its final checkpoint, then
  removes the resume checkpoint.

Under torchrun the processes share the batches (``ecoembed.train.distributed``); only
rank 0 logs and writes.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ecoembed.io.atomic import atomic_path
from ecoembed.io.errors import InputDataError
from ecoembed.models.checkpoint import RESTART, load_checkpoint, resume_checkpoint, save_checkpoint
from ecoembed.train.distributed import Distributed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunFiles:
    """The files of one training run."""

    final: Path  # the trained model's checkpoint
    curves: Path  # per-epoch losses (CSV)
    heldout: Path  # held-out figures at the end (CSV)
    checkpoint: Path  # last finished epoch, for resuming; removed when training completes


class Stage(ABC):
    """What one training stage adds to the skeleton, built once its inputs are checked."""

    label: str  # what its progress bars say ("s2", "fusion")
    title: str  # what it is in the log ("s2 pretraining", "fusion training")
    opt: torch.optim.Optimizer
    n_batches: int  # per epoch
    base_lr: float = 0.0  # the optimiser's rate at the start (with a "cosine" schedule)
    schedule: str = "constant"  # or "cosine": set per epoch by ``fit`` (``epoch_lr``)

    @abstractmethod
    def restore(self, resume: dict) -> None:
        """Load the weights and optimiser state of a resume checkpoint."""

    @abstractmethod
    def begin_epoch(self, rng: np.random.Generator) -> None:
        """Draw the epoch's order (and masks) from its stream; set the modules training."""

    @abstractmethod
    def batch_loss(self, b: int) -> torch.Tensor:
        """The loss of batch ``b`` of the epoch (this process's part of it)."""

    @abstractmethod
    def end_epoch(self, epoch: int, train_loss: float) -> dict:
        """Evaluate on the held-out examples, log, and return the epoch's row of curves."""

    @abstractmethod
    def weights(self) -> dict:
        """What a resume checkpoint keeps of the stage: module and optimiser states."""

    def resume_extra(self) -> dict:
        """What a resume checkpoint keeps after the curves (nothing, by default)."""
        return {}

    @abstractmethod
    def finish(self, curves: list[dict]) -> tuple[pd.DataFrame, dict]:
        """The held-out figures of the trained model, and what training returns."""

    @abstractmethod
    def final_checkpoint(self) -> dict:
        """The trained model's checkpoint (see ecoembed.models.checkpoint)."""


LR_FLOOR = 0.05  # a cosine schedule ends at this share of the base rate


def epoch_lr(base: float, epoch: int, epochs: int, schedule: str) -> float:
    """The learning rate of an epoch: ``base`` throughout ("constant"), or half a cosine
    from ``base`` down to ``LR_FLOOR * base`` on the last epoch ("cosine"). A function of
    the epoch alone, so that a resumed run goes on at the rate it stopped at."""
    if schedule == "constant" or epochs <= 1:
        return base
    if schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule {schedule!r}")
    share = 0.5 * (1 + math.cos(math.pi * epoch / (epochs - 1)))
    return base * (LR_FLOOR + (1 - LR_FLOOR) * share)


def fit(
    build: Callable[[], Stage],
    run: dict,
    files: RunFiles,
    *,
    seed: int,
    epochs: int,
    dp: Distributed,
    progress: bool,
    stop_after_epoch: int | None,
) -> dict:
    """Train the stage ``build`` makes (or resume it from ``files.checkpoint``) and write
    the outputs; returns what the stage's ``finish`` returns.

    ``stop_after_epoch`` ends the run early after that epoch's checkpoint (used to test
    resuming) and returns {}.
    """
    resume = open_resume(files.checkpoint, run)
    stage = build()
    start, curves = 0, []
    if resume is not None:
        stage.restore(resume)
        start, curves = resume["epoch"] + 1, resume["curves"]
        dp.info(log, "resuming %s after epoch %d", stage.title, start)
    for epoch in range(start, epochs):
        if stage.schedule != "constant":
            for group in stage.opt.param_groups:
                group["lr"] = epoch_lr(stage.base_lr, epoch, epochs, stage.schedule)
        stage.begin_epoch(np.random.default_rng([seed, epoch]))
        desc = f"{stage.label} epoch {epoch + 1}/{epochs}"
        curves.append(stage.end_epoch(epoch, train_epoch(stage, desc, dp, progress)))
        if dp.is_main:
            state = resume_checkpoint(epoch, run, stage.weights(), curves, stage.resume_extra())
            save_checkpoint(files.checkpoint, state)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            return {}
    figures, result = stage.finish(curves)
    if dp.is_main:
        write_training_tables(figures, files.heldout, curves, files.curves)
        save_checkpoint(files.final, stage.final_checkpoint())
        files.checkpoint.unlink()
    return result


def train_epoch(stage: Stage, desc: str, dp: Distributed, progress: bool) -> float:
    """One pass over the stage's batches; the mean training loss over all processes."""
    total = 0.0
    for b in tqdm(range(stage.n_batches), desc=desc, disable=not progress or not dp.is_main):
        loss = stage.batch_loss(b)
        stage.opt.zero_grad()
        loss.backward()
        stage.opt.step()
        total += dp.all_sum(float(loss.detach())) / dp.world_size
    return total / stage.n_batches


def write_training_tables(
    heldout: pd.DataFrame, heldout_path: str | Path, curves: list[dict], curves_path: str | Path
) -> None:
    """The held-out figures and the per-epoch curves of a training run, each atomically."""
    with atomic_path(heldout_path, replace="any") as tmp:
        heldout.to_csv(tmp, index=False)
    with atomic_path(curves_path, replace="any") as tmp:
        pd.DataFrame(curves).to_csv(tmp, index=False)


RESUME_KEYS = {  # what a resume checkpoint must share with the run, and its mismatch
    "config": "another config",
    "modality": "another sensor",
    "encoder_sha256": "other stage-1 encoders",
    "data_sha256": "other training data (cubes)",
}


def open_resume(path: Path, run: dict) -> dict | None:
    """The resume checkpoint at ``path``, if there is one, checked against ``run``."""
    if not path.exists():
        return None
    resume = load_checkpoint(path, "resume checkpoint", RESTART)
    check_resume(path, resume, run)
    return resume


def _shown(value: object) -> str:
    return f"sha256 {value[:12]}" if isinstance(value, str) and len(value) == 64 else repr(value)


def check_resume(path: Path, state: dict, run: dict) -> None:
    """Refuse (InputDataError) a resume checkpoint made from anything other than this run's
    ``run`` (keys of RESUME_KEYS): resuming it would give weights no clean run gives."""
    other = []
    for key, now in run.items():
        saved = state.get(key)
        if saved == now:
            continue
        what = RESUME_KEYS[key]
        if saved is None:
            other.append(f"{what} (it records none: written by an older ecoembed)")
        elif isinstance(now, dict) and isinstance(saved, dict):
            keys = sorted(k for k in now.keys() | saved.keys() if saved.get(k) != now.get(k))
            if key == "config":
                diff = ", ".join(f"{k} {saved.get(k)!r} there, {now.get(k)!r} now" for k in keys)
            else:
                diff = ", ".join(keys)
            other.append(f"{what} ({diff})")
        else:
            other.append(f"{what} ({_shown(saved)} there, {_shown(now)} now)")
    if other:
        raise InputDataError(
            path, "resume checkpoint made with " + "; ".join(other) + f"; {RESTART}"
        )
