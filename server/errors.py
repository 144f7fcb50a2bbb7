"""The domain's errors: each one carries its HTTP status and a message naming what is at fault.

    ServiceError
     ├── Unauthorized       401  a guarded endpoint without a valid bearer token
     ├── Forbidden          403  the inference token on a management endpoint
     ├── ModelNotFound      404  no model of that name
     ├── ModelExists        409  the name is taken (on disk, or in training)
     ├── ModelBusy          409  the model is in training, so it can't be loaded or removed
     ├── NotLoaded          409  predict on a model that is not loaded
     ├── CapacityReached    409  MAX_INFERENCE_MODELS are loaded already
     ├── UntrustedModel     409  the model's files are not signed with the server's key
     ├── NotExplainable     409  a version saved before explanations, with nothing to explain by
     ├── NothingToRollBack  409  a rollback with no earlier current version (or it was deleted)
     ├── ReplicaReadOnly    409  a writing call on a replica (SERVING_ROLE=replica)
     ├── NoCapture          409  feedback for a name whose capture was never on; from_capture
     │                           with no labelled rows; a request id sent twice
     ├── MetricsOff         404  GET /metrics on a server started with METRICS=false
     ├── JobNotFound        404  no job of that id (or it is older than the kept history)
     ├── SearchNotFound     404  no AutoML search of that id (the same)
     ├── JobFinished        409  cancel of a job that has already ended
     ├── JobCancelled       409  what a waiting /fit answers when its job was cancelled
     ├── TooLarge           413  a table with more rows or columns than the server takes
     ├── InvalidInput       422  the request is well-formed JSON but its content is wrong
     ├── BrokenModel        422  the model's files on disk can't be read
     ├── LimitExceeded      422  a training ran past MAX_TRAIN_SECONDS, max_seconds or
     │                           MAX_TRAIN_MEMORY_MB and was stopped
     ├── NoFreeSlot         503  every training slot is busy (answered at once, never queued)
     ├── ExplainerBusy      503  the explanations' queue is full (MAX_EXPLAIN_QUEUE)
     ├── ExplanationTimedOut 503 an explanation ran past EXPLAIN_TIMEOUT_SECONDS and was stopped
     ├── WorkerCrashed      500  a training process, or the explanation process, died
     ├── StorageFailed      500  the model could not be written to disk
     └── StorageFull        507  a file could not be written: the disk (or quota) is full

    An OSError that reaches a route's caller is answered as StorageFull when the disk is
    full, else as a 500 naming the file operation (server.http.errors): always JSON.

    StartupFailed            a start-up that can't go on (an unusable key, an unreachable
                             Dask scheduler): one line saying what to fix, never a traceback

Routes never build error responses: they raise, and `server.http.errors` answers.
This module imports nothing heavy, so the training processes can use it too.
"""

from __future__ import annotations

import errno
from pathlib import PurePath
from typing import Any


class ServiceError(Exception):
    status_code = 500

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses a process boundary whole (the explanation process raises these), whatever
        # the subclass's own __init__ takes.
        return (_rebuilt, (type(self), self.detail, self.headers))


def _rebuilt(kind: type[ServiceError], detail: str, headers: dict[str, str] | None) -> ServiceError:
    error = kind.__new__(kind)
    ServiceError.__init__(error, detail, headers)
    return error


class Unauthorized(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


class ModelNotFound(ServiceError):
    status_code = 404

    def __init__(self, name: str, version: int | None = None, alias: str | None = None) -> None:
        if version is not None:
            super().__init__(f"model '{name}' has no version {version}")
        elif alias is not None:
            super().__init__(f"model '{name}' has no alias '{alias}'")
        else:
            super().__init__(f"model '{name}' does not exist")


class ModelExists(ServiceError):
    status_code = 409


class ModelBusy(ServiceError):
    status_code = 409


class NotLoaded(ServiceError):
    status_code = 409

    def __init__(
        self, name: str, version: int | None = None, current: bool = True, replica: str = ""
    ) -> None:
        """`replica`: on a replica, where the /load goes (it serves what the primary loads)."""
        where = f" on the primary{replica}" if replica else ""
        if current or version is None:
            super().__init__(
                f"model '{name}' is not loaded: POST /load{where} with "
                f'{{"config": {{"name": "{name}"}}}} first'
            )
        else:
            super().__init__(
                f"model '{name}' version {version} is not loaded: POST /load{where} with "
                f'{{"config": {{"name": "{name}", "version": {version}}}}} first'
            )


class CapacityReached(ServiceError):
    status_code = 409


class UntrustedModel(ServiceError):
    status_code = 409


class NotExplainable(ServiceError):
    status_code = 409


class MetricsOff(ServiceError):
    status_code = 404


class NothingToRollBack(ServiceError):
    status_code = 409


class ReplicaReadOnly(ServiceError):
    status_code = 409

    def __init__(self, primary_url: str | None) -> None:
        where = f"the primary at {primary_url}" if primary_url else "the primary (PRIMARY_URL)"
        super().__init__(
            "this server is a replica (SERVING_ROLE=replica): it serves predictions and never "
            f"writes; send this call to {where}"
        )


class NoCapture(ServiceError):
    status_code = 409


class JobNotFound(ServiceError):
    status_code = 404

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job '{job_id}' does not exist (finished jobs are kept in memory only)")


class SearchNotFound(ServiceError):
    status_code = 404

    def __init__(self, search_id: str) -> None:
        super().__init__(
            f"AutoML search '{search_id}' does not exist (finished ones are kept in memory only)"
        )


class JobFinished(ServiceError):
    status_code = 409


class JobCancelled(ServiceError):
    status_code = 409


class TooLarge(ServiceError):
    status_code = 413


class InvalidInput(ServiceError):
    status_code = 422


class LimitExceeded(ServiceError):
    status_code = 422


class BrokenModel(ServiceError):
    status_code = 422


class NoFreeSlot(ServiceError):
    status_code = 503


class ExplainerBusy(ServiceError):
    status_code = 503


class ExplanationTimedOut(ServiceError):
    status_code = 503


class WorkerCrashed(ServiceError):
    status_code = 500


class StorageFailed(ServiceError):
    status_code = 500


class StorageFull(ServiceError):
    status_code = 507


def disk_error(error: OSError, what: str = "the operation") -> ServiceError:
    """What a failed file operation answers: 507 when the disk is full, else 500; the
    message names the file (not its folder: paths are the server's own)."""
    file = PurePath(str(error.filename)).name if error.filename else "a file"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(
            f"{what} failed: no space left on the server's disk (writing {file}); nothing "
            "was changed. Free space and try again"
        )
    return StorageFailed(f"{what} failed: {error.strerror or error} ({file})")


class StartupFailed(Exception):
    """The server can't start: the message is the one line that says what to fix."""
