"""How far a fit has got: what a type's `fit` reports to (server.algorithms), and what a
job shows. A fit reports to a `ProgressSink`: `begin(total)` once, then `advance(done)` after
each iteration (boosting round, or chunk of trees), and `phase(...)` as the job moves from
training to compiling the model, checking the compiled copy and saving (`PHASES`).

Each type's `fit` builds its library's hook inside the training process, so nothing
unpicklable crosses a process boundary, and takes it off the estimator before it is saved:
a saved model carries no reference to the server's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

# What a job does, in order. Only training has a measure of how far it has got: the
# converters and the check offer none.
PHASES = ("training", "explaining", "compiling", "checking", "saving")


class Progress(NamedTuple):
    done: float
    total: float | None  # None: the library offers no measure, or not begun
    phase: str


@dataclass(frozen=True)
class EarlyStopping:
    """Boosters stop once `rounds` rounds in a row did not improve on the held-out rows
    (AutoML's candidates); the model keeps its best round."""

    validation: tuple[np.ndarray, np.ndarray]  # rows, and their labels as indices
    rounds: int


class TrainingStopped(Exception):
    """Raised from a progress hook when the server asked the fit to stop (cluster backends:
    they can't kill a task, so the fit stops itself at its next iteration)."""


class ProgressSink(Protocol):
    stopped: bool  # the server asked this fit to stop; the hook has raised TrainingStopped

    def begin(self, total: int | None) -> None:
        """The fit plans `total` iterations (None: the library offers no measure)."""

    def advance(self, done: int) -> None:
        """`done` iterations of `total` are finished."""

    def finish(self) -> None:
        """The fit is over: everything planned is done (boosting may stop early)."""

    def phase(self, name: str) -> None:
        """The job has moved on to `name`, one of PHASES."""


class NoProgress:
    stopped = False

    def phase(self, name: str) -> None:
        pass

    def begin(self, total: int | None) -> None:
        pass

    def advance(self, done: int) -> None:
        pass

    def finish(self) -> None:
        pass


def planned(count: Any) -> int | None:
    """A count of iterations to show progress against, or None. Only a whole number of at
    least 1 is one: anything else is for the library to accept or refuse with its own words
    (`int("ten")` or `int(2.5)` here would answer for it)."""
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        return None
    return int(count)


@dataclass(frozen=True)
class TrainingCall:
    """What one training call carries to a type's `fit`: the rows as the library takes
    them, the labels as indices, where progress goes, and the options a fit may have."""

    X: np.ndarray
    y: np.ndarray
    sink: ProgressSink
    stopping: EarlyStopping | None = None
    categorical: list[int] | None = None  # columns of codes, learned the library's own way
