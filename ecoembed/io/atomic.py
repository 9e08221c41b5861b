"""Write-then-rename, so that a crashed or killed rule never leaves a partial output behind."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _tmp_sibling(final: Path, tag: str) -> Path:
    # Hidden and suffixed, so a glob on the real name ("*.tif", "{tile}.zarr") never sees it.
    return final.with_name(f".{final.name}.{tag}-{uuid.uuid4().hex[:8]}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _install(tmp: Path, final: Path) -> None:
    """Move the finished temporary into place, replacing whatever was there."""
    final_is_dir = final.is_dir() and not final.is_symlink()
    if not tmp.is_dir() and not final_is_dir:
        os.replace(tmp, final)  # atomic for files on the same filesystem
        return
    if final.exists() or final.is_symlink():
        # Move the old output aside first: the window without a final path is one rename.
        old = _tmp_sibling(final, "old")
        os.replace(final, old)
        os.replace(tmp, final)
        _remove(old)
    else:
        os.replace(tmp, final)


@contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; on success it replaces ``final``.

    The caller writes a file or a directory at the yielded path. On an exception the
    temporary is removed and the exception propagates; ``final`` is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(final, "tmp")
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise FileNotFoundError(f"{final}: nothing was written to the temporary path {tmp}")
        _install(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
