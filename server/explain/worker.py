"""The explanation process: how it starts (die with the server, run where the trainings run,
preload the libraries, one thread each) and its task (explain rows of one version).

Only the explanation process imports this module (server.explain.explainer names its
functions with `InChild`): its first lines pin the thread pools of the process that imports
it, before numpy, OpenBLAS or OpenMP load.
"""

import os

# Set before numpy, OpenBLAS or OpenMP load in this process, as a training process does.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

from collections import OrderedDict  # noqa: E402
from typing import Any  # noqa: E402

from threadpoolctl import threadpool_limits  # noqa: E402

from server.inference.libc import libc_function  # noqa: E402
from server.ml.algorithms import preload  # noqa: E402
from server.ml.explanations import (  # noqa: E402
    Explanation,
    Rows,
    explain,
    explainer_for,
    preload_explainers,
)
from server.store.files import ModelStore  # noqa: E402
from server.training.backends.local_worker import die_with_parent  # noqa: E402

PR_SET_NAME = 15  # from <sys/prctl.h>
PROCESS_NAME = b"model-explainer"
# Versions never change once saved (a number is never given twice), so an estimator read
# once stays right; a few are kept (with a forest's TreeExplainer), as many as a server
# typically has loaded.
CACHED_EXPLAINERS = 4

_store: ModelStore | None = None
_explainers: OrderedDict[tuple[str, int], Any] = OrderedDict()


def initialize(parent_pid: int, store: ModelStore, nice: int, cores: frozenset[int] | None) -> None:
    global _store
    _store = store
    die_with_parent(parent_pid)
    prctl = libc_function("prctl")
    if prctl is not None:  # `ps -o comm` and psutil's name() tell it from the trainings
        prctl(PR_SET_NAME, PROCESS_NAME)
    if cores is not None:
        os.sched_setaffinity(0, cores)
    os.nice(nice)
    preload()
    preload_explainers()
    threadpool_limits(limits=1)


def explain_version(rows: Rows) -> Explanation:
    """The explanation of the rows by their version's estimator, read (its tag checked) once."""
    explainer = _explainer(rows.name, rows.version, rows.model_type)
    return explain(rows.model_type, explainer, rows.X, rows.n_classes, rows.means)


def _explainer(name: str, version: int, model_type: str) -> Any:
    key = (name, version)
    if key in _explainers:
        _explainers.move_to_end(key)
        return _explainers[key]
    assert _store is not None, "initialize() runs first"
    estimator = _store.load(name, version, compiled=False)["estimator"]
    _explainers[key] = explainer = explainer_for(model_type, estimator)
    while len(_explainers) > CACHED_EXPLAINERS:
        _explainers.popitem(last=False)
    return explainer
