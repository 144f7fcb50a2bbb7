"""Estimator -> ONNX, in the training process, right after the fit.

Converting there rather than at load keeps the server's core for serving (skl2onnx on a
100-tree forest is seconds of Python), lets a converter that hangs be stopped like any fit
(cancel, MAX_TRAIN_SECONDS), and makes a load only a session start and a check.

- LogisticRegression: skl2onnx, in double precision, as scikit-learn computes it;
- RandomForest: built here from the trees' arrays (`forest.py`): skl2onnx rounded thresholds
  to the nearest float32, which sent rows at a split the other way, and took as long as the
  fit;
- XGBoost: onnxmltools, float32 (XGBoost itself casts to float32 and compares `x < t` with
  float32 thresholds, which the graph keeps bit for bit);
- CatBoost: its own ONNX export (float32 borders, `x > border`, as CatBoost compares), whose
  ZipMap output (one dict per row) is taken off so that probabilities come back as one array;
- LightGBM: not converted. LightGBM compares in double and onnxmltools only writes float32
  thresholds and inputs, which flipped labels next to the model's own split values.
A conversion that fails, or that can't compute what the library computes, gives a reason
instead of a model, and the estimator serves.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.inference.compiled.forest import forest_to_onnx

# The converters' own opsets: skl2onnx 1.20 writes up to 21, onnxmltools 1.16 up to 15.
SKLEARN_OPSETS = {"": 17, "ai.onnx.ml": 3}
ONNXMLTOOLS_OPSET = 15


LIGHTGBM_NOT_EXACT = (
    "not compiled: LightGBM compares in double precision, and its ONNX converter can only "
    "write float32 thresholds, which answer differently next to the model's split values"
)


@dataclass(frozen=True)
class Compiled:
    onnx: bytes | None  # the model, or None with a reason
    reason: str | None
    seconds: float
    check_seconds: float | None = None  # the check against the estimator, once it has run

    def checked(self, failure: str | None, seconds: float) -> Compiled:
        """After the check at the end of the fit: kept if it passed, else dropped with why."""
        if failure is None:
            return dataclasses.replace(self, check_seconds=seconds)
        reason = f"converted, but the check failed: {failure}"[:500]
        return dataclasses.replace(self, onnx=None, reason=reason, check_seconds=seconds)

    def describe(self) -> dict[str, Any]:
        """The model metadata's `compiled`."""
        described: dict[str, Any] = {"format": None, "reason": self.reason}
        if self.onnx is not None:
            described = {"format": "onnx", "bytes": len(self.onnx)}
        described["seconds"] = round(self.seconds, 4)
        if self.check_seconds is not None:
            described["check_seconds"] = round(self.check_seconds, 4)
        return described


def compile_estimator(model_type: str, estimator: Any, n_features: int) -> Compiled:
    started = time.perf_counter()
    if model_type == "LGBMClassifier":
        return Compiled(None, LIGHTGBM_NOT_EXACT, time.perf_counter() - started)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # converters warn about opsets and NaN thresholds
            onnx = CONVERTERS[model_type](estimator, n_features)
    except Exception as error:  # any converter failure means: serve the estimator
        reason = f"conversion failed: {type(error).__name__}: {error}"[:500]
        return Compiled(None, reason, time.perf_counter() - started)
    return Compiled(onnx, None, time.perf_counter() - started)


def preload_converters() -> None:
    """Import the converters now (a quarter of a second once the estimators are imported),
    so that no fit pays for it."""
    import onnxmltools.convert.common.data_types  # noqa: F401
    import skl2onnx  # noqa: F401


def _sklearn(estimator: Any, n_features: int) -> bytes:
    from skl2onnx import to_onnx

    model = to_onnx(
        estimator,
        np.zeros((1, n_features), dtype=np.float64),
        options={"zipmap": False},
        target_opset=SKLEARN_OPSETS,
    )
    return bytes(model.SerializeToString())


def _float_input(n_features: int) -> list[tuple[str, Any]]:
    from onnxmltools.convert.common.data_types import FloatTensorType

    return [("X", FloatTensorType([None, n_features]))]


def _xgboost(estimator: Any, n_features: int) -> bytes:
    import onnxmltools

    model = onnxmltools.convert_xgboost(
        estimator, initial_types=_float_input(n_features), target_opset=ONNXMLTOOLS_OPSET
    )
    return bytes(model.SerializeToString())


def _catboost(estimator: Any, n_features: int) -> bytes:
    import onnx

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.onnx"
        estimator.save_model(str(path), format="onnx")
        model = onnx.load(str(path))
    graph = model.graph
    zipmaps = [node for node in graph.node if node.op_type == "ZipMap"]
    if zipmaps:  # probabilities as a [rows, classes] tensor, not a list of dicts
        zipmap = zipmaps[0]
        graph.node.remove(zipmap)
        output = next(o for o in graph.output if o.name == zipmap.output[0])
        graph.output.remove(output)
        graph.output.append(
            onnx.helper.make_tensor_value_info(zipmap.input[0], onnx.TensorProto.FLOAT, None)
        )
    return bytes(model.SerializeToString())


CONVERTERS = {
    "LogisticRegression": _sklearn,
    "RandomForestClassifier": forest_to_onnx,
    "XGBClassifier": _xgboost,
    "CatBoostClassifier": _catboost,
}
