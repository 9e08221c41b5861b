"""Atomic outputs and the input error type."""

from __future__ import annotations

import pickle

import pytest

from ecoembed.io.atomic import atomic_path, atomic_write_text
from ecoembed.io.errors import InputDataError


def _entries(directory):
    return sorted(p.name for p in directory.iterdir())


def test_atomic_file_replaces_final_and_hides_temporary(tmp_path):
    final = tmp_path / "out" / "B02.tif"  # parent does not exist yet
    with atomic_path(final) as tmp:
        assert tmp.parent == final.parent
        assert tmp.name.startswith(".B02.tif.tmp-")
        assert len(tmp.name) == len(".B02.tif.tmp-") + 8
        tmp.write_bytes(b"new")
        # A rule's glob on the real name never sees the half-written file.
        assert list(final.parent.glob("*.tif")) == []
        assert not final.exists()
    assert final.read_bytes() == b"new"
    assert _entries(final.parent) == ["B02.tif"]

    with atomic_path(final) as tmp:
        tmp.write_bytes(b"newer")
    assert final.read_bytes() == b"newer"
    assert _entries(final.parent) == ["B02.tif"]


def test_atomic_file_exception_keeps_old_output_and_removes_temporary(tmp_path):
    final = tmp_path / "table.csv"
    final.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(final) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("boom")
    assert final.read_text() == "old"
    assert _entries(tmp_path) == ["table.csv"]


def test_atomic_directory_replaces_existing_directory(tmp_path):
    final = tmp_path / "cube.zarr"
    final.mkdir()
    (final / "stale").write_text("from an older run")
    with atomic_path(final) as tmp:
        tmp.mkdir()
        (tmp / "zarr.json").write_text("{}")
        assert (final / "stale").exists()  # the old output stays readable until the rename
    assert _entries(final) == ["zarr.json"]
    assert _entries(tmp_path) == ["cube.zarr"]


def test_atomic_directory_exception_removes_partial_tree(tmp_path):
    final = tmp_path / "cube.zarr"
    with pytest.raises(KeyboardInterrupt), atomic_path(final) as tmp:
        (tmp / "s2" / "c").mkdir(parents=True)
        (tmp / "s2" / "c" / "0").write_bytes(b"x")
        raise KeyboardInterrupt
    assert _entries(tmp_path) == []


def test_atomic_path_refuses_when_nothing_was_written(tmp_path):
    final = tmp_path / "x.txt"
    final.write_text("keep")
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_path(final):
        pass
    assert final.read_text() == "keep"


def test_atomic_write_text(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic_write_text(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert _entries(path.parent) == ["b.txt"]


def test_input_data_error_message_and_attributes(tmp_path):
    err = InputDataError(tmp_path / "x.tif", "file does not exist")
    assert str(err) == f"{tmp_path / 'x.tif'}: file does not exist"
    assert err.item is None and err.problem == "file does not exist"
    assert isinstance(err, ValueError)

    err = InputDataError("raw/B02.tif", "corrupt", item="S2A_T1_20230601")
    assert str(err) == "raw/B02.tif (item S2A_T1_20230601): corrupt"
    assert (err.path, err.problem, err.item) == ("raw/B02.tif", "corrupt", "S2A_T1_20230601")

    # Errors cross process boundaries (Snakemake, multiprocessing): pickling keeps everything.
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.item == "S2A_T1_20230601"
