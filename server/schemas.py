"""Request and response bodies, as the contract (API.md) writes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from server.algorithms import MODEL_TYPES
from server.storage import NAME_PATTERN

# A feature value: a JSON number, finite (no NaN or infinity), never a string or a boolean.
Feature = Annotated[float, Strict(), Field(allow_inf_nan=False)]
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


class Body(BaseModel):
    """A request body: unknown fields and lax coercions ("1" for 1, 0 for false) refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class FitConfig(Body):
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

    X: Matrix
    y: Labels
    config: FitConfig


class NameConfig(Body):
    name: ModelName


class NameRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"config": {"name": "rf1"}}]})

    config: NameConfig


class PredictConfig(NameConfig):
    probabilities: bool = False


class PredictRequest(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"X": [[5.0, 3.3]], "config": {"name": "rf1", "probabilities": True}}]
        },
    )

    X: Matrix
    config: PredictConfig


class FitResponse(BaseModel):
    name: str
    model_type: str
    status: Literal["training", "trained", "loaded"]
    hyperparameters: dict[str, Any]
    n_samples: int
    n_features: int
    classes: list[Label]
    train_seconds: float | None = None
    train_cpu_seconds: float | None = None


class Progress(BaseModel):
    fraction: float | None = Field(
        description="0 to 1 while the estimator trains; null where the library offers no measure"
    )
    iterations_done: int | None
    iterations_total: int | None


class JobError(BaseModel):
    status: int
    detail: str


class Job(BaseModel):
    """One training, waited for or not: running, then succeeded, failed or cancelled."""

    id: str
    name: str
    model_type: str
    state: Literal["running", "succeeded", "failed", "cancelled"]
    progress: Progress
    created_at: str
    started_at: str | None
    finished_at: str | None
    elapsed_seconds: float
    eta_seconds: float | None
    error: JobError | None = Field(description="once failed: what a waiting /fit answered")
    model: FitResponse | None = Field(description="once succeeded: the /fit answer")


class JobList(BaseModel):
    jobs: list[Job]


class RunningJob(BaseModel):
    id: str
    name: str
    progress: Progress


class ModelInfo(BaseModel):
    """The /fit answer plus status, created_at and size_bytes. What a model in training or a
    broken model can't tell yet is null; a broken model says why in `error`."""

    name: str
    status: Literal["training", "trained", "loaded", "broken"]
    model_type: str | None = None
    hyperparameters: dict[str, Any] | None = None
    n_samples: int | None = None
    n_features: int | None = None
    classes: list[Label] | None = None
    train_seconds: float | None = None
    train_cpu_seconds: float | None = None
    created_at: str | None = Field(
        default=None, description="ISO 8601, UTC; for a model in training, when it started"
    )
    size_bytes: int | None = Field(default=None, description="unknown while training")
    error: str | None = Field(default=None, description="why a broken model can't be loaded")
    job_id: str | None = Field(default=None, description="while training: its job")
    progress: Progress | None = Field(default=None, description="while training")


class ModelList(BaseModel):
    models: list[ModelInfo]


class PredictResponse(BaseModel):
    name: str
    predictions: list[Label]
    probabilities: list[list[float]] | None = None
    classes: list[Label] | None = None


class StatusResponse(BaseModel):
    name: str
    status: Literal["trained", "loaded"]


class RemoveResponse(BaseModel):
    name: str
    removed: bool


class RemoveAllResponse(BaseModel):
    removed: list[str]
    training: list[str]


class TrainingStatus(BaseModel):
    backend: Literal["local", "dask"]
    scheduler: str | None = Field(default=None, description="with dask: the scheduler's address")
    workers: int | None = Field(default=None, description="with dask: workers connected now")
    cores: int
    slots: int
    active: int
    models: list[str]
    jobs: list[RunningJob]


class InferenceStatus(BaseModel):
    max_models: int
    loaded: list[str]


class ServiceStatus(BaseModel):
    training: TrainingStatus
    inference: InferenceStatus


class Health(BaseModel):
    status: Literal["ok"]


class ErrorResponse(BaseModel):
    detail: str


class Issue(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class InvalidResponse(BaseModel):
    """422: FastAPI's list of schema issues (the input is not echoed), or one message."""

    detail: str | list[Issue]
