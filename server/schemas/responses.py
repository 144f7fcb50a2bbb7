"""Response bodies, as the contract (docs/API.md) writes them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from server.schemas.requests import Label


def optional(description: str) -> Any:
    """A field that is null where `description` does not apply."""
    return Field(default=None, description=description)


class Scores(BaseModel):
    accuracy: float
    balanced_accuracy: float
    f1_macro: float
    roc_auc: float | None = Field(description="null when the rows hold a single class")
    log_loss: float


class RocCurve(BaseModel):
    class_index: int = Field(description="the class (an index into `classes`) against the rest")
    fpr: list[float]
    tpr: list[float]


class Validation(BaseModel):
    fraction: float
    seed: int
    n_samples: int = Field(description="rows held out and scored")
    scores: Scores
    roc_curve: list[RocCurve] | None = Field(
        default=None,
        description="one-vs-rest ROC curves on the held-out rows (the second class's for two "
        "classes), at most 64 points each",
    )
    confusion_matrix: list[list[int]] | None = Field(
        default=None,
        description="held-out rows by true class (rows) and predicted class (columns)",
    )
    feature_importance: dict[str, float] | None = optional(
        "each feature's mean absolute contribution (SHAP value) over the held-out rows "
        "explained, largest first"
    )
    importance_rows: int | None = optional("how many held-out rows feature_importance explains")


class EvaluateResponse(BaseModel):
    name: str
    version: int = Field(description="the version that answered")
    n_samples: int
    scores: Scores
    left_out_trained_rows: int | None = Field(
        default=None,
        description="from_capture: labelled rows of the window left out because this version "
        "trained on them (it is never scored on its training rows)",
    )


class Compiled(BaseModel):
    format: Literal["onnx"] | None = Field(description="null: not compiled (see reason)")
    bytes: int | None = None
    reason: str | None = None
    seconds: float = Field(description="time the conversion took, after the fit")
    check_seconds: float | None = Field(
        default=None, description="time the check against the estimator took, after that"
    )


class Feature(BaseModel):
    """One column of the model: numeric, or categorical with the levels it learned."""

    name: str
    kind: Literal["numeric", "categorical"]
    levels: list[str] | None = Field(
        default=None, description="categorical: the levels seen in the training rows, sorted"
    )
    counts: list[int] | None = Field(
        default=None, description="categorical: the training rows of each level"
    )


class FitResponse(BaseModel):
    name: str
    version: int = Field(description="1 for a new name; the next number for new_version")
    model_type: str
    status: Literal["training", "trained", "loaded"]
    hyperparameters: dict[str, Any]
    n_samples: int
    n_features: int
    classes: list[Label]
    feature_names: list[str] | None = Field(
        default=None, description="the file's feature columns; null for a JSON X"
    )
    features: list[Feature] | None = Field(
        default=None,
        description="each column's kind and, for a categorical one, its levels (v5; null for "
        "models trained before)",
    )
    validation: Validation | None = Field(
        default=None, description="with config.validation_fraction: the held-out scores"
    )
    compiled: Compiled | None = Field(
        default=None,
        description="the ONNX conversion after the fit; null with INFERENCE_RUNTIME=native",
    )
    train_seconds: float | None = None
    train_cpu_seconds: float | None = None
    warnings: list[str] | None = Field(
        default=None,
        description="what the library warned about while training (a model that did not "
        "converge), each once; absent when it said nothing",
    )
    trained_from_capture: dict[str, Any] | None = Field(
        default=None, description="config.from_capture: the window, and the rows of each side"
    )


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
    phase: Literal["training", "explaining", "compiling", "checking", "saving"] | None = Field(
        description="while running: training, then explaining the held-out rows (feature "
        "importance), compiling the ONNX copy, checking it against the estimator and saving; "
        "null once finished"
    )
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
    """The /fit answer plus status, created_at and size_bytes. What a model in training, a
    broken or an untrusted model can't tell is null; a broken or untrusted one says why in
    `error`."""

    name: str
    status: Literal["training", "trained", "loaded", "broken", "untrusted"]
    model_type: str | None = None
    hyperparameters: dict[str, Any] | None = None
    n_samples: int | None = None
    n_features: int | None = None
    classes: list[Label] | None = None
    feature_names: list[str] | None = None
    features: list[Feature] | None = None
    validation: Validation | None = None
    compiled: Compiled | None = None
    runtime: Literal["onnx", "native"] | None = optional(
        "while loaded: what serves its predictions"
    )
    runtime_detail: str | None = optional(
        "while loaded: what the compiled model was checked on, or why the estimator serves instead",
    )
    estimator: str | None = optional(
        "while loaded: whether the estimator has been read (a model its compiled "
        "copy serves reads it only when a batch needs it)",
    )
    unseen_levels: dict[str, int] | None = optional(
        "while loaded: per categorical column, the cells whose level the model never saw "
        "(answered as missing), since it was loaded",
    )
    train_seconds: float | None = None
    train_cpu_seconds: float | None = None
    warnings: list[str] | None = optional("what the library warned about while training")
    trained_from_capture: dict[str, Any] | None = optional(
        "config.from_capture: the window it trained on, and the rows of each side"
    )
    created_at: str | None = optional("ISO 8601, UTC; for a model in training, when it started")
    size_bytes: int | None = optional("unknown while training")
    automl: dict[str, Any] | None = optional(
        "a version saved by an AutoML search: its `search` id, the `candidate` "
        "that won, and the `metric` it won on",
    )
    error: str | None = optional(
        "why a broken model can't be loaded, or why an untrusted one won't be "
        "(and how to trust it)",
    )
    job_id: str | None = optional("while training: its job")
    progress: Progress | None = optional("while training")
    version: int | None = optional("which version this describes")
    current_version: int | None = optional("the name's current version")
    aliases: dict[str, int] | None = optional("alias: version")
    training_version: int | None = optional("a new version of this name in training")
    versions: list[ModelInfo] | None = optional("GET /models/{name}: every version, oldest first")


class VersionPointers(BaseModel):
    name: str
    current_version: int
    aliases: dict[str, int]


class VersionList(VersionPointers):
    versions: list[ModelInfo] = Field(description="oldest first")


class Move(BaseModel):
    at: str = Field(description="ISO 8601, UTC")
    pointer: str = Field(description='"current" or an alias')
    from_: int | None = Field(alias="from", description="null: the alias did not exist")
    to: int | None = Field(description="null: the alias was removed")


class History(BaseModel):
    name: str
    history: list[Move]


class VersionRemoved(BaseModel):
    name: str
    version: int
    removed: bool


class ModelList(BaseModel):
    models: list[ModelInfo]


class PredictResponse(BaseModel):
    name: str
    version: int = Field(description="the version that answered")
    predictions: list[Label]
    probabilities: list[list[float]] | None = None
    classes: list[Label] | None = None
    request_id: str | None = Field(
        default=None, description="the request's id, as its X-Request-Id header says"
    )


class StatusResponse(BaseModel):
    name: str
    version: int
    status: Literal["trained", "loaded"]


class RemoveResponse(BaseModel):
    name: str
    removed: bool


class RemoveAllResponse(BaseModel):
    removed: list[str]
    training: list[str]


class ErrorResponse(BaseModel):
    detail: str


class Issue(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class InvalidResponse(BaseModel):
    """422: FastAPI's list of schema issues (the input is not echoed), or one message."""

    detail: str | list[Issue]
