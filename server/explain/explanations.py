"""Explanations: `POST /explain`'s operation, on a loaded version.

The rows are matched to the model's columns and checked as /predict checks them; the
explanation comes from the explanation process (server.explain.explainer), the predictions
from the version's own batcher, so that they are /predict's answers to the letter. The
answer's size is bounded before anything is computed (MAX_EXPLAIN_VALUES), and it is
encoded in a thread: a large one would otherwise hold the event loop, and every /predict.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import numpy as np
import orjson

from server.algorithms.inputs import flagged
from server.algorithms.preparation import sum_groups
from server.errors import InvalidInput, NotExplainable, TooLarge
from server.explain.explainer import Explainer
from server.inference.loaded import LoadedModel
from server.ingest import ExplainInput
from server.ml.explanations import Explanation, Rows
from server.service.operations import ModelService, matrix_for


class Explanations:
    def __init__(self, service: ModelService, explainer: Explainer, max_values: int) -> None:
        self._service = service
        self._explainer = explainer
        self._max_values = max_values

    async def explain(self, request: ExplainInput) -> bytes:
        """The answer, as JSON bytes."""
        config = request.config
        batcher = self._service.loaded(config.name, config.version, config.alias)
        model = batcher.model
        X = await matrix_for(model, request.features)
        refuse_unexplainable(model, X)
        model.check_input(X)
        self._refuse_too_large(model, X)
        rows = Rows(
            model.name, model.version, model.tag, model.model_type, len(model.classes),
            model.training_means, model.prepared(X),
        )  # fmt: skip
        explanation = await self._explainer.explain(rows)
        if model.preparation is not None:  # one contribution per original column
            explanation = per_column(explanation, model.preparation.groups())
        predicted = await batcher.predict(X, probabilities=False)
        return await asyncio.to_thread(encoded_answer, model, explanation, predicted["predictions"])

    def _refuse_too_large(self, model: LoadedModel, X: np.ndarray) -> None:
        outputs = 1 if len(model.classes) == 2 else len(model.classes)
        values = len(X) * outputs * model.n_features
        if values > self._max_values:
            raise TooLarge(
                f"the explanation would hold {values} numbers ({len(X)} rows x {outputs} "
                f"output(s) x {model.n_features} features), more than MAX_EXPLAIN_VALUES="
                f"{self._max_values}: explain fewer rows at a time"
            )


def refuse_unexplainable(model: LoadedModel, X: np.ndarray) -> None:
    """A LogisticRegression explains against its training rows' mean, which versions saved
    before explanations don't have; and it can't take missing values (as /predict)."""
    if not model.algorithm.explained_against_means:
        return
    if model.training_means is None:
        raise NotExplainable(
            f"model '{model.name}' version {model.version} was saved before explanations "
            "existed and does not keep its training rows' mean, which a LogisticRegression "
            "is explained against: train a new version to explain it"
        )
    missing = np.isnan(X).any(axis=1)
    if missing.any() and not model.takes_missing:
        raise InvalidInput(
            f"LogisticRegression can't explain (or predict) rows with missing values: row(s) "
            f"{flagged(missing, None)}. Fill them in (impute) first"
        )


def encoded_answer(model: LoadedModel, explanation: Explanation, predictions: list[Any]) -> bytes:
    """The answer's JSON (blocking: tens of MB for a large one). The arrays are encoded as
    they are, without a list of Python floats in between."""
    answer = {
        "name": model.name,
        "version": model.version,
        "classes": model.classes.tolist(),
        "feature_names": model.model_columns.names,
        "output": explanation.output,
        "base_values": np.ascontiguousarray(explanation.base_values),
        "contributions": np.ascontiguousarray(explanation.contributions),
        "predictions": predictions,
    }
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


def per_column(explanation: Explanation, groups: list[np.ndarray]) -> Explanation:
    """A prepared model's contributions summed into its original columns (a categorical
    column's one-hot columns, a number's missing indicator): additivity holds, as the sums
    add up to the same totals."""
    contributions = sum_groups(explanation.contributions, groups)
    return dataclasses.replace(explanation, contributions=contributions)
