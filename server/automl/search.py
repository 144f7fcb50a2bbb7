"""One search: its candidates, their outcomes, the leaderboard, and a change counter that
its event stream waits on (as a job's does)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# For each metric, whether more is better: the leaderboard sorts best first.
HIGHER_IS_BETTER = {
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
    "roc_auc": True,
    "log_loss": False,
}


@dataclass(eq=False)
class CandidateRun:
    number: int  # the order it was drawn in, from 1
    model_type: str
    hyperparameters: dict[str, Any]
    state: str = "waiting"
    job_id: str | None = None
    metadata: dict[str, Any] | None = None  # once it succeeded
    error: str | None = None
    started: float | None = None  # monotonic
    ended: float | None = None

    def score(self, metric: str) -> float | None:
        if self.metadata is None:
            return None
        value = self.metadata["validation"]["scores"].get(metric)
        return None if value is None else float(value)

    def describe(self, rank: int | None) -> dict[str, Any]:
        meta = self.metadata or {}
        serving = meta.get("serving")
        return {
            "rank": rank,
            "candidate": self.number,
            "model_type": self.model_type,
            "hyperparameters": meta.get("hyperparameters", self.hyperparameters),
            "state": self.state,
            "job_id": self.job_id,
            "scores": meta["validation"]["scores"] if meta else None,
            "train_seconds": meta.get("train_seconds"),
            "predict_us_per_row": meta.get("predict_us_per_row"),
            "runtime": None if not meta else "onnx" if serving else "native",
            "error": self.error,
        }


@dataclass(eq=False)
class Search:
    name: str
    metric: str
    planned: int | None  # max_models
    deadline: float | None  # monotonic, from max_runtime_secs
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "running"
    candidates: list[CandidateRun] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    model: dict[str, Any] | None = None  # the saved winner's metadata
    error: str | None = None
    version: int = 0  # bumped on every change
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return self.state != "running"

    def changed(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def next_change(self, seen: int) -> None:
        if self.version == seen:
            await self._changed.wait()

    def rank_key(self, run: CandidateRun) -> tuple[float, int]:
        """Smaller is better: the score (negated where more is better), then the earlier
        drawn."""
        sign = -1.0 if HIGHER_IS_BETTER[self.metric] else 1.0
        return (sign * (run.score(self.metric) or 0.0), run.number)

    def ranked(self) -> list[CandidateRun]:
        """The candidates that succeeded, best first."""
        done = [c for c in self.candidates if c.state == "succeeded" and c.metadata is not None]
        return sorted(done, key=self.rank_key)

    def end(self, state: str) -> None:
        self.state = state
        self.ended = time.monotonic()
        self.finished_at = datetime.now(UTC)
        self.changed()

    def describe(self) -> dict[str, Any]:
        ranked = self.ranked()
        ranks = {id(c): i + 1 for i, c in enumerate(ranked)}
        states = [c.state for c in self.candidates]
        end = self.ended if self.ended is not None else time.monotonic()
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "metric": self.metric,
            "progress": {
                "finished": sum(s in ("succeeded", "failed", "cancelled") for s in states),
                "running": states.count("running"),
                "planned": self.planned if self.planned is not None else len(states),
            },
            "leaderboard": [c.describe(ranks[id(c)]) for c in ranked],
            "candidates": [c.describe(ranks.get(id(c))) for c in self.candidates],
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "elapsed_seconds": round(end - self.started, 2),
            "training_seconds": round(
                sum((c.metadata or {}).get("train_seconds", 0.0) for c in self.candidates), 3
            ),
            "model": self.model,
            "error": self.error,
        }
