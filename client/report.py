"""What the demo scripts print: tables, percentiles, a live progress bar per training job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm import tqdm


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width table, numbers right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) if rows else False
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


SCORES = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss")


def scores_table(models: Sequence[dict[str, Any]]) -> str:
    """The held-out scores of fitted models (their /fit answers), one row per model."""
    rows = []
    for model in models:
        validation = model.get("validation") or {}
        scores = validation.get("scores") or {}
        rows.append(
            [
                model["model_type"],
                validation.get("n_samples", "-"),
                *("-" if scores.get(key) is None else f"{scores[key]:.4f}" for key in SCORES),
            ]
        )
    return table(["type", "held-out rows", *SCORES], rows)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class JobBar:
    """A live progress bar for one training job: call it with each job event (it is the
    `on_progress` of `client.wait`). Iterations where the library reports them; a job
    without a measure (LogisticRegression) shows its elapsed time only."""

    def __init__(self, label: str, position: int = 0) -> None:
        self._bar = tqdm(
            desc=label, total=None, position=position, unit="it", leave=True, mininterval=0.5
        )

    def __call__(self, job: dict[str, Any]) -> None:
        progress = job["progress"]
        total = progress["iterations_total"]
        if total and self._bar.total != total:
            self._bar.total = total
        if progress["iterations_done"] is not None:
            self._bar.n = progress["iterations_done"]
        eta = job["eta_seconds"]
        state = job["state"] if job["state"] != "running" else f"eta {eta:.0f} s" if eta else ""
        self._bar.set_postfix_str(state, refresh=True)

    def close(self) -> None:
        self._bar.close()
