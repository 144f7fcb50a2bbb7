"""The request and response shapes of the model server, shared by both clients.

Each endpoint is a function that returns a `Call`: method, path, JSON body and the status
that means success. The synchronous and asynchronous clients only send calls and read
answers; neither repeats what a request looks like.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Matrix = Any  # a list of rows, or anything with .tolist() (a numpy array)
Labels = Any
Job = dict[str, Any]  # the server's job: id, name, state, progress, ... (docs/API.md)
JobRef = Job | str  # a job, or its id
ProgressCallback = Callable[[Job], None]


class ApiError(Exception):
    """The server answered with an unexpected status; `detail` is its message."""

    def __init__(self, status: int, detail: Any, call: Call, retry_after: float | None = None):
        super().__init__(f"{call.method} {call.path} -> {status}: {detail}")
        self.status = status
        self.detail = detail
        self.call = call
        self.retry_after = retry_after


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None
    expected: int = 200

    def check(self, status: int, answer: Any, retry_after: str | None = None) -> Any:
        """The answer, or ApiError carrying the server's `detail`."""
        if status == self.expected:
            return answer
        detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise ApiError(status, detail, self, seconds)


def _rows(X: Matrix) -> list[list[Any]]:
    """JSON rows (numbers, text, null); a NaN (numpy's or Python's) is sent as null, the
    server's missing value."""
    rows = X.tolist() if hasattr(X, "tolist") else list(X)
    if any(value != value for row in rows for value in row):  # NaN is the one unequal value
        return [[None if value != value else value for value in row] for row in rows]
    return rows


def _table(X: Matrix) -> dict[str, Any]:
    """The rows as the body's `X`, or, for a pandas DataFrame, as `records` (its column
    names go with them: the model keeps them, and later rows are matched by name)."""
    if hasattr(X, "to_dict") and hasattr(X, "columns"):
        return {"records": [_plain(record) for record in X.to_dict("records")]}
    return {"X": _rows(X)}


def _plain(record: dict[Any, Any]) -> dict[str, Any]:
    """One record as JSON takes it: numpy scalars as Python ones, NaN and pandas' NA as null."""
    plain = {}
    for key, value in record.items():
        if hasattr(value, "item"):  # a numpy scalar
            value = value.item()
        if value is None or value != value or type(value).__name__ == "NAType":
            value = None
        plain[str(key)] = value
    return plain


def _named(name: str, **extra: Any) -> dict[str, Any]:
    return {"config": {"name": name, **extra}}


def _chosen(
    name: str, version: int | None = None, alias: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A config naming a model and, optionally, one of its versions (a number or an alias)."""
    if version is not None:
        extra["version"] = version
    if alias is not None:
        extra["alias"] = alias
    return _named(name, **extra)


def fit(
    name: str,
    model_type: str,
    X: Matrix,
    y: Labels,
    hyperparameters: dict[str, Any] | None = None,
    wait: bool = True,
    max_seconds: float | None = None,
    validation_fraction: float | None = None,
    validation_seed: int = 0,
    new_version: bool = False,
    promote: bool = False,
    categorical_features: list[str] | list[int] | None = None,
    ignore_columns: list[str] | None = None,
) -> Call:
    config: dict[str, Any] = {"name": name, "model_type": model_type}
    if categorical_features:
        config["categorical_features"] = categorical_features
    if ignore_columns:
        config["ignore_columns"] = ignore_columns
    if new_version:
        config["new_version"] = True
    if promote:
        config["promote"] = True
    if hyperparameters:
        config["hyperparameters"] = hyperparameters
    if max_seconds is not None:
        config["max_seconds"] = max_seconds
    if validation_fraction is not None:
        config["validation_fraction"] = validation_fraction
        config["validation_seed"] = validation_seed
    labels = y.tolist() if hasattr(y, "tolist") else list(y)
    body = {**_table(X), "y": labels, "config": config}
    if wait:
        return Call("POST", "/fit", body, expected=201)
    return Call("POST", "/fit?wait=false", body, expected=202)


def job_id(job: JobRef) -> str:
    return job if isinstance(job, str) else str(job["id"])


def job(ref: JobRef) -> Call:
    return Call("GET", f"/jobs/{job_id(ref)}")


def jobs() -> Call:
    return Call("GET", "/jobs")


def cancel(ref: JobRef) -> Call:
    return Call("POST", f"/jobs/{job_id(ref)}/cancel")


def job_events(ref: JobRef) -> Call:
    return Call("GET", f"/jobs/{job_id(ref)}/events")


class EventStream:
    """Reads a job's server-sent event stream line by line; `feed` returns each event's job
    when the blank line that ends the event arrives. Only `data:` lines matter here."""

    def __init__(self, on_progress: ProgressCallback | None = None) -> None:
        self._data: list[str] = []
        self._on_progress = on_progress

    def follow(self, line: str) -> dict[str, Any] | None:
        """Feed a line; once the job has finished, its model (or the ApiError it ended with)."""
        event = self.feed(line)
        if event is None:
            return None
        if self._on_progress is not None:
            self._on_progress(event)
        return finished_model(event) if event["state"] != "running" else None

    def feed(self, line: str) -> Job | None:
        line = line.rstrip("\r\n")
        if line.startswith("data:"):
            self._data.append(line[5:].lstrip(" "))
        elif not line and self._data:
            event: Job = json.loads("\n".join(self._data))
            self._data = []
            return event
        return None


def finished_model(job: Job) -> dict[str, Any]:
    """A finished job's model (the /fit answer), or the ApiError a waiting /fit would raise."""
    if job["state"] == "succeeded":
        model: dict[str, Any] = job["model"]
        return model
    call = Call("POST", "/fit", expected=201)
    if job["state"] == "cancelled":
        detail = f"the training of '{job['name']}' (job {job['id']}) was cancelled"
        raise ApiError(409, detail, call)
    error = job.get("error") or {"status": 500, "detail": f"job ended {job['state']}"}
    raise ApiError(int(error["status"]), error["detail"], call)


def predict(
    name: str,
    X: Matrix,
    probabilities: bool = False,
    version: int | None = None,
    alias: str | None = None,
    key: str | None = None,
) -> Call:
    extra: dict[str, Any] = {"key": key} if key is not None else {}
    config = _chosen(name, version, alias, probabilities=probabilities, **extra)
    return Call("POST", "/predict", {**_table(X), **config})


def explain(name: str, X: Matrix, version: int | None = None, alias: str | None = None) -> Call:
    return Call("POST", "/explain", {**_table(X), **_chosen(name, version, alias)})


def evaluate(
    name: str, X: Matrix, y: Labels, version: int | None = None, alias: str | None = None
) -> Call:
    labels = y.tolist() if hasattr(y, "tolist") else list(y)
    body = {**_table(X), "y": labels, **_chosen(name, version, alias)}
    return Call("POST", "/evaluate", body)


def load(name: str, version: int | None = None, alias: str | None = None) -> Call:
    return Call("POST", "/load", _chosen(name, version, alias))


def unload(name: str, version: int | None = None, alias: str | None = None) -> Call:
    return Call("POST", "/unload", _chosen(name, version, alias))


# -- versions and aliases ----------------------------------------------------------------------
def versions(name: str) -> Call:
    return Call("GET", f"/models/{name}/versions")


def version(name: str, number: int) -> Call:
    return Call("GET", f"/models/{name}/versions/{number}")


def remove_version(name: str, number: int) -> Call:
    return Call("DELETE", f"/models/{name}/versions/{number}")


def promote(name: str, number: int) -> Call:
    return Call("POST", f"/models/{name}/promote", {"version": number})


def rollback(name: str) -> Call:
    return Call("POST", f"/models/{name}/rollback")


def set_alias(name: str, alias: str, number: int) -> Call:
    return Call("PUT", f"/models/{name}/aliases/{alias}", {"version": number})


def remove_alias(name: str, alias: str) -> Call:
    return Call("DELETE", f"/models/{name}/aliases/{alias}")


def history(name: str) -> Call:
    return Call("GET", f"/models/{name}/history")


def remove(name: str) -> Call:
    return Call("POST", "/remove", _named(name))


def remove_all() -> Call:
    return Call("POST", "/remove_all")


def models() -> Call:
    return Call("GET", "/models")


def model(name: str) -> Call:
    return Call("GET", f"/models/{name}")


def status() -> Call:
    return Call("GET", "/status")


def health() -> Call:
    return Call("GET", "/health")
