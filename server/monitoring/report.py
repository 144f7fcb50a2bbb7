"""What `GET /models/{name}/monitoring` computes for one version from its captured rows of a
window: how many were captured, dropped and labelled; live scores beside the validation
scores; drift per feature (server.monitoring.drift); the predicted classes' shares beside
the training labels'. Blocking: the monitor runs it in a thread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from server.ml.scoring import scores
from server.monitoring.drift import features_drift
from server.monitoring.rows import labelled
from server.monitoring.summaries import Summary

MS_PER_HOUR = 3_600_000
NO_PROFILE = "this version was trained before v5 and keeps no reference profile"


def live_scores(rows: pa.Table, classes: list[Any]) -> dict[str, float | None] | None:
    """scikit-learn's scores on the labelled rows: accuracy, balanced accuracy and F1 of the
    answers the model gave, ROC AUC and log loss of its probabilities."""
    rows = labelled(rows)
    if not rows.num_rows:
        return None
    known = pa.array([str(label) for label in classes], pa.string())
    truth = _codes(rows.column("_label"), known)
    answered = _codes(rows.column("_prediction"), known)
    flat = pc.list_flatten(rows.column("_probabilities")).to_numpy(zero_copy_only=False)
    probabilities = np.asarray(flat, dtype=np.float64).reshape(rows.num_rows, len(classes))
    found = scores(truth, probabilities)
    found["accuracy"] = float(accuracy_score(truth, answered))
    found["balanced_accuracy"] = float(balanced_accuracy_score(truth, answered))
    found["f1_macro"] = float(f1_score(truth, answered, average="macro"))
    return found


def _codes(column: pa.ChunkedArray, known: pa.Array) -> np.ndarray:
    return pc.index_in(column, value_set=known).to_numpy(zero_copy_only=False).astype(np.int64)


def live_by_hour(rows: pa.Table) -> list[dict[str, Any]]:
    """The labelled rows' accuracy per hour of the window (the dashboard's line)."""
    rows = labelled(rows)
    if not rows.num_rows:
        return []
    # Hours as numbers, each spelled once: formatting every row's time cost more than the rest.
    hours = pc.divide(pc.cast(rows.column("_time"), pa.int64()), MS_PER_HOUR)
    right = pc.cast(pc.equal(rows.column("_prediction"), rows.column("_label")), pa.int64())
    counted = pa.table({"hour": hours, "right": right}).group_by("hour").aggregate(
        [("right", "count"), ("right", "sum")]
    ).sort_by("hour")  # fmt: skip
    return [
        {"hour": _spelled(hour), "labelled": n, "accuracy": round(hits / n, 6)}
        for hour, n, hits in zip(
            *(counted.column(c).to_pylist() for c in ("hour", "right_count", "right_sum")),
            strict=True,
        )
    ]


def _spelled(hour: int) -> str:
    return datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:00:00Z")


def shares(counts: dict[str, int], classes: list[Any]) -> dict[str, float]:
    counted = {str(label): counts.get(str(label), 0) for label in classes}
    total = max(sum(counted.values()), 1)
    return {label: round(count / total, 6) for label, count in counted.items()}


def drift(summary: Summary, metadata: dict[str, Any]) -> dict[str, Any]:
    profile = metadata.get("profile")
    if profile is None:
        return {"max_psi": None, "drifted": None, "features": [], "reason": NO_PROFILE}
    if not summary.rows:
        return {"max_psi": None, "drifted": None, "features": [], "reason": "no rows captured"}
    features = features_drift(summary.drift, summary.rows, profile)
    judged = [item["drifted"] for item in features if item["drifted"] is not None]
    return {
        "max_psi": max((item["psi"] for item in features), default=None),
        "drifted": sum(judged) if judged else (None if features else 0),
        "features": features,
    }


def version_report(
    version: int, summary: Summary, rows: pa.Table | None, metadata: dict[str, Any], dropped: int
) -> dict[str, Any]:
    """`summary`: the version's captured rows of the window (server.monitoring.summaries);
    `rows`: those of them a label may name, with their `_label`s (None: none)."""
    classes = metadata["classes"]
    validation = metadata.get("validation") or {}
    described: dict[str, Any] = {
        "version": version, "captured": summary.rows, "dropped": dropped, "labelled": 0,
        "labels_outside_classes": 0, "live": None,
        "live_by_hour": [],
        "validation": validation.get("scores"), "drift": drift(summary, metadata),
        "predicted_classes": shares(summary.predicted, classes) if summary.rows else {},
        "training_classes": (metadata.get("profile") or {}).get("classes"),
    }  # fmt: skip
    if rows is None or not rows.num_rows:
        return described
    # A label that is no class of this version (given by a key that also reached rows of
    # another version) can't be scored against its answers: left out, and counted.
    given = labelled(rows)
    known = pc.is_in(given.column("_label"), pa.array([str(label) for label in classes]))
    scored = given.filter(known)
    described.update(
        labelled=scored.num_rows,
        labels_outside_classes=given.num_rows - scored.num_rows,
        live=live_scores(scored, classes),
        live_by_hour=live_by_hour(scored),
    )
    return described
