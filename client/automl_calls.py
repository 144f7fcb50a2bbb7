"""The AutoML endpoints' calls (client.calls says what a call is)."""

from __future__ import annotations

from typing import Any

from client.calls import Call, Labels, Matrix, _table


def automl(
    name: str,
    X: Matrix,
    y: Labels,
    max_models: int | None = None,
    max_runtime_secs: float | None = None,
    model_types: list[str] | None = None,
    metric: str | None = None,
    validation_fraction: float = 0.2,
    seed: int = 0,
    new_version: bool = False,
    promote: bool = False,
    categorical_features: list[str] | list[int] | None = None,
    ignore_columns: list[str] | None = None,
) -> Call:
    config: dict[str, Any] = {"name": name, "validation_fraction": validation_fraction}
    optional = {"max_models": max_models, "max_runtime_secs": max_runtime_secs,
                "model_types": model_types, "metric": metric,
                "categorical_features": categorical_features or None,
                "ignore_columns": ignore_columns or None}  # fmt: skip
    config.update({key: value for key, value in optional.items() if value is not None})
    config.update(seed=seed, new_version=new_version, promote=promote)
    labels = y.tolist() if hasattr(y, "tolist") else list(y)
    return Call("POST", "/automl", {**_table(X), "y": labels, "config": config}, expected=202)


def automl_search(search_id: str) -> Call:
    return Call("GET", f"/automl/{search_id}")


def automl_searches() -> Call:
    return Call("GET", "/automl")


def automl_cancel(search_id: str) -> Call:
    return Call("POST", f"/automl/{search_id}/cancel")
