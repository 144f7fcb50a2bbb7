"""The bodies of the AutoML routes (docs/API.md, AutoML): the search's config, its
leaderboard and its state."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.algorithms import MODEL_TYPES
from server.schemas.requests import Body, Matrix, ModelName, TableOptions
from server.schemas.responses import Scores

Metric = Literal["accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"]


class AutoMLConfig(TableOptions):
    name: ModelName
    model_types: list[str] = Field(
        default_factory=lambda: list(MODEL_TYPES),
        min_length=1,
        description="the types to search (any case); default: all five",
    )
    max_models: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None, description="at most this many candidates"
    )
    max_runtime_secs: Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)] | None = Field(
        default=None, description="stop the search after this many seconds"
    )
    metric: Metric | None = Field(
        default=None,
        description="what ranks the candidates on the held-out rows; default: roc_auc for two "
        "classes, log_loss for more",
    )
    validation_fraction: Annotated[float, Field(gt=0, le=0.5, allow_inf_nan=False)] = Field(
        default=0.2, description="the held-out rows every candidate is scored on (stratified)"
    )
    seed: int = Field(default=0, description="the split's and the search's random seed")
    new_version: bool = Field(default=False, description="as for /fit")
    promote: bool = Field(default=False, description="as for /fit")

    @model_validator(mode="after")
    def _a_budget(self) -> AutoMLConfig:
        if self.max_models is None and self.max_runtime_secs is None:
            raise ValueError("give max_models, max_runtime_secs, or both: the search's budget")
        return self


class AutoMLRequest(Body):
    model_config = ConfigDict(extra="forbid", strict=True)
    X: Matrix
    y: list[int] | list[str]
    config: AutoMLConfig


class Candidate(BaseModel):
    rank: int | None = Field(description="1 for the best; null until it has finished")
    candidate: int = Field(description="the order it was drawn in, from 1")
    model_type: str
    hyperparameters: dict[str, Any]
    state: Literal["waiting", "running", "succeeded", "failed", "cancelled"]
    job_id: str | None = None
    scores: Scores | None = None
    train_seconds: float | None = None
    predict_us_per_row: float | None = Field(
        default=None, description="on the runtime that would serve it (compiled or native)"
    )
    runtime: Literal["onnx", "native"] | None = None
    error: str | None = None


class AutoMLSearch(BaseModel):
    id: str
    name: str
    state: Literal["running", "succeeded", "failed", "cancelled"]
    metric: Metric
    progress: dict[str, int] = Field(description="candidates finished, running and planned")
    leaderboard: list[Candidate] = Field(description="finished candidates, best first")
    candidates: list[Candidate] = Field(description="every candidate, in the order drawn")
    created_at: str
    finished_at: str | None = None
    elapsed_seconds: float
    training_seconds: float = Field(description="the candidates' training times, summed")
    model: dict[str, Any] | None = Field(default=None, description="the saved winner's metadata")
    error: str | None = None


class AutoMLList(BaseModel):
    searches: list[AutoMLSearch]
