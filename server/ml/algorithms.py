"""The five model types: how to build each estimator single-threaded, and how to predict with it.

Estimator classes are imported on first use, so importing this module is cheap; the training
processes and the server preload them once at start-up (`preload`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from server.errors import InvalidInput
from server.ml.parameters import CATBOOST_REFUSED, lightgbm_refused, refuse

# Every spelling of "how many threads" that the five libraries understand. A user's value for
# any of them is replaced by the type's own thread parameter set to 1: one training, one core.
THREAD_PARAMETERS = frozenset(
    {"n_jobs", "nthread", "nthreads", "thread_count", "num_threads", "num_thread"}
)


# Algorithm.accepted_parameters and refused_parameters, per type. Plain dicts, not
# functools.cached_property: that holds a lock, and fits sent to a Dask cluster carry this
# module by value (pickled).
_ACCEPTED_PARAMETERS: dict[str, frozenset[str]] = {}
_REFUSED_PARAMETERS: dict[str, Mapping[str, str]] = {}


@dataclass(frozen=True)
class Algorithm:
    name: str
    module: str
    class_name: str
    # The constructor's thread parameter, pinned to 1 (None: the estimator has none that works).
    thread_parameter: str | None
    # Always set, whatever the user passes (CatBoost must not write catboost_info/).
    forced: Mapping[str, Any] = field(default_factory=dict)
    # Set only when the user sets none of `quiet_keys`: keeps the server's log readable.
    quiet: Mapping[str, Any] = field(default_factory=dict)
    quiet_keys: frozenset[str] = frozenset()
    # Extra keyword arguments for predict/predict_proba (CatBoost otherwise uses every core).
    predict_kwargs: Mapping[str, Any] = field(default_factory=dict)
    # Names the library takes through **kwargs besides its named parameters (LightGBM).
    native_parameters: Callable[[], frozenset[str]] | None = None
    # Parameters refused with a reason (server.ml.parameters): files, peers, predict-time.
    refused: Callable[[], Mapping[str, str]] | None = None
    # Whether a fit can report how far it has got (server.training.progress).
    reports_progress: bool = True
    # Whether the estimator trains and predicts with missing values (NaN) natively.
    handles_missing: bool = True
    # Whether it reads X as float32 and refuses values beyond that range (scikit-learn's
    # trees). The server refuses them itself, before any runtime sees them: scikit-learn's
    # own check is off on the event loop's thread (assume_finite) and on in others.
    float32_inputs: bool = False

    def estimator_class(self) -> type:
        cls: type = getattr(importlib.import_module(self.module), self.class_name)
        return cls

    @property
    def accepted_parameters(self) -> frozenset[str]:
        """Constructor parameters: scikit-learn's `get_params`, plus named `__init__` ones
        (CatBoost's `get_params` lists only what was set). Found once per type."""
        found = _ACCEPTED_PARAMETERS.get(self.name)
        if found is None:
            found = _ACCEPTED_PARAMETERS[self.name] = self._find_parameters()
        return found

    @property
    def refused_parameters(self) -> Mapping[str, str]:
        """Accepted by the library, refused by the server: name -> why."""
        found = _REFUSED_PARAMETERS.get(self.name)
        if found is None:
            found = _REFUSED_PARAMETERS[self.name] = self.refused() if self.refused else {}
        return found

    def _find_parameters(self) -> frozenset[str]:
        cls = self.estimator_class()
        names = set(cls().get_params())
        for parameter in inspect.signature(cls).parameters.values():
            if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                names.add(parameter.name)
        if self.native_parameters is not None:
            names |= self.native_parameters()
        return frozenset(names)

    def effective_hyperparameters(self, requested: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor arguments for `requested`: unknown names refused, threads pinned."""
        refuse(self.name, requested, self.refused_parameters)
        accepted = self.accepted_parameters
        unknown = sorted(set(requested) - accepted - THREAD_PARAMETERS)
        if unknown:
            raise InvalidInput(f"unknown hyperparameter(s) for {self.name}: {', '.join(unknown)}")
        effective = {k: v for k, v in requested.items() if k not in THREAD_PARAMETERS}
        if not self.quiet_keys & set(requested):
            effective.update(self.quiet)
        effective.update(self.forced)
        if self.thread_parameter is not None:
            effective[self.thread_parameter] = 1
        return effective

    def build(self, hyperparameters: Mapping[str, Any]) -> Any:
        return self.estimator_class()(**hyperparameters)


def _lightgbm_parameters() -> frozenset[str]:
    """Every LightGBM parameter and alias (`verbose`, `min_data_in_leaf`, ...): LGBMClassifier
    forwards them through **kwargs, so its signature does not list them."""
    from lightgbm.basic import _ConfigAliases  # private, but the library's only full list

    aliases = _ConfigAliases._get_all_param_aliases()
    return frozenset(aliases).union(*aliases.values())


def _lightgbm_refused() -> Mapping[str, str]:
    from lightgbm.basic import _ConfigAliases

    return lightgbm_refused(_ConfigAliases._get_all_param_aliases())


ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name.lower(): algorithm
    for algorithm in (
        # LogisticRegression's n_jobs does nothing since scikit-learn 1.8 (and warns): its BLAS
        # is pinned by threadpoolctl instead.
        # lbfgs offers no per-iteration hook: its jobs show no progress fraction.
        Algorithm(
            "LogisticRegression",
            "sklearn.linear_model",
            "LogisticRegression",
            None,
            reports_progress=False,
            handles_missing=False,
        ),
        Algorithm(
            "RandomForestClassifier",
            "sklearn.ensemble",
            "RandomForestClassifier",
            "n_jobs",
            float32_inputs=True,
        ),
        Algorithm("XGBClassifier", "xgboost", "XGBClassifier", "n_jobs"),
        Algorithm(
            "LGBMClassifier",
            "lightgbm",
            "LGBMClassifier",
            "n_jobs",
            quiet={"verbose": -1},
            quiet_keys=frozenset({"verbose", "verbosity"}),
            native_parameters=_lightgbm_parameters,
            refused=_lightgbm_refused,
        ),
        Algorithm(
            "CatBoostClassifier",
            "catboost",
            "CatBoostClassifier",
            "thread_count",
            forced={"allow_writing_files": False},
            refused=lambda: CATBOOST_REFUSED,
            quiet={"logging_level": "Silent"},
            quiet_keys=frozenset({"verbose", "silent", "logging_level", "verbose_eval"}),
            predict_kwargs={"thread_count": 1},
        ),
    )
}


MODEL_TYPES: tuple[str, ...] = tuple(algorithm.name for algorithm in ALGORITHMS.values())


def resolve(model_type: str) -> Algorithm:
    """The algorithm for `model_type`, matched case-insensitively."""
    try:
        return ALGORITHMS[model_type.lower()]
    except KeyError:
        raise InvalidInput(
            f"unknown model_type '{model_type}': expected one of {', '.join(MODEL_TYPES)}"
        ) from None


def refuse_missing(
    algorithm: Algorithm, X: np.ndarray, feature_names: list[str] | None, field: str = "X"
) -> None:
    """InvalidInput naming the columns with missing values, for a type that can't take them."""
    if algorithm.handles_missing:
        return
    missing = np.isnan(X).any(axis=0)
    if not missing.any():
        return
    raise InvalidInput(
        f"{algorithm.name} can't take missing values, and {field} has some in column(s) "
        f"{flagged(missing, feature_names)}. Fill them in "
        "(impute) first, or use a type that handles them natively: "
        f"{', '.join(a.name for a in ALGORITHMS.values() if a.handles_missing)}"
    )


def refuse_beyond_float32(
    algorithm: Algorithm, X: np.ndarray, feature_names: list[str] | None
) -> None:
    """InvalidInput naming the columns whose values overflow float32, for a type that reads
    X as float32 (they would become infinities)."""
    if not algorithm.float32_inputs:
        return
    with np.errstate(over="ignore"):
        overflowing = np.asarray(np.isinf(X.astype(np.float32)).any(axis=0))
    if not overflowing.any():
        return
    raise InvalidInput(
        f"{algorithm.name} reads values as float32, whose range ends at "
        f"{float(np.finfo(np.float32).max):.8g} either way, and X has larger ones in column(s) "
        f"{flagged(overflowing, feature_names)}"
    )


def flagged(flagged: np.ndarray, feature_names: list[str] | None) -> str:
    """The flagged columns (or rows), by name where there are names, else by index; 20 at
    most."""
    columns = np.flatnonzero(flagged).tolist()
    named = [repr(feature_names[i]) for i in columns] if feature_names else columns
    return f"{', '.join(map(str, named[:20]))}{' ...' if len(named) > 20 else ''}"


def preload() -> None:
    """Import every estimator library now, so that no request pays for it."""
    for algorithm in ALGORITHMS.values():
        algorithm.estimator_class()
