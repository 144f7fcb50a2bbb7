"""Which runtime serves a model being loaded, and why (shown by GET /models/{name})."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from server.compiled.runtimes import NativeRuntime, OnnxRuntime, Runtime
from server.compiled.verify import verify

RuntimeSetting = Literal["auto", "native"]


@dataclass(frozen=True)
class RuntimeChoice:
    runtime: Runtime  # serves every row...
    missing_rows: Runtime | None  # ...except rows with missing values, when this is set
    detail: str

    def describe(self) -> dict[str, Any]:
        return {"runtime": self.runtime.name, "runtime_detail": self.detail}


def choose_runtime(
    native: NativeRuntime, bundle: dict[str, Any], setting: RuntimeSetting, handles_missing: bool
) -> RuntimeChoice:
    """The compiled model if it passes the check on the kept rows; else the estimator, with
    the reason. Blocking (a session start and a few predictions)."""
    if setting == "native":
        return RuntimeChoice(native, None, "INFERENCE_RUNTIME=native")
    if "onnx" not in bundle:
        return RuntimeChoice(native, None, "saved without a compiled model (before v2.1)")
    if bundle["onnx"] is None:
        return RuntimeChoice(native, None, str(bundle.get("onnx_error")))
    try:
        compiled = OnnxRuntime(bundle["onnx"])
        rows = np.asarray(bundle["check_rows"], dtype=np.float64)
        verdict = verify(native, compiled, rows, handles_missing)
    except Exception as error:  # a session that can't start or run: serve the estimator
        return RuntimeChoice(
            native, None, f"ONNX Runtime failed: {type(error).__name__}: {error}"[:500]
        )
    if verdict.complete_rows is not None:
        return RuntimeChoice(
            native,
            None,
            f"the compiled model disagreed with the estimator: {verdict.complete_rows}; "
            f"{verdict.detail}",
        )
    if verdict.missing_rows is not None:
        return RuntimeChoice(
            compiled,
            native,
            f"{verdict.detail}; rows with missing values go to the estimator, on which the "
            f"compiled model disagreed: {verdict.missing_rows}",
        )
    return RuntimeChoice(compiled, None, verdict.detail)
