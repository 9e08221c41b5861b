"""The one error type for bad input files, so every message names the file and the problem."""

from __future__ import annotations

from os import PathLike


class InputDataError(ValueError):
    """An input file is missing, unreadable or does not hold what the contract says.

    Subclasses ValueError so callers that only know the standard library still catch it.
    """

    def __init__(self, path: str | PathLike[str], problem: str, *, item: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.item = item
        where = f"{path} (item {item})" if item is not None else f"{path}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple:
        # Default exception pickling replays args positionally and would lose the kw-only item;
        # errors cross process boundaries (multiprocessing workers, Snakemake jobs).
        return (_rebuild, (self.path, self.problem, self.item))


def _rebuild(path: str | PathLike[str], problem: str, item: str | None) -> InputDataError:
    return InputDataError(path, problem, item=item)
