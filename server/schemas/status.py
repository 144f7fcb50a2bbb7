"""The body of GET /status: what trains and what is loaded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.schemas.responses import RunningJob


class TrainingStatus(BaseModel):
    backend: Literal["local", "dask"]
    scheduler: str | None = Field(default=None, description="with dask: the scheduler's address")
    workers: int | None = Field(default=None, description="with dask: workers connected now")
    cores: int = Field(description="TRAINING_CORES: the slots, and one for the server")
    training_cores: int = Field(
        description="the cores trainings run on (local: every allowed core but the server's; "
        "dask: the workers' threads)"
    )
    server_core: int | None = Field(
        default=None, description="local: the core no training uses (null: not pinned)"
    )
    slots: int
    active: int
    models: list[str]
    jobs: list[RunningJob]


class LoadedVersion(BaseModel):
    name: str
    version: int


class InferenceStatus(BaseModel):
    max_models: int
    loaded: list[str] = Field(description="names whose current version is loaded")
    loaded_versions: list[LoadedVersion] = Field(
        description="every loaded version (those count against max_models)"
    )


class ServiceStatus(BaseModel):
    training: TrainingStatus
    inference: InferenceStatus
