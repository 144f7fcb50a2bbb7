"""The body /explain answers (server.explain)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.schemas.requests import Label


class ExplainResponse(BaseModel):
    name: str
    version: int = Field(description="the version that explains")
    classes: list[Label]
    feature_names: list[str] = Field(
        description="the model's columns (x0, x1, ... for a model trained from a JSON X)"
    )
    output: Literal["log_odds", "raw", "probability"] = Field(
        description="the space in which base_values and contributions add up"
    )
    base_values: list[float] = Field(description="per output: the output for an average row")
    contributions: list[list[list[float]]] = Field(
        description="[row][output][feature]: binary models one output (classes[1]), "
        "others one per class"
    )
    predictions: list[Label] = Field(description="what /predict answers for the rows")
