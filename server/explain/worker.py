"""The explanation process: how it starts (die with the server, run where the trainings run,
preload the libraries, one thread each) and its task (explain rows of one version).

Only the explanation process imports this module (server.explain.explainer names its
functions with `InChild`): importing the training process's module first pins the thread
pools of this process, before numpy, OpenBLAS or OpenMP load.
"""

import os
from collections import OrderedDict
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from server.explain.methods import Explanation, explain, preload_explainers
from server.ml.algorithms import preload
from server.store.files import ModelStore
from server.training.backends import local_worker  # first: the thread pools, as there

# Versions never change once saved (a number is never given twice), so an estimator read
# once stays right; a few are kept, as many as a server typically has loaded.
CACHED_ESTIMATORS = 4

_store: ModelStore | None = None
_estimators: OrderedDict[tuple[str, int], Any] = OrderedDict()


def initialize(parent_pid: int, store: ModelStore, nice: int, cores: frozenset[int] | None) -> None:
    global _store
    _store = store
    local_worker.die_with_parent(parent_pid)
    if cores is not None:
        os.sched_setaffinity(0, cores)
    os.nice(nice)
    preload()
    preload_explainers()
    threadpool_limits(limits=1)


def warm_up() -> int:
    return os.getpid()


def explain_version(
    name: str,
    version: int,
    model_type: str,
    n_classes: int,
    means: list[float] | None,
    X: np.ndarray,
) -> Explanation:
    """The explanation of X by one version's estimator, read (its tag checked) once."""
    return explain(model_type, _estimator(name, version), X, n_classes, means)


def _estimator(name: str, version: int) -> Any:
    key = (name, version)
    if key in _estimators:
        _estimators.move_to_end(key)
        return _estimators[key]
    assert _store is not None, "initialize() runs first"
    estimator = _store.load(name, version, compiled=False)["estimator"]
    _estimators[key] = estimator
    while len(_estimators) > CACHED_ESTIMATORS:
        _estimators.popitem(last=False)
    return estimator
