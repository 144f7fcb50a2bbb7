"""XGBClassifier: progress by a training callback, explained by the booster's own TreeSHAP,
compiled in float32 from the booster's own arrays (server.algorithms.xgboost_graph; XGBoost
itself casts to float32 and compares `x < t` with float32 thresholds, which the graph keeps
bit for bit), by onnxmltools where the model has categorical splits.

Categorical columns: XGBoost's own categorical splits (`enable_categorical`, `feature_types`
"c"), trained on the service's codes in a numpy array, not on a DataFrame: XGBoost's own
re-coder raises on a level outside its list, and onnxmltools converts these splits exactly
only for a model trained from codes (the check at fit and load proves it, per model)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from server.algorithms.base import BINARY, MULTI, Algorithm, log_uniform, pick
from server.algorithms.boosters import booster_explanation
from server.algorithms.onnx_export import ONNXMLTOOLS_OPSET, float_input
from server.algorithms.xgboost_graph import xgboost_to_onnx
from server.ml.explanations import Explanation
from server.ml.progress import ProgressSink, TrainingCall, planned

DEFAULT_ROUNDS = 100


class XGBoostType(Algorithm):
    name = "XGBClassifier"
    module = "xgboost"
    class_name = "XGBClassifier"
    thread_parameter = "n_jobs"
    stops_early = True
    objectives: ClassVar[Mapping[str, str]] = {
        "binary:logistic": BINARY,
        "binary:logitraw": BINARY,
        "binary:hinge": BINARY,
        "multi:softprob": MULTI,
        "multi:softmax": MULTI,
    }
    objective_keys = ("objective",)
    class_count_keys = ()  # it sets num_class itself

    def fit(self, estimator: Any, call: TrainingCall) -> None:
        X, sink, stopping, categorical = call.X, call.sink, call.stopping, call.categorical
        if categorical:
            kinds = ["c" if i in categorical else "q" for i in range(X.shape[1])]
            estimator.set_params(enable_categorical=True, feature_types=kinds)
        params = estimator.get_params()
        count = params.get("n_estimators")
        sink.begin(DEFAULT_ROUNDS if count is None else planned(count))
        user_callbacks = params.get("callbacks")
        estimator.set_params(callbacks=[*(user_callbacks or []), _rounds_reported_to(sink)])
        extra: dict[str, Any] = {}
        if stopping is not None:
            estimator.set_params(early_stopping_rounds=stopping.rounds)
            extra = {"eval_set": [stopping.validation], "verbose": False}
        try:
            estimator.fit(X, call.y, **extra)
        finally:
            estimator.set_params(callbacks=user_callbacks)

    def explain(
        self, explainer: Any, X: np.ndarray, n_classes: int, means: list[float] | None
    ) -> Explanation:
        """The booster's `pred_contribs` (TreeSHAP, path-dependent, in the margin)."""
        import xgboost

        booster = explainer.get_booster()
        # The rounds predict_proba uses: up to the best one where the fit stopped early.
        best = getattr(explainer, "best_iteration", None)
        rounds = (0, best + 1) if best is not None else (0, 0)
        kinds = explainer.get_params().get("feature_types")
        matrix = xgboost.DMatrix(
            X, missing=np.nan, nthread=1, feature_types=kinds, enable_categorical=bool(kinds)
        )
        values = booster.predict(matrix, pred_contribs=True, iteration_range=rounds)
        return booster_explanation(values, n_classes)

    def convert(self, estimator: Any, n_features: int) -> bytes:
        built = xgboost_to_onnx(estimator, n_features)  # from the booster's own arrays
        if built is not None:
            return built
        import onnxmltools  # categorical splits, other objectives

        model = onnxmltools.convert_xgboost(
            estimator, initial_types=float_input(n_features), target_opset=ONNXMLTOOLS_OPSET
        )
        return bytes(model.SerializeToString())

    def space(self, rng: np.random.Generator) -> dict[str, Any]:
        """n_estimators 400; learning_rate log-uniform 0.02..0.3; max_depth 3..10;
        subsample, colsample_bytree 0.6..1; min_child_weight {1, 3, 5}."""
        return {
            "n_estimators": 400,
            "learning_rate": log_uniform(rng, 0.02, 0.3),
            "max_depth": int(rng.integers(3, 11)),
            "subsample": round(float(rng.uniform(0.6, 1.0)), 3),
            "colsample_bytree": round(float(rng.uniform(0.6, 1.0)), 3),
            "min_child_weight": pick(rng, [1, 3, 5]),
        }


def _rounds_reported_to(sink: ProgressSink) -> Any:
    """An xgboost TrainingCallback, made at fit time (xgboost is imported by then)."""
    from xgboost.callback import TrainingCallback

    class ReportRounds(TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            sink.advance(epoch + 1)
            return False  # never stop early on our account

    return ReportRounds()


XGBOOST = XGBoostType()
