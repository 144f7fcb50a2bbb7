"""The monitoring endpoints' calls (docs/monitoring.md; client.calls says what a call is)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from client.calls import Call, Labels, _chosen


def set_capture(
    name: str, capture: bool, sample_rate: float, capture_exclude: list[str] | None
) -> Call:
    body = {"capture": capture, "sample_rate": sample_rate,
            "capture_exclude": list(capture_exclude or [])}  # fmt: skip
    return Call("PUT", f"/models/{name}/monitoring", body)


def _window(since: str | None, until: str | None) -> str:
    """The query, encoded: an ISO time's `+00:00` must not arrive as a space."""
    query = urlencode({k: v for k, v in (("since", since), ("until", until)) if v})
    return f"?{query}" if query else ""


def monitoring(name: str, since: str | None = None, until: str | None = None) -> Call:
    return Call("GET", f"/models/{name}/monitoring{_window(since, until)}")


def feedback(
    name: str, y: Labels, request_id: str | None = None, keys: list[str] | None = None
) -> Call:
    body: dict[str, Any] = {"y": y.tolist() if hasattr(y, "tolist") else list(y)}
    if request_id is not None:
        body["request_id"] = request_id
    if keys is not None:
        body["keys"] = list(keys)
    return Call("POST", f"/models/{name}/feedback", body)


def erase_key(name: str, key: str) -> Call:
    return Call("DELETE", f"/models/{name}/monitoring/rows?{urlencode({'key': key})}")


def _source(name: str, since: str | None, until: str | None) -> dict[str, Any]:
    source: dict[str, Any] = {"name": name}
    source.update({k: v for k, v in (("since", since), ("until", until)) if v})
    return source


def fit_from_capture(
    name: str, model_type: str, source: str, since: str | None, until: str | None,
    hyperparameters: dict[str, Any] | None, validation_fraction: float | None,
    new_version: bool, promote: bool,
) -> Call:  # fmt: skip
    config: dict[str, Any] = {"name": name, "model_type": model_type,
                              "from_capture": _source(source, since, until)}  # fmt: skip
    if hyperparameters:
        config["hyperparameters"] = hyperparameters
    if validation_fraction is not None:
        config["validation_fraction"] = validation_fraction
    config.update(new_version=new_version, promote=promote)
    return Call("POST", "/fit", {"config": config}, expected=201)


def evaluate_capture(
    name: str, source: str, since: str | None, until: str | None,
    version: int | None, alias: str | None,
) -> Call:  # fmt: skip
    config = _chosen(name, version, alias, from_capture=_source(source, since, until))
    return Call("POST", "/evaluate", config)
