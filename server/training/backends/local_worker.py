"""The local backend's training process: how it starts (die with the server, keep off the
server's core, preload the libraries, one thread each) and its task (fit, then save).

Only training processes import this module (server.training.backends.child names its
functions for the server): its first lines pin the thread pools of the process that
imports it, before numpy, OpenBLAS or OpenMP load.
"""

import os

# Set before numpy, OpenBLAS or OpenMP load in this process: their pools read these once.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from threadpoolctl import threadpool_limits  # noqa: E402

from server.algorithms import preload  # noqa: E402
from server.errors import StorageFailed  # noqa: E402
from server.inference.compiled.convert import preload_converters  # noqa: E402
from server.inference.libc import libc_function  # noqa: E402
from server.ml.progress import NoProgress  # noqa: E402
from server.store.bundle import serialize  # noqa: E402
from server.store.files import ModelStore  # noqa: E402
from server.training.fit import fit_model  # noqa: E402
from server.training.progress import SharedProgress  # noqa: E402
from server.training.request import TrainingRequest  # noqa: E402

PARENT_POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>

# This process's slot: where its fits report progress (set by `initialize`).
_progress_cells: Any = None


def initialize(
    parent_pid: int,
    nice: int = 0,
    idle_priority: bool = False,
    progress_cells: Any = None,
    cores: frozenset[int] | None = None,
) -> None:
    """Process initializer: die with the parent (first, so that no window is left open),
    keep off the server's core (server.training.cores) or yield the CPU to the server when
    they share one, preload the libraries and pin their threads."""
    global _progress_cells
    _progress_cells = progress_cells
    die_with_parent(parent_pid)
    if cores is not None:
        os.sched_setaffinity(0, cores)
    os.nice(nice)
    if idle_priority and hasattr(os, "SCHED_IDLE"):
        # Linux: run only on CPU time nobody else wants. A request then preempts a training
        # at once, instead of waiting for the scheduler to take the core from a niced one.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    preload()
    preload_converters()
    threadpool_limits(limits=1)
    # A file-size limit (ulimit -f) then fails the write with EFBIG, which the fit reports,
    # instead of killing this process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def die_with_parent(parent_pid: int) -> None:
    """If the server dies, even by SIGKILL, stop at once rather than finish and save a model
    nobody will be told about. Linux kills us itself (PR_SET_PDEATHSIG), even while a
    library holds the GIL; a thread that watches for re-parenting is the portable fallback."""
    prctl = libc_function("prctl")
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:  # also covers a parent that died before prctl
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def warm_up() -> int:
    """A no-op task: submitting it starts the process, whose initializer does the rest."""
    return os.getpid()


def train_and_save(request: TrainingRequest, store: ModelStore) -> dict[str, Any]:
    """The local backend's task: fit, save atomically, return the metadata (the /fit answer)."""
    progress = SharedProgress(_progress_cells) if _progress_cells is not None else NoProgress()
    fitted = fit_model(request, progress)
    if request.candidate:  # kept by the search in memory: only its winner is ever saved
        return {"metadata": fitted.metadata, "model": serialize(fitted.bundle)}
    try:
        return store.save(request.name, request.version, fitted.bundle, fitted.metadata)
    except OSError as error:
        raise StorageFailed(f"model '{request.name}' could not be saved: {error}") from None
