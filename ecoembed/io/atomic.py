"""Write-then-rename, so that a crashed or killed rule never leaves a partial output behind,
and nothing the caller did not say it may replace is ever removed to make room for an output.

``atomic_path(final, replace=...)`` yields a hidden temporary sibling of ``final``; the
caller writes a file or a directory there, and only a complete write is renamed into place.
What may already sit at ``final`` is the caller's explicit choice (``replace``):

* ``"nothing"`` (the default): an existing path is refused (OutputExistsError), never removed;
* ``"any"``: whatever is there is replaced: for a writer that owns its path (a rule's
  table, manifest, figure or COG, which Snakemake deleted before the job anyway);
* a predicate ``may_replace(path) -> bool``: only what it recognises, e.g. a previous
  product of the same writer (``ecoembed.io.zarrio.is_ecoembed_product``); anything else is
  refused with "exists and is not an ecoembed product".

The refusal comes before anything is written or removed.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: no lock, see atomic_path
    fcntl = None  # type: ignore[assignment]

Replace = str | Callable[[Path], bool]
_REPLACE_WORDS = ("nothing", "any")


class OutputExistsError(FileExistsError):
    """``path`` exists and the writer may not replace it; nothing was written or removed."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __str__(self) -> str:  # OSError's own str would add "[Errno None]"
        return f"{self.path}: {self.problem}"

    def __reduce__(self) -> tuple:
        return (type(self), (self.path, self.problem))


class OutputBusyError(OutputExistsError):
    """Another writer (a process or a thread) is writing the same output right now."""


def _tmp_sibling(final: Path, tag: str) -> Path:
    # Hidden and suffixed, so a glob on the real name ("*.tif", "{tile}.zarr") never sees it.
    return final.with_name(f".{final.name}.{tag}-{uuid.uuid4().hex[:8]}")


def _lock_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.lock")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def check_replace(final: str | os.PathLike[str], replace: Replace) -> None:
    """Refuse (OutputExistsError) when ``final`` exists and ``replace`` does not allow it:
    what ``atomic_path`` checks on entry, for a caller to check before long work starts."""
    final = Path(final)
    if not _exists(final) or replace == "any":
        return
    if replace == "nothing":
        raise OutputExistsError(final, "exists (this writer replaces nothing); remove it first")
    if not replace(final):
        raise OutputExistsError(
            final, "exists and is not an ecoembed product; remove it or choose another path"
        )


def stale_temporaries(final: str | os.PathLike[str]) -> list[Path]:
    """The temporaries (``.{name}.tmp-*``) and moved-aside old outputs (``.{name}.old-*``)
    that an interrupted write of ``final`` left beside it; those of other outputs never."""
    final = Path(final)
    pattern = re.compile(re.escape(f".{final.name}.") + r"(?:tmp|old)-[0-9a-f]{8}")
    try:
        with os.scandir(final.parent) as entries:
            return [final.parent / e.name for e in entries if pattern.fullmatch(e.name)]
    except FileNotFoundError:
        return []


def _lock(final: Path) -> int | None:
    """Hold an exclusive lock on ``final`` (the file ``.{name}.lock`` beside it) while writing.

    Returns the lock's file descriptor, or None where the filesystem cannot lock. A lock
    held by another writer raises OutputBusyError at once (no waiting). The lock dies with
    its process, so a killed writer's lock file is simply taken over by the next one.
    """
    if fcntl is None:  # pragma: no cover
        return None
    lock = _lock_path(final)
    for _ in range(100):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusyError(
                final, f"another writer is writing it now (it holds {lock.name}); try again later"
            ) from None
        except OSError:  # a filesystem without locks: write unlocked, leave no lock file
            os.close(fd)
            lock.unlink(missing_ok=True)
            return None
        # The previous holder may have removed the lock file between our open and flock:
        # then we hold a lock on a file nobody else will see; open the new one instead.
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
    raise OutputBusyError(final, f"could not take the lock {lock.name}")  # pragma: no cover


def _unlock(final: Path, fd: int | None) -> None:
    if fd is None:
        return
    try:
        _lock_path(final).unlink(missing_ok=True)  # while still holding it (see _lock)
    finally:
        os.close(fd)


def _install(tmp: Path, final: Path) -> None:
    """Move the finished temporary into place, replacing whatever was there."""
    final_is_dir = final.is_dir() and not final.is_symlink()
    if not tmp.is_dir() and not final_is_dir:
        os.replace(tmp, final)  # atomic for files on the same filesystem
        return
    if _exists(final):
        # Move the old output aside first: the window without a final path is one rename.
        old = _tmp_sibling(final, "old")
        os.replace(final, old)
        os.replace(tmp, final)
        _remove(old)
    else:
        os.replace(tmp, final)


@contextmanager
def atomic_path(final: str | os.PathLike[str], *, replace: Replace = "nothing") -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; on success it replaces ``final``.

    The caller writes a file or a directory at the yielded path. On an exception the
    temporary is removed and the exception propagates; ``final`` is left untouched.

    ``replace`` says what an existing ``final`` may be (see the module docstring): checked
    on entry, before anything is written or removed (OutputExistsError), and again just
    before the rename, in case something appeared at ``final`` while the caller wrote.

    Leftovers of an earlier write of the same ``final`` that was killed (SIGKILL, power
    loss, a cluster job over its time: no ``except`` ran) are removed on entry: its hidden
    temporaries ``.{name}.tmp-*`` and moved-aside old outputs ``.{name}.old-*``, never
    those of other outputs in the folder. That is safe because a live writer holds a lock
    on its output (``.{name}.lock``, released when it ends or dies): once we hold it, every
    temporary of ``final`` belongs to a writer that is gone. Snakemake never runs two jobs
    with the same output, so in the workflow the lock is never contended. A library user
    who starts a second writer of the same output while the first is running sees the
    second refused at once with OutputBusyError ("another writer is writing it now"); the
    first goes on unharmed. (Where the filesystem cannot lock, writes go unlocked: two
    simultaneous writers of one output could then remove each other's temporary.)
    """
    if not (callable(replace) or replace in _REPLACE_WORDS):
        raise ValueError(f"replace must be one of {_REPLACE_WORDS} or a predicate, not {replace!r}")
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd = _lock(final)
    try:
        check_replace(final, replace)
        for stale in stale_temporaries(final):
            _remove(stale)
        tmp = _tmp_sibling(final, "tmp")
        try:
            yield tmp
            if not _exists(tmp):
                raise FileNotFoundError(f"{final}: nothing was written to the temporary path {tmp}")
            check_replace(final, replace)
            _install(tmp, final)
        except BaseException:
            _remove(tmp)
            raise
    finally:
        _unlock(final, fd)


def atomic_write_text(
    path: str | os.PathLike[str],
    text: str,
    encoding: str = "utf-8",
    *,
    replace: Replace = "nothing",
) -> None:
    """Write ``text`` to ``path`` atomically (``replace`` as for ``atomic_path``)."""
    with atomic_path(path, replace=replace) as tmp:
        tmp.write_text(text, encoding=encoding)
