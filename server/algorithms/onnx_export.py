"""What the types' converters share: the opsets they write, and onnxmltools' input."""

from __future__ import annotations

from typing import Any

# The converters' own opsets: skl2onnx 1.20 writes up to 21, onnxmltools 1.16 up to 15.
SKLEARN_OPSETS = {"": 17, "ai.onnx.ml": 3}
ONNXMLTOOLS_OPSET = 15


def float_input(n_features: int) -> list[tuple[str, Any]]:
    """onnxmltools' float32 input of `n_features` columns."""
    from onnxmltools.convert.common.data_types import FloatTensorType

    return [("X", FloatTensorType([None, n_features]))]
