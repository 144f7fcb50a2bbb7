"""RandomForestClassifier (scikit-learn): grown in chunks of trees to report progress,
compiled from its own arrays, explained by shap's exact TreeExplainer. Categorical columns
are one-hot encoded with a missing column (server.algorithms.preparation): scikit-learn's
trees split on numbers only, and one-hot keeps a level's answer independent of any order of
the levels."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from server.algorithms.base import Algorithm, pick
from server.algorithms.forest_graph import forest_to_onnx
from server.algorithms.preparation import Preparation
from server.ml.explanations import Explanation
from server.ml.progress import TrainingCall

# The forest grows in chunks sized to take about this long: a few updates a second, and the
# per-chunk cost (checking X again) stays a small share of the fit.
FOREST_CHUNK_SECONDS = 0.25


class RandomForestType(Algorithm):
    name = "RandomForestClassifier"
    module = "sklearn.ensemble"
    class_name = "RandomForestClassifier"
    thread_parameter = "n_jobs"
    float32_inputs = True

    def preparation(self, X: np.ndarray, levels: tuple[int | None, ...]) -> Preparation | None:
        if all(count is None for count in levels):
            return None  # numbers, with their missing values, as scikit-learn takes them
        return Preparation.fit(X, levels, standardise=False)

    def fit(self, estimator: Any, call: TrainingCall) -> None:
        """Grow the forest with warm_start, a chunk of trees at a time. scikit-learn draws
        each new tree's seed from the same random stream as a single fit would, so for an
        integer random_state the forest is the same (tests/test_jobs.py proves it)."""
        # scikit-learn checks its parameters in fit; growing in chunks would skip that for a
        # count below 1 (and save a forest of no trees), so check them first, in its words.
        estimator._validate_params()
        params = estimator.get_params()
        total, wanted_oob = int(params["n_estimators"]), params["oob_score"]
        call.sink.begin(total)
        # Intermediate chunks skip the out-of-bag score; the last computes it over all trees.
        estimator.set_params(warm_start=True, oob_score=False)
        grown, chunk = 0, 1
        try:
            while grown < total:
                target = min(total, grown + chunk)
                if target == total:
                    estimator.set_params(oob_score=wanted_oob)
                started = time.perf_counter()
                estimator.set_params(n_estimators=target)
                estimator.fit(call.X, call.y)
                per_tree = (time.perf_counter() - started) / (target - grown)
                grown = target
                call.sink.advance(grown)
                chunk = max(1, round(FOREST_CHUNK_SECONDS / max(per_tree, 1e-6)))
        finally:
            estimator.set_params(warm_start=params["warm_start"], n_estimators=total)

    def explainer_for(self, estimator: Any) -> Any:
        """shap's TreeExplainer, exact and path-dependent, in the averaged leaf probabilities
        (scikit-learn has no TreeSHAP of its own). Building one reads every tree into arrays,
        a large share of a 1-row explanation: whoever explains again keeps it."""
        # Heavy (numba, pandas: seconds): imported when a forest is first explained, not by
        # every training process at start-up, where it would delay every type's first fits.
        import shap

        return shap.TreeExplainer(
            estimator, feature_perturbation="tree_path_dependent", model_output="raw"
        )

    def explain(
        self, explainer: Any, X: np.ndarray, n_classes: int, means: list[float] | None
    ) -> Explanation:
        # The forest compares float32 values, as scikit-learn's trees read them.
        rows = X.astype(np.float32).astype(np.float64)
        values = np.asarray(explainer.shap_values(rows, check_additivity=False))  # (r, f, k)
        expected = np.asarray(explainer.expected_value, dtype=np.float64).reshape(-1)
        if values.ndim == 2:
            values = values[:, :, None]
        if len(expected) == 2:  # binary: the positive class, as the other types answer
            values, expected = values[:, :, 1:], expected[1:]
        contributions = np.ascontiguousarray(values.transpose(0, 2, 1))
        return Explanation("probability", expected, contributions)

    def convert(self, estimator: Any, n_features: int) -> bytes:
        """Built from the trees' arrays (server.inference.compiled.forest): skl2onnx rounded
        thresholds to the nearest float32, which sent rows at a split the other way."""
        return forest_to_onnx(estimator, n_features)

    def thresholds(self, estimator: Any, n_features: int) -> dict[int, np.ndarray]:
        """scikit-learn's double thresholds, per feature."""
        found: dict[int, list[np.ndarray]] = {}
        for tree in estimator.estimators_:
            inner = tree.tree_.feature >= 0
            for feature in np.unique(tree.tree_.feature[inner]):
                chosen = tree.tree_.feature == feature
                found.setdefault(int(feature), []).append(tree.tree_.threshold[chosen])
        return {f: np.concatenate(v) for f, v in found.items()}

    def space(self, rng: np.random.Generator) -> dict[str, Any]:
        """n_estimators {100, 200, 400}; max_depth {None, 8, 16, 32}; min_samples_leaf
        {1, 2, 4, 8}; max_features {sqrt, 0.5, 1.0}."""
        return {
            "n_estimators": pick(rng, [100, 200, 400]),
            "max_depth": pick(rng, [None, 8, 16, 32]),
            "min_samples_leaf": pick(rng, [1, 2, 4, 8]),
            "max_features": pick(rng, ["sqrt", 0.5, 1.0]),
        }


RANDOM_FOREST = RandomForestType()
