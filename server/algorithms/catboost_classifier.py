"""CatBoostClassifier: progress by a callback, explained by its own `ShapValues`, compiled by
its own ONNX export (float32 borders, `x > border`, as CatBoost compares), whose ZipMap
output (one dict per row) is taken off so that probabilities come back as one array.

Categorical columns: CatBoost's own (`cat_features`), given each cell's code as an integer,
with -1 for a missing one: CatBoost refuses NaN in a categorical feature, so missing is a
level of its own, as an unseen level is (it arrives as missing). Its ONNX export refuses
categorical features: such a model is served by CatBoost itself.

CatBoost reads and writes files at any path it is given (quantization borders, snapshots,
a training folder): those parameters are refused, and it never writes catboost_info/.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from server.algorithms.base import (
    BINARY,
    CATEGORICAL,
    FEATURES,
    FILES,
    MULTI,
    Algorithm,
    NotConvertible,
    log_uniform,
)
from server.algorithms.boosters import booster_explanation
from server.ml.explanations import Explanation
from server.ml.progress import ProgressSink, TrainingCall, planned

CATEGORICAL_NOT_EXPORTED = (
    "not compiled: CatBoost's ONNX export does not take categorical features, so CatBoost "
    "itself serves this model"
)
DEFAULT_ITERATIONS = 1000  # when none of ITERATION_KEYS is set
ITERATION_KEYS = ("iterations", "n_estimators", "num_boost_round", "num_trees")
REFUSED = {
    **dict.fromkeys(
        (
            "train_dir",
            "input_borders",
            "output_borders",
            "snapshot_file",
            "save_snapshot",
            "snapshot_interval",
        ),
        FILES,
    ),
    "cat_features": CATEGORICAL,
    **dict.fromkeys(
        (
            "text_features",
            "embedding_features",
            "text_processing",
            "dictionaries",
            "tokenizers",
            "feature_calcers",
        ),
        FEATURES,
    ),
}


class CatBoostType(Algorithm):
    name = "CatBoostClassifier"
    module = "catboost"
    class_name = "CatBoostClassifier"
    thread_parameter = "thread_count"
    forced: ClassVar[Mapping[str, Any]] = {"allow_writing_files": False}
    quiet: ClassVar[Mapping[str, Any]] = {"logging_level": "Silent"}
    quiet_keys = frozenset({"verbose", "silent", "logging_level", "verbose_eval"})
    predict_kwargs: ClassVar[Mapping[str, Any]] = {"thread_count": 1}  # it would use every core
    stops_early = True
    objectives: ClassVar[Mapping[str, str]] = {
        "Logloss": BINARY,
        "CrossEntropy": BINARY,
        "MultiClass": MULTI,
        "MultiClassOneVsAll": MULTI,
    }
    objective_keys = ("loss_function", "objective")
    class_count_keys = ("classes_count",)
    seed_parameter = "random_seed"

    def refused(self) -> dict[str, str]:
        return REFUSED

    def objective_name(self, value: Any) -> Any:
        return str(value).split(":", 1)[0]  # "Logloss:border=0.5"

    def fit(self, estimator: Any, call: TrainingCall) -> None:
        X, stopping, categorical = call.X, call.stopping, call.categorical
        call.sink.begin(_iterations(estimator))
        extra: dict[str, Any] = {}
        if categorical:
            estimator.set_params(cat_features=categorical)
            X = with_levels(X, categorical)
        if stopping is not None:
            rows, labels = stopping.validation
            if categorical:
                rows = with_levels(rows, categorical)
            extra = {"eval_set": (rows, labels), "early_stopping_rounds": stopping.rounds}
        estimator.fit(X, call.y, callbacks=[_ReportIterations(call.sink)], **extra)

    def input_for(self, estimator: Any) -> Callable[[np.ndarray], Any] | None:
        categorical = list(estimator.get_cat_feature_indices())
        return partial(with_levels, categorical=categorical) if categorical else None

    def explain(
        self, explainer: Any, X: np.ndarray, n_classes: int, means: list[float] | None
    ) -> Explanation:
        from catboost import Pool

        categorical = list(explainer.get_cat_feature_indices())
        rows = (
            Pool(with_levels(X, categorical), cat_features=categorical) if categorical else Pool(X)
        )
        values = explainer.get_feature_importance(rows, type="ShapValues", thread_count=1)
        return booster_explanation(values, n_classes)

    def convert(self, estimator: Any, n_features: int) -> bytes:
        import onnx

        if estimator.get_cat_feature_indices():
            raise NotConvertible(CATEGORICAL_NOT_EXPORTED)
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

    def thresholds(self, estimator: Any, n_features: int) -> dict[int, np.ndarray]:
        """Its float32 borders, per feature."""
        return {
            int(feature): np.asarray(borders, np.float64)
            for feature, borders in estimator.get_borders().items()
            if int(feature) < n_features
        }

    def space(self, rng: np.random.Generator) -> dict[str, Any]:
        """iterations 400; learning_rate log-uniform 0.02..0.3; depth 4..8; l2_leaf_reg
        log-uniform 1..10."""
        return {
            "iterations": 400,
            "learning_rate": log_uniform(rng, 0.02, 0.3),
            "depth": int(rng.integers(4, 9)),
            "l2_leaf_reg": log_uniform(rng, 1.0, 10.0),
        }


def with_levels(X: np.ndarray, categorical: list[int]) -> np.ndarray:
    """The rows as CatBoost takes categorical features: an object array, each categorical
    cell its code as an integer (-1: missing)."""
    rows = X.astype(object)
    codes = X[:, categorical]
    rows[:, categorical] = np.where(np.isnan(codes), -1, codes).astype(np.int64)
    return rows


class _ReportIterations:
    def __init__(self, sink: ProgressSink) -> None:
        self._sink = sink

    def after_iteration(self, info: Any) -> bool:
        self._sink.advance(int(info.iteration))  # 1-based
        return True  # go on


def _iterations(estimator: Any) -> int | None:
    params = estimator.get_params()  # only what was set
    for key in ITERATION_KEYS:
        if params.get(key) is not None:
            return planned(params[key])
    return DEFAULT_ITERATIONS


CATBOOST = CatBoostType()
