"""Estimator -> ONNX, in the training process, right after the fit.

Converting there rather than at load keeps the server's core for serving (skl2onnx on a
100-tree forest is seconds of Python), lets a converter that hangs be stopped like any fit
(cancel, MAX_TRAIN_SECONDS), and makes a load only a session start and a check. Each type
converts in its own way (`convert` in server.algorithms, each module saying why).
A conversion that fails, or that can't compute what the library computes, gives a reason
instead of a model, and the estimator serves.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.algorithms.base import NotConvertible

if TYPE_CHECKING:
    from server.algorithms.base import Algorithm


@dataclass(frozen=True)
class Compiled:
    onnx: bytes | None  # the model, or None with a reason
    reason: str | None
    seconds: float
    check_seconds: float | None = None  # the check against the estimator, once it has run

    def checked(self, failure: str | None, seconds: float) -> Compiled:
        """After the check at the end of the fit: kept if it passed, else dropped with why."""
        if failure is None:
            return dataclasses.replace(self, check_seconds=seconds)
        reason = f"converted, but the check failed: {failure}"[:500]
        return dataclasses.replace(self, onnx=None, reason=reason, check_seconds=seconds)

    def describe(self) -> dict[str, Any]:
        """The model metadata's `compiled`."""
        described: dict[str, Any] = {"format": None, "reason": self.reason}
        if self.onnx is not None:
            described = {"format": "onnx", "bytes": len(self.onnx)}
        described["seconds"] = round(self.seconds, 4)
        if self.check_seconds is not None:
            described["check_seconds"] = round(self.check_seconds, 4)
        return described


def compile_estimator(algorithm: Algorithm, estimator: Any, n_features: int) -> Compiled:
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # converters warn about opsets and NaN thresholds
            onnx = algorithm.convert(estimator, n_features)
    except NotConvertible as why:
        return Compiled(None, str(why), time.perf_counter() - started)
    except Exception as error:  # any converter failure means: serve the estimator
        reason = f"conversion failed: {type(error).__name__}: {error}"[:500]
        return Compiled(None, reason, time.perf_counter() - started)
    return Compiled(onnx, None, time.perf_counter() - started)


def preload_converters() -> None:
    """Import the converters now (a quarter of a second once the estimators are imported),
    so that no fit pays for it."""
    import onnxmltools.convert.common.data_types  # noqa: F401
    import skl2onnx  # noqa: F401
