"""Explanations: `POST /explain`'s operation, on a loaded version.

The rows are matched to the model's columns and checked as /predict checks them; the
explanation comes from the explanation process (server.explain.explainer), the predictions
from the version's own batcher, so that they are /predict's answers to the letter.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from server.errors import InvalidInput, NotExplainable
from server.explain.explainer import Explainer
from server.inference.loaded import LoadedModel
from server.ingest import ExplainInput
from server.ml.algorithms import flagged
from server.ml.explanations import Explanation, Rows, column_names
from server.service.operations import ModelService, matrix_for


class Explanations:
    def __init__(self, service: ModelService, explainer: Explainer) -> None:
        self._service = service
        self._explainer = explainer

    async def explain(self, request: ExplainInput) -> dict[str, Any]:
        config = request.config
        batcher = self._service.loaded(config.name, config.version, config.alias)
        model = batcher.model
        X = await matrix_for(model, request.features)
        refuse_unexplainable(model, X)
        model.check_input(X)
        rows = Rows(
            model.name, model.version, model.model_type, len(model.classes),
            model.training_means, X,
        )  # fmt: skip
        explanation = await self._explainer.explain(rows)
        predicted = await batcher.predict(X, probabilities=False)
        return answer(model, explanation, predicted["predictions"])


def refuse_unexplainable(model: LoadedModel, X: np.ndarray) -> None:
    """A LogisticRegression explains against its training rows' mean, which versions saved
    before explanations don't have; and it can't take missing values (as /predict)."""
    if model.model_type != "LogisticRegression":
        return
    if model.training_means is None:
        raise NotExplainable(
            f"model '{model.name}' version {model.version} was saved before explanations "
            "existed and does not keep its training rows' mean, which a LogisticRegression "
            "is explained against: train a new version to explain it"
        )
    missing = np.isnan(X).any(axis=1)
    if missing.any():
        raise InvalidInput(
            f"LogisticRegression can't explain (or predict) rows with missing values: row(s) "
            f"{flagged(missing, None)}. Fill them in (impute) first"
        )


def answer(model: LoadedModel, explanation: Explanation, predictions: list[Any]) -> dict[str, Any]:
    return {
        "name": model.name,
        "version": model.version,
        "classes": model.classes.tolist(),
        "feature_names": column_names(model.feature_names, model.n_features),
        "output": explanation.output,
        "base_values": explanation.base_values.tolist(),
        "contributions": explanation.contributions.tolist(),
        "predictions": predictions,
    }
