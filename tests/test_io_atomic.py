"""Atomic outputs (what they may replace, what a killed write leaves) and the input error type."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import pytest

from ecoembed.io.atomic import (
    OutputBusyError,
    OutputExistsError,
    atomic_path,
    atomic_write_text,
    stale_temporaries,
)
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

    with atomic_path(final, replace="any") as tmp:
        tmp.write_bytes(b"newer")
    assert final.read_bytes() == b"newer"
    assert _entries(final.parent) == ["B02.tif"]


def test_atomic_file_exception_keeps_old_output_and_removes_temporary(tmp_path):
    final = tmp_path / "table.csv"
    final.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(final, replace="any") as tmp:
        tmp.write_text("half written")
        raise RuntimeError("boom")
    assert final.read_text() == "old"
    assert _entries(tmp_path) == ["table.csv"]


def test_atomic_directory_replaces_existing_directory(tmp_path):
    final = tmp_path / "cube.zarr"
    final.mkdir()
    (final / "stale").write_text("from an older run")
    with atomic_path(final, replace="any") as tmp:
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
    with (
        pytest.raises(FileNotFoundError, match="nothing was written"),
        atomic_path(final, replace="any"),
    ):
        pass
    assert final.read_text() == "keep"


def test_atomic_write_text(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic_write_text(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert _entries(path.parent) == ["b.txt"]


def user_folder(root):
    """A folder that is not an output of ours: a thesis and its data."""
    folder = root / "thesis"
    (folder / "data").mkdir(parents=True)
    (folder / "thesis.tex").write_text("\\chapter{Results}")
    (folder / "data" / "plots.csv").write_text("a,b\n1,2\n")
    return folder


def tree(folder):
    return sorted(
        (str(p.relative_to(folder)), p.read_text() if p.is_file() else None)
        for p in folder.rglob("*")
    )


def test_default_replaces_nothing_and_refuses_before_the_block_runs(tmp_path):
    folder = user_folder(tmp_path)
    before = tree(folder)
    note = tmp_path / "notes.txt"
    note.write_text("mine")
    for final in (folder, note):
        ran = []
        with pytest.raises(OutputExistsError, match="exists") as err, atomic_path(final) as tmp:
            ran.append(tmp)
        assert not ran  # refused on entry: nothing was written
        assert err.value.path == final and str(err.value).startswith(f"{final}: exists")
    assert tree(folder) == before and note.read_text() == "mine"
    assert _entries(tmp_path) == ["notes.txt", "thesis"]  # no temporary, no lock file


def test_a_predicate_replaces_only_what_it_recognises(tmp_path):
    def ours(path):
        return (path / "zarr.json").is_file()

    product = tmp_path / "old.zarr"
    product.mkdir()
    (product / "zarr.json").write_text("old")
    with atomic_path(product, replace=ours) as tmp:
        tmp.mkdir()
        (tmp / "zarr.json").write_text("new")
    assert (product / "zarr.json").read_text() == "new"

    folder = user_folder(tmp_path)
    before = tree(folder)
    with pytest.raises(OutputExistsError, match="is not an ecoembed product"):
        with atomic_path(folder, replace=ours):
            pytest.fail("the block must not run")
    assert tree(folder) == before
    assert _entries(tmp_path) == ["old.zarr", "thesis"]


def test_a_path_that_appears_during_the_write_is_not_replaced(tmp_path):
    """Checked again before the rename: a folder made meanwhile survives, the write goes."""
    final = tmp_path / "emb.zarr"
    with pytest.raises(OutputExistsError), atomic_path(final, replace=lambda p: False) as tmp:
        tmp.mkdir()
        (tmp / "zarr.json").write_text("{}")
        final.mkdir()
        (final / "mine.txt").write_text("keep")
    assert (final / "mine.txt").read_text() == "keep" and _entries(final) == ["mine.txt"]
    assert _entries(tmp_path) == ["emb.zarr"]


def test_replace_must_be_a_known_word_or_a_predicate(tmp_path):
    with (
        pytest.raises(ValueError, match="replace must be"),
        atomic_path(tmp_path / "x", replace="yes"),
    ):
        pass


KILLED_WRITER = """
import os, signal, sys
from ecoembed.io.atomic import atomic_path
with atomic_path(sys.argv[1], replace="any") as tmp:
    (tmp / "c").mkdir(parents=True)
    (tmp / "c" / "0").write_bytes(b"half a chunk")
    os.kill(os.getpid(), signal.SIGKILL)  # no except, no finally: as a killed cluster job
"""


def test_next_write_removes_what_a_killed_write_left_and_only_that(tmp_path):
    final = tmp_path / "T1.zarr"
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_WRITER), str(final)])
    assert run.returncode == -9
    left = [n for n in _entries(tmp_path) if n.startswith(".T1.zarr.tmp-")]
    assert len(left) == 1 and (tmp_path / left[0] / "c" / "0").read_bytes() == b"half a chunk"
    assert ".T1.zarr.lock" in _entries(tmp_path)  # the dead writer's lock file, not held
    # a moved-aside old output of an earlier kill, and the temporaries of other outputs
    (tmp_path / ".T1.zarr.old-0a1b2c3d").mkdir()
    others = [".T2.zarr.tmp-0123abcd", ".T1.zarr.x.tmp-0123abcd", ".T1.zarr.tmp-notours"]
    for name in others:
        (tmp_path / name).mkdir()
    assert sorted(p.name for p in stale_temporaries(final)) == sorted(
        [left[0], ".T1.zarr.old-0a1b2c3d"]
    )

    with atomic_path(final) as tmp:
        tmp.mkdir()
        (tmp / "zarr.json").write_text("complete")
    assert (final / "zarr.json").read_text() == "complete" and _entries(final) == ["zarr.json"]
    assert _entries(tmp_path) == sorted(["T1.zarr", *others])


def test_a_second_writer_of_the_same_output_is_refused_while_the_first_runs(tmp_path):
    final = tmp_path / "table.csv"
    with atomic_path(final) as first:
        first.write_text("first")
        with pytest.raises(OutputBusyError, match="another writer is writing it now"):
            with atomic_path(final, replace="any"):
                pytest.fail("the block must not run")
        assert first.read_text() == "first"  # the running write was not touched
        with atomic_path(tmp_path / "other.csv") as other:  # other outputs are free
            other.write_text("other")
    assert final.read_text() == "first"
    assert _entries(tmp_path) == ["other.csv", "table.csv"]
    atomic_write_text(final, "second", replace="any")  # the lock went with the first writer
    assert final.read_text() == "second"


def test_output_errors_cross_process_boundaries():
    err = OutputExistsError("out/emb.zarr", "exists and is not an ecoembed product")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is OutputExistsError and str(back) == str(err)
    assert str(err) == "out/emb.zarr: exists and is not an ecoembed product"
    assert isinstance(err, FileExistsError)


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
