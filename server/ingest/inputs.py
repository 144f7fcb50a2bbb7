"""What a parsed request holds, whichever format it came in (JSON or a file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from server.ingest.features import Features
from server.schemas import EvaluateConfig, ExplainConfig, PredictConfig, VersionedConfig
from server.tables.raw import RawTable

ConfigT = TypeVar("ConfigT", bound=VersionedConfig)


@dataclass(frozen=True)
class FitInput:
    config: Any  # FitConfig; AutoMLConfig for /automl (server.schemas.automl)
    raw: RawTable  # the table's columns as they came (server.tables.raw)
    y: list[Any]
    feature_names: list[str] | None  # a file's or records' columns; None for a JSON X
    # config.from_capture: the window and the rows of each source (the version keeps it)
    provenance: dict[str, Any] | None = None


@dataclass(frozen=True)
class RowsInput(Generic[ConfigT]):
    """Rows for a loaded model to answer, and the request's config."""

    config: ConfigT
    features: Features


PredictInput = RowsInput[PredictConfig]
ExplainInput = RowsInput[ExplainConfig]


@dataclass(frozen=True)
class EvaluateInput(RowsInput[EvaluateConfig]):
    y: list[Any]  # the rows' true labels
