"""/health: liveness, and on a replica how it follows the primary."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class UnfollowedVersion(BaseModel):
    name: str
    version: int
    error: str = Field(description="why this replica can't serve it (it serves what it had)")


class Following(BaseModel):
    generation: int = Field(description="the primary's serving set this replica serves")
    store_generation: int = Field(description="the newest serving set it has read")
    behind_seconds: float = Field(
        description="since the oldest change of the primary it does not serve yet (0: none)"
    )
    checked_at: str = Field(description="when it last read the serving set (UTC)")
    problems: list[UnfollowedVersion]
    set_problem: str | None = Field(
        default=None, description="why the serving set itself can't be used, while it can't"
    )


class Health(BaseModel):
    status: Literal["ok", "unready"] = Field(
        description="unready (with 503): a replica that serves no set (it can't read one)"
    )
    role: Literal["replica"] | None = Field(default=None, description="only on a replica")
    primary_url: str | None = Field(default=None, description="a replica's PRIMARY_URL")
    following: Following | None = Field(default=None, description="only on a replica")
