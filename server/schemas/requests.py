"""Request bodies, as the contract (docs/API.md) writes them: JSON, and the multipart forms of
the routes that take a file."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from server.algorithms import MODEL_TYPES
from server.store.layout import NAME_PATTERN
from server.store.pointers import ALIAS_PATTERN

# A feature value: a JSON number, finite (no NaN or infinity); text, a categorical column's
# level; true and false, the numbers 1 and 0; null, a missing value.
Feature = Annotated[float, Strict(), Field(allow_inf_nan=False)] | str | bool | None
Row = Annotated[list[Feature], Field(min_length=1)]
Matrix = Annotated[list[Row], Field(min_length=1)]
IntLabel = Annotated[int, Strict(), Field(ge=-(2**63), le=2**63 - 1)]
StrLabel = Annotated[str, Strict(), Field(min_length=1, max_length=256)]
# All labels of one model are integers, or all are strings.
Labels = (
    Annotated[list[IntLabel], Field(min_length=1)] | Annotated[list[StrLabel], Field(min_length=1)]
)
Label = int | str
ModelName = Annotated[
    str, Field(pattern=NAME_PATTERN.pattern, examples=["rf1"], description="the model's name")
]
Version = Annotated[int, Strict(), Field(ge=1, le=2**31, examples=[2])]
Alias = Annotated[str, Field(pattern=ALIAS_PATTERN.pattern, examples=["staging"])]


class Body(BaseModel):
    """A request body: unknown fields and lax coercions ("1" for 1, 0 for false) refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class TableOptions(Body):
    """How a fit reads its table's columns (docs/tables.md)."""

    categorical_features: list[str] | list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None,
        description="columns to treat as categorical although they hold numbers (area codes, "
        "product ids): names, or indices for a JSON X. Text columns are categorical anyway",
        examples=[["area_code"]],
    )
    ignore_columns: list[str] = Field(
        default_factory=list,
        description="columns left out of the model (an id, a name, free text); at prediction "
        "they are extra columns, ignored",
        examples=[["customer_id"]],
    )


class FromCapture(Body):
    """The labelled captured rows of a name over a window (ISO times; default: the last 24
    hours)."""

    name: ModelName
    since: datetime | None = Field(default=None, strict=False, examples=["2026-12-01T00:00:00Z"])
    until: datetime | None = Field(default=None, strict=False, examples=["2026-12-02T00:00:00Z"])


class FitConfig(TableOptions):
    name: ModelName
    model_type: str = Field(
        description=f"one of {', '.join(MODEL_TYPES)} (any case)",
        examples=["RandomForestClassifier"],
        max_length=64,
    )
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="passed to the estimator's constructor; thread counts are forced to 1",
        examples=[{"n_estimators": 100}],
    )
    max_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        default=None,
        description="stop this training after so many seconds (at most MAX_TRAIN_SECONDS)",
    )
    validation_fraction: Annotated[float, Field(gt=0, le=0.5, allow_inf_nan=False)] | None = Field(
        default=None,
        description="hold out this share of the rows (stratified), train on the rest and "
        "score the model on them: the model's `validation`",
        examples=[0.2],
    )
    validation_seed: int = Field(
        default=0, description="the random_state of the held-out split (train_test_split)"
    )
    new_version: bool = Field(
        default=False,
        description="for a name that exists: train its next version (it does not serve "
        "until promoted) instead of answering 409",
    )
    promote: bool = Field(
        default=False, description="with new_version: make the new version current once saved"
    )
    from_capture: FromCapture | None = Field(
        default=None, description="train on these labelled captured rows (no X, no y)"
    )


class FitRequest(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "X": [[5.1, 3.5], [4.9, 3.0], [6.2, 3.4], [5.9, 3.0]],
                    "y": ["setosa", "setosa", "virginica", "virginica"],
                    "config": {
                        "name": "rf1",
                        "model_type": "RandomForestClassifier",
                        "hyperparameters": {"n_estimators": 100},
                    },
                }
            ]
        },
    )

    X: Matrix | None = Field(default=None, description="absent with config.from_capture")
    y: Labels | None = Field(default=None, description="absent with config.from_capture")
    config: FitConfig


class NameConfig(Body):
    name: ModelName


class VersionedConfig(NameConfig):
    """A name and, optionally, which of its versions: a number or an alias (not both);
    with neither, its current version."""

    version: Version | None = Field(default=None, description="default: the current version")
    alias: Alias | None = Field(default=None, description="instead of version")

    @model_validator(mode="after")
    def _version_or_alias(self) -> VersionedConfig:
        if self.version is not None and self.alias is not None:
            raise ValueError("give config.version or config.alias, not both")
        return self


class EvaluateConfig(VersionedConfig):
    from_capture: FromCapture | None = Field(
        default=None, description="score on these labelled captured rows (no X, no y)"
    )


class VersionedRequest(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"config": {"name": "rf1"}}, {"config": {"name": "rf1", "version": 2}}]
        }
    )

    config: VersionedConfig


class VersionBody(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 2}]})

    version: Version


class NameRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"config": {"name": "rf1"}}]})

    config: NameConfig


class PredictConfig(VersionedConfig):
    probabilities: bool = False
    key: str | None = Field(
        default=None,
        description="a column of the records or file that names each row (a customer id): "
        "captured, never a feature; feedback can label rows by it",
    )


Record = dict[str, Feature]
Records = Annotated[
    list[Record],
    Field(
        min_length=1,
        description="instead of X, for a model trained from a file: rows as {column: value}, "
        "matched to its feature_names by name (extra keys ignored)",
    ),
]


class PredictRequest(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"X": [[5.0, 3.3]], "config": {"name": "rf1", "probabilities": True}}]
        },
    )

    X: Matrix | None = Field(default=None, description="rows in the model's column order")
    records: Records | None = None
    config: PredictConfig


class ExplainConfig(VersionedConfig):
    pass


class ExplainRequest(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"X": [[5.0, 3.3]], "config": {"name": "rf1"}}]},
    )

    X: Matrix | None = Field(default=None, description="rows in the model's column order")
    records: Records | None = None
    config: ExplainConfig


class EvaluateRequest(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "X": [[5.0, 3.3], [6.1, 3.0]],
                    "y": ["setosa", "virginica"],
                    "config": {"name": "rf1"},
                }
            ]
        },
    )

    X: Matrix | None = Field(default=None, description="rows in the model's column order")
    records: Records | None = None
    y: Labels | None = Field(default=None, description="absent with config.from_capture")
    config: EvaluateConfig


class FitForm(BaseModel):
    """multipart/form-data: a table file, its label column, and the JSON config."""

    file: bytes = Field(
        json_schema_extra={"format": "binary"},
        description="CSV (UTF-8, header line) or Parquet; every column but `target` is a feature",
    )
    target: str = Field(description="the column that holds the labels")
    config: str = Field(
        description="FitConfig as JSON text",
        examples=['{"name": "rf1", "model_type": "RandomForestClassifier"}'],
    )


class PredictForm(BaseModel):
    """multipart/form-data: a table file and the JSON config."""

    file: bytes = Field(
        json_schema_extra={"format": "binary"},
        description="CSV or Parquet; columns matched by name to the model's feature_names",
    )
    config: str = Field(description="PredictConfig as JSON text", examples=['{"name": "rf1"}'])


class ExplainForm(PredictForm):
    config: str = Field(description="ExplainConfig as JSON text", examples=['{"name": "rf1"}'])


class EvaluateForm(FitForm):
    """multipart/form-data: a table file, its label column, and the JSON config."""

    config: str = Field(description="EvaluateConfig as JSON text", examples=['{"name": "rf1"}'])
