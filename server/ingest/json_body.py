"""The JSON bodies of /fit, /predict and /evaluate, parsed with orjson and numpy, not pydantic.

Two million floats validated one by one through a pydantic model parse at less than half
the speed of orjson and one `np.asarray` (see docs/performance-history.md, Figures behind the
code). The rules stay those of the declared schema
(`server.schemas`), and every broken one is still a 422 naming the field:
- JSON only: NaN, Infinity and numbers out of double range are refused by orjson itself;
  `null` is the one spelling of a missing value;
- `X`: a non-empty list of equally long, non-empty rows of numbers or null;
- `records` (instead of `X` for /predict and /evaluate): a list of {column: value} objects;
- `y`: a non-empty list of integers (64-bit) or of strings (1 to 256 characters), not mixed;
- `config`: validated by its pydantic model; no unknown fields anywhere.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from server.errors import InvalidInput
from server.ingest.features import Features, MatrixFeatures, records_features
from server.ingest.inputs import ConfigT, EvaluateInput, FitInput, PredictInput, RowsInput
from server.ingest.limits import UNLIMITED, TableLimits
from server.ingest.matrix import as_rows
from server.ml.labels import read_labels
from server.schemas import EvaluateConfig, FitConfig, PredictConfig
from server.tables.raw import RawTable, from_matrix

ConfigModel = TypeVar("ConfigModel", bound=BaseModel)


def fit_input(
    body: bytes, config_type: type[BaseModel] = FitConfig, limits: TableLimits = UNLIMITED
) -> FitInput:
    """`X`, or `records` whose first object's keys name the columns (kept with the model,
    as a file's are)."""
    payload = _object(
        body, {"X", "y", "config"}, limits, alternatives={"X": "records"}, with_capture=True
    )
    config = _config(config_type, payload)
    if "y" not in payload:  # config.from_capture: the rows come from the capture
        return FitInput(config=config, raw=RawTable([], 0), y=[], feature_names=None)
    y = read_labels(payload["y"])
    if "records" not in payload:
        return FitInput(config=config, raw=_table(as_rows(payload["X"])), y=y, feature_names=None)
    features = records_features(payload["records"])
    columns = list(features.records[0])
    if not columns:
        raise InvalidInput("records[0] has no column")
    return FitInput(config=config, raw=features.table(columns), y=y, feature_names=columns)


def _table(rows: np.ndarray | RawTable) -> RawTable:
    return from_matrix(rows) if isinstance(rows, np.ndarray) else rows


def predict_input(body: bytes, limits: TableLimits = UNLIMITED) -> PredictInput:
    return rows_input(body, PredictConfig, limits)


def rows_input(body: bytes, config_type: type[ConfigT], limits: TableLimits) -> RowsInput[ConfigT]:
    """Rows and a config of `config_type` (/predict, /explain)."""
    payload = _object(body, {"X", "config"}, limits, alternatives={"X": "records"})
    return RowsInput(config=_config(config_type, payload), features=_features(payload))


def evaluate_input(body: bytes, limits: TableLimits = UNLIMITED) -> EvaluateInput:
    payload = _object(body, {"X", "y", "config"}, limits, alternatives={"X": "records"})
    config = _config(EvaluateConfig, payload)
    if "y" not in payload:  # config.from_capture: the rows come from the capture
        return EvaluateInput(config=config, features=MatrixFeatures(None), y=[])
    return EvaluateInput(config=config, features=_features(payload), y=read_labels(payload["y"]))


def _features(payload: dict[str, Any]) -> Features:
    if "records" in payload:
        return records_features(payload["records"])
    rows = as_rows(payload["X"])
    if isinstance(rows, np.ndarray):
        return MatrixFeatures(rows)
    return MatrixFeatures(None, rows)


def _object(
    body: bytes,
    fields: set[str],
    limits: TableLimits,
    alternatives: dict[str, str] | None = None,
    with_capture: bool = False,
) -> dict[str, Any]:
    """`with_capture`: records and y may come with config.from_capture (a fit on both)."""
    payload = _loaded(body)
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"the request body must be a JSON object with {', '.join(sorted(fields))}"
        )
    config = payload.get("config")
    if "y" in fields and isinstance(config, dict) and config.get("from_capture") is not None:
        sent = payload.keys() - {"config"}
        if not sent:
            return payload
        if not (with_capture and sent == {"records", "y"}):
            also = ", or records and y to train on both" if with_capture else ""
            raise InvalidInput(
                "config.from_capture takes the rows and labels from the capture: send no X, "
                f"records or y{also}"
            )
    # A field with an alternative (X or records) needs exactly one of the two.
    for field, other in (alternatives or {}).items():
        if other in payload:
            if field in payload:
                raise InvalidInput(f"send {field} or {other}, not both")
            fields = fields - {field} | {other}
    missing, unknown = fields - payload.keys(), payload.keys() - fields
    if missing:
        raise InvalidInput(f"missing field(s): {', '.join(sorted(missing))}")
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    _check_size(payload.get("X", payload.get("records")), limits)
    return payload


def _check_size(rows: Any, limits: TableLimits) -> None:
    """Rows and columns counted on the parsed lists, before numpy copies them (plain
    comparisons first: this runs on every 1-row predict)."""
    if type(rows) is not list or not rows:
        return  # the matrix's own checks say what is wrong
    if len(rows) > limits.rows:
        limits.check_rows(len(rows))
    first = rows[0]
    if type(first) in (list, dict) and len(first) > limits.columns:
        limits.check_columns(len(first))


def _config(model: type[ConfigModel], payload: dict[str, Any]) -> ConfigModel:
    return parse_config(model, payload["config"])


def _loaded(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        found = body[error.pos : error.pos + 9].lstrip(b"-")
        if found.startswith((b"NaN", b"Infinity")):  # what Python writes for pandas' gaps
            token = found[:3] if found.startswith(b"NaN") else found[:8]
            raise InvalidInput(
                f"the request body is not valid JSON: {token.decode()} at character "
                f"{error.pos} is not a JSON value (Python's json.dumps writes it for NaN): "
                "send null for a missing value"
            ) from None
        raise InvalidInput(f"the request body is not valid JSON: {error}") from None


def parse_config(model: type[ConfigModel], config: Any) -> ConfigModel:
    return _validated(model, config, ("body", "config"))


def parse_body(model: type[ConfigModel], body: bytes) -> ConfigModel:
    """A whole JSON body of one schema (feedback's), refused as every other body is."""
    return _validated(model, _loaded(body), ("body",))


def _validated(model: type[ConfigModel], value: Any, where: tuple[str, ...]) -> ConfigModel:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        # The same list form as any other schema error, located where the value was.
        raise RequestValidationError(
            [{**item, "loc": (*where, *item["loc"])} for item in error.errors()]
        ) from None
