"""A model bundle's bytes, and its metadata as answers show it."""

from __future__ import annotations

import io
from typing import Any

import joblib

from server.store.layout import INTERNAL_KEYS

BUNDLE_KEYS = frozenset({"estimator", "classes", "model_type", "n_features"})


def serialize(bundle: dict[str, Any]) -> tuple[bytes, bytes | None]:
    """A model bundle as the bytes of its `.joblib` file and of its compiled copy's file
    (what a cluster worker sends back). The compiled copy is kept apart: serving it then
    needs no unpickling."""
    onnx = bundle.get("onnx")
    buffer = io.BytesIO()
    joblib.dump({**bundle, "onnx": None} if onnx is not None else bundle, buffer)
    return buffer.getvalue(), onnx


def public(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata as answers show it."""
    return {key: value for key, value in metadata.items() if key not in INTERNAL_KEYS}
