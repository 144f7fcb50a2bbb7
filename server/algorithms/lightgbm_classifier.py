"""LGBMClassifier: every LightGBM parameter and alias accepted but those that reach outside
the training; progress and early stopping by callbacks; explained by its own `pred_contrib`.

Categorical columns: LightGBM's own categorical splits on the service's codes
(`categorical_feature`); a code is a level of the model's own sorted list, so the same text
always meets the same split (codes from another order answered differently).

Not compiled: LightGBM compares in double precision, and onnxmltools only writes float32
thresholds and inputs, which flipped labels next to the model's own split values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from server.algorithms.base import (
    BINARY,
    CATEGORICAL,
    FILES,
    MULTI,
    PREDICT,
    Algorithm,
    NotConvertible,
    log_uniform,
    pick,
)
from server.algorithms.boosters import booster_explanation
from server.ml.explanations import Explanation
from server.ml.progress import TrainingCall, planned

NOT_EXACT = (
    "not compiled: LightGBM compares in double precision, and its ONNX converter can only "
    "write float32 thresholds, which answer differently next to the model's split values"
)

# Canonical names; every alias of each is refused too (`refused`).
FILE_PARAMETERS = (
    "config",
    "convert_model",
    "convert_model_language",
    "data",
    "valid",
    "input_model",
    "output_model",
    "output_result",
    "forcedbins_filename",
    "forcedsplits_filename",
    "parser_config_file",
    "save_binary",
    "snapshot_freq",
    "task",
    "machines",
    "machine_list_filename",
    "num_machines",
    "local_listen_port",
    "time_out",
    "initscore_filename",
    "valid_data_initscores",
)
PREDICT_PARAMETERS = (
    "predict_raw_score",
    "predict_leaf_index",
    "predict_contrib",
    "predict_disable_shape_check",
    "pred_early_stop",
    "pred_early_stop_freq",
    "pred_early_stop_margin",
    "num_iteration_predict",
    "start_iteration_predict",
)
FEATURE_PARAMETERS = ("categorical_feature",)


class LightGBMType(Algorithm):
    name = "LGBMClassifier"
    module = "lightgbm"
    class_name = "LGBMClassifier"
    thread_parameter = "n_jobs"
    quiet: ClassVar[Mapping[str, Any]] = {"verbose": -1}
    quiet_keys = frozenset({"verbose", "verbosity"})
    stops_early = True
    objectives: ClassVar[Mapping[str, str]] = {
        "binary": BINARY,
        "cross_entropy": BINARY,
        "xentropy": BINARY,
        "multiclass": MULTI,
        "softmax": MULTI,
        "multiclassova": MULTI,
        "multiclass_ova": MULTI,
        "ova": MULTI,
        "ovr": MULTI,
    }
    objective_keys = ("objective", "objective_type", "app", "application", "loss")
    class_count_keys = ("num_class", "num_classes")

    def native_parameters(self) -> frozenset[str]:
        """Every LightGBM parameter and alias (`verbose`, `min_data_in_leaf`, ...):
        LGBMClassifier forwards them through **kwargs, so its signature does not list them."""
        aliases = _aliases()
        return frozenset(aliases).union(*aliases.values())

    def refused(self) -> Mapping[str, str]:
        return refused_with_aliases(_aliases())

    def fit(self, estimator: Any, call: TrainingCall) -> None:
        sink, stopping = call.sink, call.stopping
        sink.begin(planned(estimator.get_params()["n_estimators"]))
        callbacks = [lambda env: sink.advance(env.iteration + 1)]
        extra: dict[str, Any] = {}
        if stopping is not None:
            import lightgbm  # imported here: only a LightGBM fit needs it

            callbacks.append(lightgbm.early_stopping(stopping.rounds, verbose=False))
            extra = {"eval_X": (stopping.validation[0],), "eval_y": (stopping.validation[1],)}
        if call.categorical:
            extra["categorical_feature"] = call.categorical
        estimator.fit(call.X, call.y, callbacks=callbacks, **extra)

    def explain(
        self, explainer: Any, X: np.ndarray, n_classes: int, means: list[float] | None
    ) -> Explanation:
        """`pred_contrib` through the wrapper's own predict, so that the iterations are
        those of predict_proba."""
        values = np.asarray(explainer.predict(X, pred_contrib=True, num_threads=1))
        n_outputs = values.shape[1] // (X.shape[1] + 1)
        if n_outputs > 1:
            values = values.reshape(len(X), n_outputs, X.shape[1] + 1)
        return booster_explanation(values, n_classes)

    def convert(self, estimator: Any, n_features: int) -> bytes:
        raise NotConvertible(NOT_EXACT)

    def thresholds(self, estimator: Any, n_features: int) -> dict[int, np.ndarray]:
        """The booster's double thresholds, per feature."""
        booster = estimator.booster_
        trees = booster.trees_to_dataframe()
        splits = trees[trees["decision_type"] == "<="]
        names = booster.feature_name()
        found: dict[int, list[np.ndarray]] = {}
        for feature, group in splits.groupby("split_feature"):
            found.setdefault(names.index(feature), []).append(
                group["threshold"].to_numpy(np.float64)
            )
        return {f: np.concatenate(v) for f, v in found.items()}

    def space(self, rng: np.random.Generator) -> dict[str, Any]:
        """n_estimators 400; learning_rate log-uniform 0.02..0.3; num_leaves {15, 31, 63,
        127}; min_child_samples {5, 10, 20, 40}; colsample_bytree 0.6..1."""
        return {
            "n_estimators": 400,
            "learning_rate": log_uniform(rng, 0.02, 0.3),
            "num_leaves": pick(rng, [15, 31, 63, 127]),
            "min_child_samples": pick(rng, [5, 10, 20, 40]),
            "colsample_bytree": round(float(rng.uniform(0.6, 1.0)), 3),
            "verbose": -1,
        }


def _aliases() -> dict[str, list[str]]:
    """LightGBM's own table: canonical name -> its aliases."""
    from lightgbm.basic import _ConfigAliases  # private, but the library's only full list

    return dict(_ConfigAliases._get_all_param_aliases())


def refused_with_aliases(aliases: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """The refused names with every alias LightGBM knows them by."""
    refused: dict[str, str] = {}
    for names, reason in (
        (FILE_PARAMETERS, FILES),
        (PREDICT_PARAMETERS, PREDICT),
        (FEATURE_PARAMETERS, CATEGORICAL),
    ):
        for canonical in names:
            for name in {canonical, *aliases.get(canonical, ())}:
                refused[name] = reason
    return refused


LIGHTGBM = LightGBMType()
