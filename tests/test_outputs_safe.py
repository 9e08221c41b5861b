"""Output paths that would destroy something are refused before any work (issue 21):
``python -m ecoembed embed --out`` and ``export_tile`` replace only a previous product of
the same kind, never a user's folder or file, and never the input cube."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ecoembed.__main__ import main
from ecoembed.embed.export import export_tile
from ecoembed.io.atomic import OutputExistsError
from ecoembed.io.zarrio import open_zarr, product_kind
from ecoembed.models.checkpoint import untrained_checkpoint
from tests.conftest import cut_cube


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "fusion.pt"
    ckpt = untrained_checkpoint(size=7, frames=5, latent_dim=4, embedding_dim=5)
    ckpt["encoder_sha256"] = {"s2": "0" * 64, "s1": "1" * 64}
    torch.save(ckpt, path)
    return path


@pytest.fixture()
def cube(products_cube, tmp_path):
    """A small private cube cut from the session's (a corner, the first dates): quick to
    embed, and a wrong test cannot destroy the shared one."""
    _, shared = products_cube
    return cut_cube(shared, tmp_path / "cube" / "tile00.zarr", px=24, dates=6)


def tree(folder):
    """Every path under ``folder`` with its bytes: equal before and after means untouched."""
    return sorted(
        (str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None)
        for p in folder.rglob("*")
    )


def user_folder(root):
    folder = root / "thesis"
    (folder / "data").mkdir(parents=True)
    (folder / "thesis.tex").write_text("\\chapter{Results}")
    (folder / "data" / "towers.csv").write_text("site,gpp\nDE-Hai,7.1\n")
    return folder


def embed(capsys, cube, out, checkpoint, *extra):
    rc = main(
        ["embed", "--checkpoint", str(checkpoint), "--cube", str(cube), "--out", str(out)]
        + ["--device", "cpu", *map(str, extra)]
    )
    return rc, capsys.readouterr().err


def test_out_on_a_users_folder_or_file_is_refused_and_left_intact(capsys, cube, tmp_path):
    """The checkpoint does not even exist: the --out error comes first, before any work."""
    folder = user_folder(tmp_path)
    note = tmp_path / "notes.txt"
    note.write_text("keep me")
    before = tree(folder)
    for out in (folder, note):
        rc, err = embed(capsys, cube, out, tmp_path / "missing.pt")
        assert rc == 1
        assert err == (
            f"error: {out}: exists and is not an ecoembed product; remove it or choose "
            "another --out\n"
        )
    assert tree(folder) == before and note.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube", "notes.txt", "thesis"]


def test_out_on_or_inside_or_around_the_cube_is_refused(capsys, cube, tmp_path):
    before = tree(cube)
    cases = {
        cube: "is the input cube",
        cube / "emb.zarr": "lies inside the input cube",
        cube.parent: "contains the input cube",
        tmp_path / "link.zarr": "is the input cube",  # a link to it resolves to it
    }
    (tmp_path / "link.zarr").symlink_to(cube)
    for out, relation in cases.items():
        rc, err = embed(capsys, cube, out, tmp_path / "missing.pt")
        assert rc == 1
        assert err == f"error: {out}: {relation} {cube}; choose another --out\n"
    assert tree(cube) == before and product_kind(cube) == "cube"


def test_out_on_a_product_of_another_kind_or_on_another_output_is_refused(
    capsys, cube, checkpoint, tmp_path
):
    other_cube = tmp_path / "tile01.zarr"
    shutil.copytree(cube, other_cube)
    rc, err = embed(capsys, cube, other_cube, checkpoint)
    assert rc == 1 and err == (
        f"error: {other_cube}: exists and is an ecoembed cube store, not embeddings; "
        "remove it or choose another --out\n"
    )
    assert product_kind(other_cube) == "cube"
    out = tmp_path / "emb.zarr"
    rc, err = embed(capsys, cube, out, checkpoint, "--reconstruction", out)
    assert rc == 1
    assert err == f"error: {out}: is --reconstruction {out}; choose another --out\n"
    assert not out.exists()


def test_a_previous_embeddings_store_is_replaced(capsys, cube, checkpoint, tmp_path):
    """What --out may replace: its own earlier product (a rerun), with nothing left over."""
    out = tmp_path / "emb.zarr"
    rc, err = embed(capsys, cube, out, checkpoint, "--window-px", 64)
    assert rc == 0, err
    first = open_zarr(out)["embedding"].values
    assert product_kind(out) == "embeddings"
    (out / "stray").write_text("from the earlier run")
    rc, err = embed(capsys, cube, out, checkpoint)
    assert rc == 0, err
    assert not (out / "stray").exists()  # replaced, not merged
    np.testing.assert_allclose(open_zarr(out)["embedding"].values, first, atol=2e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube", "emb.zarr"]


def test_export_tile_refuses_the_same_paths(cube, checkpoint, tmp_path):
    folder = user_folder(tmp_path)
    before_cube, before_folder = tree(cube), tree(folder)
    with pytest.raises(OutputExistsError, match="is the input cube"):
        export_tile(cube, checkpoint, embeddings_path=cube, progress=False)
    with pytest.raises(OutputExistsError, match="exists and is not an ecoembed product"):
        export_tile(cube, checkpoint, daily_path=folder, progress=False)
    with pytest.raises(OutputExistsError, match="choose another reconstruction_path"):
        export_tile(cube, checkpoint, reconstruction_path=cube / "r.zarr", progress=False)
    assert tree(cube) == before_cube and tree(folder) == before_folder
