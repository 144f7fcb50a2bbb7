"""What the store saved for a version, read straight from its files, for tests and
benchmarks (the server itself reads only through its tag checks, server.store.checks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib


def saved_bundle(models_dir: Path, name: str, version: int | None = None) -> dict[str, Any]:
    """The estimator's bundle (of the current version unless `version`), with its compiled
    copy (which has a file of its own) as `onnx`, as a single file held it before v3."""
    if version is None:  # a name removed and trained again starts above its old numbers
        version = int(json.loads((models_dir / name / "pointers.json").read_text())["current"])
    bundle: dict[str, Any] = joblib.load(models_dir / name / f"{version}.joblib")
    onnx = models_dir / name / f"{version}.onnx"
    if bundle.get("onnx") is None and onnx.exists():
        bundle["onnx"] = onnx.read_bytes()
    return bundle
