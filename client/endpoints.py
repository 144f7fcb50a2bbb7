"""Endpoints: one method per endpoint of the model server, for both clients.

A subclass says how a `Call` (client.calls) is sent: the synchronous client returns the
answer, the asynchronous one a coroutine of it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from client import automl_calls, calls, monitoring_calls
from client.calls import Call, JobRef, Labels, Matrix

R = TypeVar("R")


class Endpoints(Generic[R]):
    def send(self, call: Call) -> R:
        raise NotImplementedError

    def fit(
        self,
        name: str,
        model_type: str,
        X: Matrix,
        y: Labels,
        hyperparameters: dict[str, Any] | None = None,
        wait: bool = True,
        max_seconds: float | None = None,
        validation_fraction: float | None = None,
        validation_seed: int = 0,
        new_version: bool = False,
        promote: bool = False,
        categorical_features: list[str] | list[int] | None = None,
        ignore_columns: list[str] | None = None,
    ) -> R:
        """The saved model's metadata; with `wait=False`, the started job at once. `X`: a
        list of rows (numbers, text, None), a numpy array, or a pandas DataFrame (sent with
        its column names). `validation_fraction`: hold out that share of the rows and score
        the model on them (the metadata's `validation`). `new_version`: train the next
        version of a name that exists; `promote`: make it current once saved.
        `categorical_features`: columns of numbers to treat as categorical (text columns
        are anyway); `ignore_columns`: columns left out of the model."""
        return self.send(
            calls.fit(
                name,
                model_type,
                X,
                y,
                hyperparameters,
                wait,
                max_seconds,
                validation_fraction,
                validation_seed,
                new_version,
                promote,
                categorical_features,
                ignore_columns,
            )
        )

    def job(self, ref: JobRef) -> R:
        return self.send(calls.job(ref))

    def jobs(self) -> R:
        return self.send(calls.jobs())

    def cancel(self, ref: JobRef) -> R:
        return self.send(calls.cancel(ref))

    def predict(
        self,
        name: str,
        X: Matrix,
        probabilities: bool = False,
        version: int | None = None,
        alias: str | None = None,
        key: str | None = None,
    ) -> R:
        """With neither `version` nor `alias`, the name's current version answers. `key`: a
        column of a DataFrame's rows that names each row (captured, never a feature), for
        feedback by key."""
        return self.send(calls.predict(name, X, probabilities, version, alias, key))

    def evaluate(
        self,
        name: str,
        X: Matrix,
        y: Labels,
        version: int | None = None,
        alias: str | None = None,
    ) -> R:
        """Scores of a loaded model on labelled rows (accuracy, ..., log_loss)."""
        return self.send(calls.evaluate(name, X, y, version, alias))

    def explain(
        self, name: str, X: Matrix, version: int | None = None, alias: str | None = None
    ) -> R:
        """Each feature's contribution to each row's output (SHAP values): the answer's
        `base_values[k] + sum(contributions[row][k])` is the model's output `k` for the row,
        in the space `output` names."""
        return self.send(calls.explain(name, X, version, alias))

    def load(self, name: str, version: int | None = None, alias: str | None = None) -> R:
        return self.send(calls.load(name, version, alias))

    def unload(self, name: str, version: int | None = None, alias: str | None = None) -> R:
        return self.send(calls.unload(name, version, alias))

    def remove(self, name: str) -> R:
        """The name with all its versions."""
        return self.send(calls.remove(name))

    def remove_all(self) -> R:
        return self.send(calls.remove_all())

    def models(self) -> R:
        return self.send(calls.models())

    def model(self, name: str) -> R:
        return self.send(calls.model(name))

    def status(self) -> R:
        return self.send(calls.status())

    def health(self) -> R:
        return self.send(calls.health())

    # -- versions and aliases ------------------------------------------------------------
    def versions(self, name: str) -> R:
        """The name's current version, aliases and every version, oldest first."""
        return self.send(calls.versions(name))

    def version(self, name: str, number: int) -> R:
        return self.send(calls.version(name, number))

    def remove_version(self, name: str, number: int) -> R:
        return self.send(calls.remove_version(name, number))

    def promote(self, name: str, number: int) -> R:
        """Make a version current; a loaded current version is swapped with no failed
        request."""
        return self.send(calls.promote(name, number))

    def rollback(self, name: str) -> R:
        """Make the version that was current before the last move current again."""
        return self.send(calls.rollback(name))

    def set_alias(self, name: str, alias: str, number: int) -> R:
        return self.send(calls.set_alias(name, alias, number))

    def remove_alias(self, name: str, alias: str) -> R:
        return self.send(calls.remove_alias(name, alias))

    def history(self, name: str) -> R:
        """Every move of the current pointer and of each alias, oldest first."""
        return self.send(calls.history(name))

    # -- AutoML --------------------------------------------------------------------------
    def automl(
        self,
        name: str,
        X: Matrix,
        y: Labels,
        max_models: int | None = None,
        max_runtime_secs: float | None = None,
        model_types: list[str] | None = None,
        metric: str | None = None,
        validation_fraction: float = 0.2,
        seed: int = 0,
        new_version: bool = False,
        promote: bool = False,
        categorical_features: list[str] | list[int] | None = None,
        ignore_columns: list[str] | None = None,
    ) -> R:
        """Start a search for the best model for X, y on every free slot (at least one of
        `max_models` and `max_runtime_secs`); the search as it starts (`id`, `state`). Follow
        it with `automl_search(id)`; its winner is saved under `name` when it ends."""
        return self.send(
            automl_calls.automl(
                name,
                X,
                y,
                max_models,
                max_runtime_secs,
                model_types,
                metric,
                validation_fraction,
                seed,
                new_version,
                promote,
                categorical_features,
                ignore_columns,
            )
        )

    def automl_search(self, search_id: str) -> R:
        """A search's state, progress and leaderboard (best first)."""
        return self.send(automl_calls.automl_search(search_id))

    def automl_searches(self) -> R:
        return self.send(automl_calls.automl_searches())

    def automl_cancel(self, search_id: str) -> R:
        """Stop every running candidate; nothing is saved."""
        return self.send(automl_calls.automl_cancel(search_id))

    # -- monitoring (docs/monitoring.md) -------------------------------------------------
    def set_capture(
        self,
        name: str,
        capture: bool = True,
        sample_rate: float = 1.0,
        capture_exclude: list[str] | None = None,
    ) -> R:
        """Turn capture of the name's predictions on (or off, `capture=False`)."""
        return self.send(monitoring_calls.set_capture(name, capture, sample_rate, capture_exclude))

    def monitoring(self, name: str, since: str | None = None, until: str | None = None) -> R:
        """Per version: captured, dropped and labelled rows, live scores, drift per feature
        (ISO times; default the last 24 hours)."""
        return self.send(monitoring_calls.monitoring(name, since, until))

    def feedback(
        self, name: str, y: Labels, request_id: str | None = None, keys: list[str] | None = None
    ) -> R:
        """The true labels of captured rows: of one request (a label per row, in order), or
        of the rows predicted with these keys."""
        return self.send(monitoring_calls.feedback(name, y, request_id, keys))

    def erase_key(self, name: str, key: str) -> R:
        """Erase one key's captured rows and labels."""
        return self.send(monitoring_calls.erase_key(name, key))

    def fit_from_capture(
        self,
        name: str,
        model_type: str,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
        hyperparameters: dict[str, Any] | None = None,
        validation_fraction: float | None = None,
        new_version: bool = True,
        promote: bool = False,
    ) -> R:
        """Train (by default the next version of `name`) on the labelled captured rows of
        `source` (default: `name`) over a window."""
        return self.send(
            monitoring_calls.fit_from_capture(
                name,
                model_type,
                source or name,
                since,
                until,
                hyperparameters,
                validation_fraction,
                new_version,
                promote,
            )
        )

    def evaluate_capture(
        self,
        name: str,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
        version: int | None = None,
        alias: str | None = None,
    ) -> R:
        """Score a loaded version on the labelled captured rows of `source` (default:
        `name`): a challenger against the champion, on the rows the champion met."""
        return self.send(
            monitoring_calls.evaluate_capture(name, source or name, since, until, version, alias)
        )
