"""What every model type answers: the questions the service asks a type, with the answers
most types share. Each type's module (`server.algorithms.*`) overrides what it does its own
way, so that everything one library needs is in one place and a sixth type is one module.

Estimator classes are imported on first use, so importing a type is cheap; the training
processes and the server preload them once at start-up (`server.algorithms.preload`).
Instances hold no locks (no functools.cached_property): fits sent to a Dask cluster carry
this package by value, pickled.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from server.algorithms.preparation import Preparation
from server.errors import InvalidInput
from server.ml.explanations import Explanation
from server.ml.progress import TrainingCall

# Every spelling of "how many threads" that the five libraries understand. A user's value for
# any of them is replaced by the type's own thread parameter set to 1: one training, one core.
THREAD_PARAMETERS = frozenset(
    {"n_jobs", "nthread", "nthreads", "thread_count", "num_threads", "num_thread"}
)

# Reasons a parameter is refused (server.algorithms.parameters.refuse).
FILES = "names a file, a directory or a network peer on the server"
PREDICT = "changes how the model predicts, which the server decides"
FEATURES = "is for text or embedding features, which the service does not take"
CATEGORICAL = (
    "names categorical columns the library's own way: declare them in "
    "config.categorical_features instead (text columns are categorical anyway)"
)

BINARY, MULTI = "binary", "multiclass"


class NotConvertible(Exception):
    """A type, or a model of it, that no converter turns into an exact ONNX graph: why."""


class Algorithm:
    """One model type. Class attributes describe it; methods answer for it."""

    name: ClassVar[str]
    module: ClassVar[str]
    class_name: ClassVar[str]
    # The constructor's thread parameter, pinned to 1 (None: the estimator has none that works).
    thread_parameter: ClassVar[str | None] = None
    # Always set, whatever the user passes (CatBoost must not write catboost_info/).
    forced: ClassVar[Mapping[str, Any]] = {}
    # Set only when the user sets none of `quiet_keys`: keeps the server's log readable.
    quiet: ClassVar[Mapping[str, Any]] = {}
    quiet_keys: ClassVar[frozenset[str]] = frozenset()
    # Extra keyword arguments for predict/predict_proba (CatBoost otherwise uses every core).
    predict_kwargs: ClassVar[Mapping[str, Any]] = {}
    # Whether a fit can report how far it has got (server.training.progress).
    reports_progress: ClassVar[bool] = True
    # Whether the estimator trains and predicts with missing values (NaN) natively.
    handles_missing: ClassVar[bool] = True
    # Whether it reads X as float32 and refuses values beyond that range (scikit-learn's
    # trees). The server refuses them itself, before any runtime sees them: scikit-learn's
    # own check is off on the event loop's thread (assume_finite) and on in others.
    float32_inputs: ClassVar[bool] = False
    # Whether it fills in missing values itself, in its preprocessing step (`preparation`).
    imputes: ClassVar[bool] = False
    # Whether its explanations are against the training rows' means (kept in the metadata).
    explained_against_means: ClassVar[bool] = False
    # Whether it stops early on held-out rows (AutoML's candidates).
    stops_early: ClassVar[bool] = False
    # Its objectives (name -> BINARY or MULTI) and the hyperparameters that set one or the
    # number of classes; an empty table: the type has no objective to choose.
    objectives: ClassVar[Mapping[str, str]] = {}
    objective_keys: ClassVar[tuple[str, ...]] = ()
    class_count_keys: ClassVar[tuple[str, ...]] = ()
    # The library's seed parameter, set to an AutoML search's seed (None: it has none).
    seed_parameter: ClassVar[str | None] = "random_state"

    # -- building -----------------------------------------------------------------------------
    def estimator_class(self) -> type:
        cls: type = getattr(importlib.import_module(self.module), self.class_name)
        return cls

    def build(self, hyperparameters: Mapping[str, Any]) -> Any:
        return self.estimator_class()(**hyperparameters)

    def native_parameters(self) -> frozenset[str]:
        """Names the library takes through **kwargs besides its named parameters."""
        return frozenset()

    def refused(self) -> Mapping[str, str]:
        """Accepted by the library, refused by the server: name -> why."""
        return {}

    def objective_name(self, value: Any) -> Any:
        """An objective's name as `objectives` lists it."""
        return value

    def find_parameters(self) -> frozenset[str]:
        """Constructor parameters: scikit-learn's `get_params`, plus named `__init__` ones
        (CatBoost's `get_params` lists only what was set)."""
        cls = self.estimator_class()
        names = set(cls().get_params())
        for parameter in inspect.signature(cls).parameters.values():
            if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                names.add(parameter.name)
        return frozenset(names | self.native_parameters())

    # -- tables ------------------------------------------------------------------------------
    def preparation(self, X: np.ndarray, levels: tuple[int | None, ...]) -> Preparation | None:
        """The preprocessing step kept with the model, fitted on the training rows' codes
        (`levels`: each column's number of levels, None for a numeric one); None: the type
        computes on the codes as they are (its library's own categorical support)."""
        return None

    def probabilities_for(self, estimator: Any) -> Callable[[np.ndarray], np.ndarray] | None:
        """The type's own computation of the estimator's probabilities, where its library's
        would depend on the batch (None: the library's `predict_proba`)."""
        return None

    def input_for(self, estimator: Any) -> Callable[[np.ndarray], Any] | None:
        """What the estimator's predict takes, made from the codes (None: the codes as they
        are)."""
        return None

    # -- training ------------------------------------------------------------------------------
    def fit(self, estimator: Any, call: TrainingCall) -> None:
        """Fit, reporting to `sink` where the library allows it (here: it does not), with
        `categorical` columns of codes learned the library's own way."""
        call.sink.begin(None)
        estimator.fit(call.X, call.y)

    def train(self, estimator: Any, call: TrainingCall) -> None:
        """`fit`, then tell the sink that everything planned is done (boosting may stop
        early)."""
        self.fit(estimator, call)
        call.sink.finish()

    # -- explaining ----------------------------------------------------------------------------
    def explainer_for(self, estimator: Any) -> Any:
        """What explains an estimator (whoever explains again keeps this instead)."""
        return estimator

    def explain(
        self, explainer: Any, X: np.ndarray, n_classes: int, means: list[float] | None
    ) -> Explanation:
        """Blocking: the exact explanation of every row of X (float64, NaN where missing),
        as the estimator sees them (prepared, where the type prepares its input)."""
        raise NotImplementedError

    # -- compiling -----------------------------------------------------------------------------
    def convert(self, estimator: Any, n_features: int) -> bytes:
        """The estimator as an ONNX graph, or NotConvertible saying why not."""
        raise NotConvertible(f"no ONNX converter for {self.name}")

    def thresholds(self, estimator: Any, n_features: int) -> dict[int, np.ndarray]:
        """The split values the library itself compares against, per feature, where it
        exposes them (server.inference.compiled.probes)."""
        return {}

    # -- searching -----------------------------------------------------------------------------
    def space(self, rng: np.random.Generator) -> dict[str, Any]:
        """One draw of AutoML's search space for this type."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<model type {self.name}>"

    # -- hyperparameters -----------------------------------------------------------------------
    @property
    def accepted_parameters(self) -> frozenset[str]:
        """The constructor's parameters (`find_parameters`), found once per type."""
        found = _ACCEPTED.get(self.name)
        if found is None:
            found = _ACCEPTED[self.name] = self.find_parameters()
        return found

    @property
    def refused_parameters(self) -> Mapping[str, str]:
        found = _REFUSED.get(self.name)
        if found is None:
            found = _REFUSED[self.name] = self.refused()
        return found

    def effective_hyperparameters(self, requested: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor arguments for `requested`: unknown names refused, threads pinned."""
        refused = sorted(name for name in requested if name in self.refused_parameters)
        if refused:
            reasons = "; ".join(f"'{name}' {self.refused_parameters[name]}" for name in refused)
            raise InvalidInput(f"hyperparameter(s) not accepted for {self.name}: {reasons}")
        unknown = sorted(set(requested) - self.accepted_parameters - THREAD_PARAMETERS)
        if unknown:
            raise InvalidInput(f"unknown hyperparameter(s) for {self.name}: {', '.join(unknown)}")
        effective = {k: v for k, v in requested.items() if k not in THREAD_PARAMETERS}
        if not self.quiet_keys & set(requested):
            effective.update(self.quiet)
        effective.update(self.forced)
        if self.thread_parameter is not None:
            effective[self.thread_parameter] = 1
        return effective

    def check_against_labels(self, hyperparameters: Mapping[str, Any], n_classes: int) -> None:
        """422 for an objective or a class count that contradicts the labels: the model would
        answer another number of probabilities than there are classes."""
        for key in self.class_count_keys:
            if key in hyperparameters and hyperparameters[key] != n_classes:
                raise InvalidInput(
                    f"hyperparameter '{key}' is {hyperparameters[key]!r}, but y has {n_classes} "
                    f"classes: leave it out (the server sets it from the labels)"
                )
        for key in self.objective_keys:
            if key not in hyperparameters:
                continue
            value = hyperparameters[key]
            name = self.objective_name(value)
            kind = self.objectives.get(name) if isinstance(name, str) else None
            if kind is None:
                raise InvalidInput(
                    f"hyperparameter '{key}' is {value!r}, which is not a classification "
                    f"objective of {self.name}: use one of {', '.join(self.objectives)}"
                )
            if kind == BINARY and n_classes > 2:
                raise InvalidInput(
                    f"hyperparameter '{key}' is {value!r}, a two-class objective, but y has "
                    f"{n_classes} classes"
                )


# Algorithm.accepted_parameters and refused_parameters, per type: plain dicts, found once.
_ACCEPTED: dict[str, frozenset[str]] = {}
_REFUSED: dict[str, Mapping[str, str]] = {}


# -- AutoML's draws ----------------------------------------------------------------------------
def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(math.exp(rng.uniform(math.log(low), math.log(high)))), 5)


def pick(rng: np.random.Generator, choices: list[Any]) -> Any:
    chosen = choices[int(rng.integers(len(choices)))]
    return chosen.item() if isinstance(chosen, np.generic) else chosen
