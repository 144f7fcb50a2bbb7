"""A stand-in for the model store, for tests and benchmarks that build a monitor over capture
files alone: it holds one version's metadata and answers every name with it."""

from __future__ import annotations

from typing import Any


class OneVersion:
    def __init__(self, metadata: dict[str, Any]) -> None:
        self.metadata = metadata

    def exists(self, name: str) -> bool:
        return True

    def read_metadata(self, name: str, version: int) -> dict[str, Any]:
        return self.metadata
