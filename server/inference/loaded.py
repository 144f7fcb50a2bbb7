"""LoadedModel: one model ready to predict, and what one prediction costs.

Its runtime (the compiled model or the estimator, `server.inference.compiled`) predicts
indices into `classes`, the original labels. At load time the model times itself on a few rows: the
batcher uses the estimate to run cheap predictions inline. `/evaluate` scores with the
estimator itself, as the fit scored its held-out rows: ties between probabilities then break
the same way, and the scores are the fit's to the last digit.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np

from server.algorithms import Algorithm, resolve
from server.algorithms.inputs import refuse_beyond_float32, refuse_missing
from server.algorithms.preparation import Preparation, input_domains
from server.errors import InvalidInput, ServiceError, UntrustedModel
from server.inference.compiled.choice import (
    RuntimeChoice,
    RuntimeSetting,
    choose_runtime,
    from_record,
)
from server.inference.compiled.runtimes import EstimatorNeeded, LazyNativeRuntime, NativeRuntime
from server.inference.timing import measure_cost
from server.ml.labels import encode_for_model
from server.ml.scoring import scores
from server.store.files import ModelStore
from server.store.signing import metadata_tag, untrusted_detail
from server.tables.columns import Columns, columns_from_metadata, numeric_columns

TIMING_ROWS = 64
EstimatorLoading = Literal["lazy", "eager"]


@dataclass(frozen=True)
class LoadedModel:
    name: str
    algorithm: Algorithm
    choice: RuntimeChoice
    classes: np.ndarray
    n_features: int
    feature_names: list[str] | None  # the columns of the file it was trained from
    seconds_fixed: float = 0.0  # one predict call, whatever its size
    seconds_per_row: float = 0.0
    version: int = 1  # of the name
    # LogisticRegression: each column's mean over the training rows (its explanations' base).
    training_means: list[float] | None = None
    tag: str = ""  # the version's metadata tag: what identifies its files
    columns: Columns | None = None  # each feature's kind and levels (v5)
    # What the estimator computes on, from the codes (RandomForest, LogisticRegression).
    preparation: Preparation | None = None
    # Cells with a level the model never saw, per column, since it was loaded.
    unseen: Counter[str] = dataclasses.field(default_factory=Counter, compare=False)
    count_unseen: Callable[[int], None] = lambda cells: None  # the metric's

    @property
    def model_columns(self) -> Columns:
        if self.columns is not None:
            return self.columns
        return numeric_columns(self.n_features, self.feature_names)

    @property
    def takes_missing(self) -> bool:
        """Whether rows may have missing values: the estimator takes them, or its
        preparation fills them in (a LogisticRegression saved before v5 refuses them)."""
        return self.algorithm.handles_missing or (
            self.preparation is not None and self.preparation.standardise
        )

    def prepared(self, X: np.ndarray) -> np.ndarray:
        """The rows as the estimator (and its compiled copy) computes on them."""
        return X if self.preparation is None else self.preparation.transform(X)

    def note_unseen(self, unseen: np.ndarray | None) -> None:
        if unseen is not None:
            self.unseen.update(self.model_columns.unseen_by_column(unseen))
            self.count_unseen(int(unseen.sum()))

    @property
    def model_type(self) -> str:
        return self.algorithm.name

    def check_input(self, X: np.ndarray) -> None:
        """Refuse, before any queueing, rows this model can't take: the wrong width, missing
        values for a type that has no use for them (it would predict garbage), values its
        library can't read."""
        if X.shape[1] != self.n_features:
            raise InvalidInput(
                f"model '{self.name}' expects {self.n_features} features per row, got {X.shape[1]}"
            )
        if not self.takes_missing:
            refuse_missing(self.algorithm, X, self.feature_names)
        refuse_beyond_float32(self.algorithm, X, self.feature_names)

    def estimated_seconds(self, rows: int) -> float:
        return self.seconds_fixed + self.seconds_per_row * rows

    def predict(self, X: np.ndarray, probabilities: bool) -> dict[str, Any]:
        """Blocking: inline only when `estimated_seconds` is tiny, else in a thread. The
        caller has checked X (`check_input`), before any queueing."""
        try:
            return self._predict(X, probabilities)
        except (EstimatorNeeded, ServiceError):  # run it in a thread; its file is untrusted
            raise
        except Exception as error:  # the estimator refused this input
            raise self._refused(error) from None

    def _refused(self, error: Exception) -> InvalidInput:
        return InvalidInput(
            f"model '{self.name}' could not predict: {type(error).__name__}: {error}"
        )

    def _predict(self, X: np.ndarray, probabilities: bool) -> dict[str, Any]:
        answer: dict[str, Any] = {"name": self.name, "version": self.version}
        X = self.prepared(X)
        if probabilities:
            proba, indices = self.choice.probabilities_and_indices(X)
            answer["predictions"] = self.classes[indices].tolist()
            answer["probabilities"] = proba.tolist()
            answer["classes"] = self.classes.tolist()
        else:
            answer["predictions"] = self.classes[self.choice.indices(X)].tolist()
        return answer

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Blocking: the probabilities `/predict` answers for these rows (any batch of them:
        a row's answer never depends on the others), for the capture's writer."""
        return self.choice.probabilities_and_indices(self.prepared(X))[0]

    def evaluate(self, X: np.ndarray, y: list[Any]) -> dict[str, Any]:
        """Blocking: the scores of server.ml.scoring on these rows and labels."""
        self.check_input(X)
        if len(X) != len(y):
            raise InvalidInput(f"the rows are {len(X)} but y has {len(y)} labels")
        y_encoded = encode_for_model(y, self.classes.tolist(), self.name)
        try:
            probabilities = self.choice.native.probabilities(self.prepared(X))
        except ServiceError:
            raise
        except Exception as error:  # the estimator refused this input
            raise self._refused(error) from None
        return {
            "name": self.name,
            "version": self.version,
            "n_samples": len(y),
            "scores": scores(y_encoded, probabilities),
        }


def read_model(
    store: ModelStore,
    name: str,
    version: int,
    setting: RuntimeSetting = "auto",
    estimator: EstimatorLoading = "lazy",
) -> LoadedModel:
    """Blocking: read the files (each checked against its tag first), choose the runtime
    (compiled if it passes its check), then time a 1-row and a 64-row prediction. The
    estimator answers what the compiled model may not (server.inference.compiled.choice) and
    /evaluate; when the fit's check stands here, it is read only once a batch needs it."""
    lazy = estimator == "lazy" and setting == "auto"
    model = _served_compiled(store, name, version) if lazy else None
    timed: Callable[[np.ndarray], object]
    if model is None:
        model = _read_whole(store, name, version, setting)
        timed = partial(model.predict, probabilities=False)
    else:  # time what serves, without reading the estimator for a row that needs it
        compiled, prepared = model.choice.compiled, model.prepared
        assert compiled is not None
        timed = lambda X: compiled.indices(prepared(X))  # noqa: E731
    cost = measure_cost(timed, np.zeros((TIMING_ROWS, model.n_features)), times=3)
    return dataclasses.replace(model, seconds_fixed=cost.fixed, seconds_per_row=cost.per_row)


def _read_whole(store: ModelStore, name: str, version: int, setting: RuntimeSetting) -> LoadedModel:
    bundle = store.load(name, version)
    metadata = store.read_metadata(name, version)
    algorithm = resolve(bundle["model_type"])
    columns = columns_from_metadata(metadata)
    preparation = Preparation.from_metadata(metadata.get("preparation"))
    domains = input_domains(columns.level_counts, preparation)
    native = NativeRuntime(bundle.pop("estimator"), algorithm.predict_kwargs, algorithm)
    return LoadedModel(
        name=name,
        version=version,
        algorithm=algorithm,
        choice=choose_runtime(native, bundle, setting, algorithm, domains),
        classes=np.asarray(bundle["classes"]),
        n_features=int(bundle["n_features"]),
        feature_names=bundle.get("feature_names"),  # absent from models of earlier versions
        training_means=metadata.get("training_means"),
        tag=metadata_tag(metadata),
        columns=columns,
        preparation=preparation,
    )


def _served_compiled(store: ModelStore, name: str, version: int) -> LoadedModel | None:
    """The model served by its compiled copy on the fit's check, the estimator not read; or
    None where that check does not stand here (another platform, no compiled copy)."""
    metadata = store.read_metadata(name, version)
    kept = metadata.get("serving")
    if not isinstance(kept, dict):
        return None
    problem = store.trust_problem(name, version, metadata)  # the estimator's file too, unread
    if problem is not None:
        raise UntrustedModel(untrusted_detail(name, version, problem))
    onnx = store.read_onnx(name, version, metadata)
    if onnx is None:
        return None
    algorithm = resolve(metadata["model_type"])
    native = LazyNativeRuntime(
        lambda: store.load(name, version, compiled=False)["estimator"],
        algorithm.predict_kwargs,
        algorithm,
    )
    choice = from_record(native, onnx, kept)
    if choice is None:
        return None
    return LoadedModel(
        name=name,
        version=version,
        algorithm=algorithm,
        choice=choice,
        classes=np.asarray(metadata["classes"]),
        n_features=int(metadata["n_features"]),
        feature_names=metadata.get("feature_names"),
        training_means=metadata.get("training_means"),
        tag=metadata_tag(metadata),
        columns=columns_from_metadata(metadata),
        preparation=Preparation.from_metadata(metadata.get("preparation")),
    )
