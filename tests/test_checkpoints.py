"""Checkpoints are read without running code from them (issue #21): a crafted pickle, a
corrupt file or one of the older numpy format is refused with one error naming the file,
and a resume checkpoint made from other inputs is refused, never resumed."""

from __future__ import annotations

import contextlib
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from ecoembed.embed.model import load_embedding_model
from ecoembed.io.errors import InputDataError
from ecoembed.models.checkpoint import load_checkpoint, load_encoder
from ecoembed.train.pretrain import PretrainOutputs, pretrain
from tests.test_pretrain import SMALL, toy_series


class Payload:
    """Unpickling this creates ``marker``: what a crafted checkpoint could do instead."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def crafted(path: pathlib.Path, marker: pathlib.Path, *, zipped: bool = True) -> pathlib.Path:
    """A file shaped like a checkpoint (the keys the loaders look for) with the payload."""
    state = {"config": {}, "fusion": Payload(marker), "encoder_states": {}, "channels": {}}
    if zipped:
        torch.save(state, path)
    else:  # the legacy, plain-pickle format torch.load also accepts
        with open(path, "wb") as f:
            pickle.dump(state, f)
    return path


@pytest.mark.parametrize("zipped", [True, False])
def test_the_payload_is_live_when_unpickled_unsafely(tmp_path, zipped):
    """The crafted file really runs code under the old loading (so the tests below can
    fail): ``torch.load(weights_only=False)`` creates the marker, before any error (a
    plain pickle then fails torch's magic-number check)."""
    marker = tmp_path / "pwned"
    path = crafted(tmp_path / "evil.pt", marker, zipped=zipped)
    with contextlib.suppress(RuntimeError):
        torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("zipped", [True, False])
def test_embedding_model_loader_refuses_a_crafted_checkpoint_unrun(tmp_path, zipped):
    marker = tmp_path / "pwned"
    path = crafted(tmp_path / "evil.pt", marker, zipped=zipped)
    with pytest.raises(InputDataError) as err:
        load_embedding_model(path)
    message = str(err.value)
    assert message.startswith(f"{path}: fusion checkpoint refused unread: ")
    assert message.endswith("; nothing in it was run")
    # what the weights-only reader stopped at: the global the payload calls, or the
    # pickle protocol's framing, which no torch.save file uses
    assert ("GLOBAL getattr" if zipped else "Unsupported operand") in message
    assert not marker.exists()


def test_cli_embed_refuses_a_crafted_checkpoint_unrun(products_cube, tmp_path):
    marker = tmp_path / "pwned"
    path = crafted(tmp_path / "evil.pt", marker)
    run = subprocess.run(
        [sys.executable, "-m", "ecoembed", "embed", "--checkpoint", str(path)]
        + ["--cube", str(products_cube[1]), "--out", str(tmp_path / "out.zarr")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    assert f"error: {path}: fusion checkpoint refused unread" in run.stderr
    assert "Traceback" not in run.stderr
    assert not marker.exists() and not (tmp_path / "out.zarr").exists()


def test_pretraining_refuses_a_crafted_resume_checkpoint_unrun(tmp_path):
    marker = tmp_path / "pwned"
    out = PretrainOutputs.in_dir(tmp_path / "m", "s2")
    out.checkpoint.parent.mkdir(parents=True)
    crafted(out.checkpoint, marker)
    with pytest.raises(InputDataError, match=r"resume checkpoint refused unread") as err:
        pretrain(toy_series(), "s2", out, SMALL, progress=False)
    assert str(err.value).startswith(str(out.checkpoint))
    assert not marker.exists() and not out.encoder.exists()


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    """A stage-1 encoder checkpoint as pretraining writes it."""
    out = PretrainOutputs.in_dir(tmp_path_factory.mktemp("enc"), "s2")
    pretrain(toy_series(), "s2", out, SMALL, progress=False)
    return out.encoder


def test_encoder_checkpoint_holds_only_what_the_weights_only_reader_reads(encoder_file):
    state = load_checkpoint(encoder_file)  # weights_only=True
    assert state["norm_mean"].dtype == torch.float32 and state["norm_mean"].shape == (3,)
    enc, st = load_encoder(encoder_file)
    assert enc.frames == SMALL.frames and st["config"]["latent_dim"] == SMALL.latent_dim


def test_an_encoder_checkpoint_of_the_older_numpy_format_is_refused(encoder_file, tmp_path):
    state = load_checkpoint(encoder_file)
    state["norm_mean"] = state["norm_mean"].numpy()  # as the code before issue #21 saved it
    old = tmp_path / "encoder_s2.pt"
    torch.save(state, old)
    with pytest.raises(InputDataError) as err:
        load_encoder(old)
    assert str(err.value) == (
        f"{old}: stage-1 encoder checkpoint of an older format (it stores numpy arrays); "
        "retrain it (`snakemake pretrained` or `snakemake train_fusion`)"
    )


CORRUPT = {  # damage -> what the error says
    "truncated": "is not a readable PyTorch checkpoint (RuntimeError: PytorchStreamReader "
    "failed reading zip archive: failed finding central directory)",
    "garbage": "refused unread: not the kind of pickle this project writes (Unsupported "
    "operand 120); nothing in it was run",
    "empty": "is empty",
    "tensor": "holds a Tensor, not a checkpoint",
}


@pytest.mark.parametrize("damage", sorted(CORRUPT))
def test_a_corrupt_checkpoint_is_one_clear_error(encoder_file, tmp_path, damage):
    bad = tmp_path / "encoder_s2.pt"
    data = encoder_file.read_bytes()
    if damage == "tensor":
        torch.save(torch.zeros(3), bad)
    else:
        damaged = {"truncated": data[: len(data) // 2], "garbage": b"\x80\x02x" * 50}
        bad.write_bytes(damaged.get(damage, b""))
    with pytest.raises(InputDataError) as err:
        load_encoder(bad)
    assert str(err.value) == f"{bad}: stage-1 encoder checkpoint {CORRUPT[damage]}"


def test_a_checkpoint_of_another_kind_is_not_an_encoder(tmp_path):
    path = tmp_path / "encoder_s2.pt"
    torch.save({"config": {}, "fusion": {}}, path)
    with pytest.raises(InputDataError, match=r"not a stage-1 encoder checkpoint \(missing"):
        load_encoder(path)
    with pytest.raises(InputDataError, match="stage-1 encoder checkpoint does not exist"):
        load_encoder(tmp_path / "missing.pt")


def test_pretraining_refuses_a_resume_checkpoint_made_from_other_cubes(tmp_path):
    """Same config and sensor, other data: resuming would end with weights that no clean
    run on either data gives; the checkpoint is refused and left as it was."""
    out = PretrainOutputs.in_dir(tmp_path, "s2")
    pretrain(toy_series(seed=0), "s2", out, SMALL, progress=False, stop_after_epoch=1)
    before = out.checkpoint.read_bytes()
    with pytest.raises(InputDataError) as err:
        pretrain(toy_series(seed=1), "s2", out, SMALL, progress=False)
    message = str(err.value)
    assert message.startswith(f"{out.checkpoint}: resume checkpoint made with other training data")
    assert "config" not in message and message.endswith("delete it to retrain from the start")
    assert out.checkpoint.read_bytes() == before and not out.encoder.exists()


def test_resume_refusal_names_what_differs_in_the_config(tmp_path):
    out = PretrainOutputs.in_dir(tmp_path, "s1")
    pretrain(toy_series(), "s1", out, SMALL, progress=False, stop_after_epoch=1)
    other = SMALL.__class__(**{**SMALL.__dict__, "lr": 1e-4})
    with pytest.raises(InputDataError) as err:
        pretrain(toy_series(), "s2", out, other, progress=False)
    assert str(err.value) == (
        f"{out.checkpoint}: resume checkpoint made with another config (lr 0.002 there, "
        "0.0001 now); "
        "another sensor ('s1' there, 's2' now); delete it to retrain from the start"
    )


def test_an_older_resume_checkpoint_is_refused_with_what_to_do(tmp_path):
    """A resume checkpoint the code before issue #21 wrote (numpy normalisation inside)."""
    out = PretrainOutputs.in_dir(tmp_path, "s2")
    pretrain(toy_series(), "s2", out, SMALL, progress=False, stop_after_epoch=1)
    state = load_checkpoint(out.checkpoint)
    state["norm_mean"] = np.asarray(state["norm_mean"])
    torch.save(state, out.checkpoint)
    with pytest.raises(InputDataError) as err:
        pretrain(toy_series(), "s2", out, SMALL, progress=False)
    assert str(err.value) == (
        f"{out.checkpoint}: resume checkpoint of an older format (it stores numpy arrays); "
        "delete it to retrain from the start"
    )
