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

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from server.algorithms import preload, resolve  # noqa: E402
from server.errors import BrokenModel, InvalidInput, ServiceError  # noqa: E402
from server.inference.libc import libc_function  # noqa: E402
from server.ml.explanations import (  # noqa: E402
    Explanation,
    Rows,
    preload_explainers,
)
from server.ml.messages import library_message  # noqa: E402
from server.store.files import ModelStore  # noqa: E402
from server.store.signing import metadata_tag  # noqa: E402
from server.training.backends.local_worker import die_with_parent  # noqa: E402

PR_SET_NAME = 15  # from <sys/prctl.h>
PROCESS_NAME = b"model-explainer"
# Kept by what identifies the files (the version's metadata tag), so that a name removed
# and trained again is never explained by what was read before; a few are kept (with a
# forest's TreeExplainer), as many as a server typically has loaded.
CACHED_EXPLAINERS = 4
MAX_MESSAGE_CHARS = 300

_store: ModelStore | None = None
_explainers: OrderedDict[tuple[str, int, str], Any] = OrderedDict()


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


def ready() -> None:
    """Answered once the process has started (the explanations' time limit starts after)."""


def explain_version(rows: Rows) -> Explanation:
    """The explanation of the rows by their version's estimator, read (its tag checked) once.
    What goes wrong reaches the server as a ServiceError with a one-line message, never a
    library's trace."""
    try:
        explainer = _explainer(rows)
        algorithm = resolve(rows.model_type)
        explanation = algorithm.explain(explainer, rows.X, rows.n_classes, rows.means)
    except ServiceError:
        raise
    except Exception as error:
        raise InvalidInput(
            f"{rows.model_type} can't explain these rows: {type(error).__name__}: "
            f"{library_message(str(error))}"[:MAX_MESSAGE_CHARS]
        ) from None
    unusable = ~(
        np.isfinite(explanation.contributions).all(axis=(1, 2))
        & np.isfinite(explanation.totals()).all(axis=1)
    )
    if unusable.any():
        raise InvalidInput(
            f"the contributions of row(s) {np.flatnonzero(unusable)[:10].tolist()} are not "
            "finite numbers: a value is too large for the model's arithmetic (its answer "
            "saturates); bring such values into the training rows' range"
        )
    return explanation


def _explainer(rows: Rows) -> Any:
    key = (rows.name, rows.version, rows.tag)
    if key in _explainers:
        _explainers.move_to_end(key)
        return _explainers[key]
    assert _store is not None, "initialize() runs first"
    if metadata_tag(_store.read_metadata(rows.name, rows.version)) != rows.tag:
        raise BrokenModel(
            f"model '{rows.name}' version {rows.version} in the store is not the one loaded "
            "(removed and trained again since): load it again"
        )
    estimator = _store.load(rows.name, rows.version, compiled=False)["estimator"]
    _explainers[key] = explainer = resolve(rows.model_type).explainer_for(estimator)
    while len(_explainers) > CACHED_EXPLAINERS:
        _explainers.popitem(last=False)
    return explainer
