"""The two ways a loaded model predicts: its estimator, or an ONNX Runtime session.

Both give class probabilities and class indices (into the model's sorted classes, as the
estimator was trained on). A session runs on one thread, like everything that predicts in
this process, and only its probabilities output is read: the label is their argmax, as
each library's own `predict` is. Float32 sums can land a hair outside [0, 1] (an ONNX
Runtime session: -5.2e-08, 1.0000000298; XGBoost's own rows sum to 1.00000003), which
scikit-learn's log loss refuses: both runtimes answer `well_formed` probabilities
(server.ml.probabilities).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import platform
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from server.ml.probabilities import well_formed

if TYPE_CHECKING:
    from server.algorithms.base import Algorithm


class Runtime(Protocol):
    @property
    def name(self) -> str:  # "onnx" or "native"
        ...

    def probabilities(self, X: np.ndarray) -> np.ndarray: ...

    def indices(self, X: np.ndarray) -> np.ndarray: ...


_UNKNOWN = object()  # not looked at yet: a lazy runtime's estimator may not be read


def lightgbm_booster(estimator: Any) -> Any:
    """A LightGBM model's Booster, or None for any other type."""
    lightgbm = type(estimator).__module__.partition(".")[0] == "lightgbm"
    return estimator.booster_ if lightgbm else None


class NativeRuntime:
    """The estimator's own library. A LightGBM model is asked through its Booster, on one
    thread: the scikit-learn wrapper checks the input again on every call, which was most
    of a small prediction, and then asks the same Booster the same question (its
    `predict_proba` and `predict`, to the bit: tests/test_lightgbm_native.py)."""

    name = "native"

    def __init__(
        self, estimator: Any, predict_kwargs: Mapping[str, Any], algorithm: Algorithm | None = None
    ) -> None:
        self._estimator = estimator
        self._kwargs = dict(predict_kwargs)
        self._booster: Any = _UNKNOWN
        # The type's own ways (server.algorithms): what the estimator's predict takes, made
        # from the codes (`input_for`), and its own probabilities (`probabilities_for`).
        self._algorithm = algorithm
        self._convert: Any = _UNKNOWN
        self._own: Any = _UNKNOWN

    @property
    def estimator(self) -> Any:
        return self._estimator

    @property
    def loaded(self) -> bool:
        return True

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        return well_formed(self._probabilities(X))

    def indices(self, X: np.ndarray) -> np.ndarray:
        if self._lightgbm() is not None or self._own_probabilities() is not None:
            # the wrapper's `predict`, or the type's own: the argmax of the probabilities
            return self._probabilities(X).argmax(axis=1)
        predicted = np.asarray(self.estimator.predict(self._input(X), **self._kwargs))
        predicted = predicted.reshape(-1)
        return predicted.astype(np.int64, copy=False)

    def _probabilities(self, X: np.ndarray) -> np.ndarray:
        own = self._own_probabilities()
        if own is not None:
            return np.asarray(own(X))
        booster = self._lightgbm()
        if booster is None:
            return np.asarray(self.estimator.predict_proba(self._input(X), **self._kwargs))
        # The Booster takes float64 as it is (other types it converts to float32).
        answer = booster.predict(np.asarray(X, dtype=np.float64), num_threads=1)
        if answer.ndim == 1:  # binary: the positive class, as the wrapper stacks it
            return np.vstack((1.0 - answer, answer)).transpose()
        return np.asarray(answer)

    def _input(self, X: np.ndarray) -> Any:
        if self._convert is _UNKNOWN:
            algorithm = self._algorithm
            self._convert = algorithm.input_for(self.estimator) if algorithm else None
        return X if self._convert is None else self._convert(X)

    def _own_probabilities(self) -> Any:
        if self._own is _UNKNOWN:
            algorithm = self._algorithm
            self._own = algorithm.probabilities_for(self.estimator) if algorithm else None
        return self._own

    def _lightgbm(self) -> Any:
        """The LightGBM model's Booster, or None for any other type."""
        if self._booster is _UNKNOWN:
            self._booster = lightgbm_booster(self.estimator)
        return self._booster


class EstimatorNeeded(Exception):
    """A batch on the event loop needs an estimator not read yet: the caller runs the batch
    again in a thread, where reading it blocks nobody."""


class LazyNativeRuntime(NativeRuntime):
    """The estimator, read (and its file's tag checked) the first time a batch needs it: a
    model that its compiled copy serves may never need it, and then never pays its memory."""

    def __init__(
        self,
        read: Callable[[], Any],
        predict_kwargs: Mapping[str, Any],
        algorithm: Algorithm | None = None,
    ) -> None:
        super().__init__(None, predict_kwargs, algorithm)
        self._read = read
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._estimator is not None

    @property
    def estimator(self) -> Any:
        if self._estimator is None:
            if _on_event_loop():
                raise EstimatorNeeded
            with self._lock:  # two batches in threads read it once
                if self._estimator is None:
                    self._estimator = self._read()
        return self._estimator


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def platform_id() -> str:
    """What a compiled model's answers depend on besides its bytes: ONNX Runtime's version
    and the processor (its kernels differ by instruction set). A check made where this is
    the same stands here."""
    import onnxruntime

    flags = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = line
                break
    described = f"{onnxruntime.__version__}|{platform.machine()}|{flags}"
    return hashlib.sha256(described.encode()).hexdigest()[:16]


class OnnxRuntime:
    name = "onnx"

    def __init__(self, onnx: bytes) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: LightGBM's label shape warns per call
        # No memory arena: less memory per session, no slower (see docs/performance-history.md,
        # Figures behind the code).
        options.enable_cpu_mem_arena = False
        self._session = onnxruntime.InferenceSession(
            onnx, options, providers=["CPUExecutionProvider"]
        )
        given = self._session.get_inputs()[0]
        self._input = given.name
        self._dtype = np.float64 if given.type == "tensor(double)" else np.float32
        self._output = [self._session.get_outputs()[-1].name]  # the probabilities

    @property
    def input_dtype(self) -> type:
        return self._dtype

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The session's probabilities as it computes them (float32 for most models)."""
        features = X.astype(self._dtype, copy=False)
        (probabilities,) = self._session.run(self._output, {self._input: features})
        return np.asarray(probabilities)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        return well_formed(self.raw(X))

    def indices(self, X: np.ndarray) -> np.ndarray:
        return self.raw(X).argmax(axis=1)
