"""Monitoring's bodies (docs/monitoring.md): the capture setting, feedback, the window of
captured rows a fit or an evaluation learns from, and the report."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.schemas.requests import Body, Labels

KeyValue = Annotated[str, Field(min_length=1, max_length=256)]


class CaptureRequest(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"capture": True, "sample_rate": 1.0}]}
    )

    capture: bool
    sample_rate: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        default=1.0, description="the share of requests captured (each whole, or not at all)"
    )
    capture_exclude: list[str] = Field(
        default_factory=list, description="columns never written (personal data)"
    )


class FeedbackRequest(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"request_id": "0193a4c2-7b1e-7c3d-9f00-2b6c1d0e4a11", "y": ["Yes"]},
                {"keys": ["c-1041", "c-2203"], "y": ["No", "Yes"]},
            ]
        }
    )

    request_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="a /predict answer's request id: a label per row, in order"
    )
    keys: list[KeyValue] | None = Field(
        default=None, description="values of the key column sent with config.key"
    )
    y: Labels

    @model_validator(mode="after")
    def _one_way(self) -> FeedbackRequest:
        if (self.request_id is None) == (self.keys is None):
            raise ValueError("give request_id or keys, one of the two")
        if self.keys is not None and len(self.keys) != len(self.y):
            raise ValueError(f"keys has {len(self.keys)} values but y has {len(self.y)} labels")
        return self


class FeedbackForm(BaseModel):
    file: bytes = Field(json_schema_extra={"format": "binary"}, description="CSV or Parquet")
    target: str = Field(default="target", description="the column that holds the labels")
    config: str = Field(
        description='{"key": column} as JSON text: the column of keys', examples=['{"key": "id"}']
    )


class FeedbackResponse(BaseModel):
    name: str
    matched: int = Field(description="captured rows the labels reached")
    pending: int = Field(description="labels of a known request whose rows are not written yet")
    unmatched: int = Field(description="labels whose request id or key matched no row (kept)")
    unmatched_examples: list[str] = Field(description="a few of those ids or keys")


class CaptureSettingResponse(BaseModel):
    name: str
    capture: bool
    sample_rate: float
    capture_exclude: list[str]
    refused: str | None = Field(
        default=None,
        description="why the stored setting was not followed at start (an older copy put "
        "back, a deleted or unsigned file): capture is off until set again",
    )


class MonitoringReport(BaseModel):
    name: str
    capture: bool
    sample_rate: float
    window: dict[str, str]
    refused: str | None = Field(
        default=None, description="why the stored capture setting is not followed (see PUT)"
    )
    versions: list[dict[str, Any]]


class ErasedResponse(BaseModel):
    name: str
    key: str
    rows: int = Field(description="captured rows erased")
    labels: int = Field(description="labels erased")
