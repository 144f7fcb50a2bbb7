"""How good a model is: the scores of a fit's held-out rows (`validation`) and of /evaluate.

All five are scikit-learn's own functions, on labels encoded as indices into the model's
classes (the scores do not depend on how the labels are spelled):
- accuracy, balanced accuracy, macro F1 of the predicted labels (the most probable class);
- ROC AUC: of the second class's probability for two classes, one-vs-rest macro for more;
  null when the rows hold a single class (it is undefined then);
- log loss of the probabilities, over every class of the model.
Probabilities are taken as the server answers them (`well_formed`: double precision, each row
rescaled to sum to 1 where it misses by more than 1e-12): XGBoost's float32 ones miss by
~1e-7, which scikit-learn's log loss would warn about.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

from server.errors import InvalidInput
from server.ml.probabilities import well_formed


def scores(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float | None]:
    """`y_true`: indices into the model's classes; `probabilities`: one column per class."""
    probabilities = well_formed(probabilities)
    predicted = probabilities.argmax(axis=1)
    classes = list(range(probabilities.shape[1]))
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, predicted)),
        "f1_macro": float(f1_score(y_true, predicted, average="macro")),
        "roc_auc": _roc_auc(y_true, probabilities),
        "log_loss": float(log_loss(y_true, probabilities, labels=classes)),
    }


def _roc_auc(y_true: np.ndarray, probabilities: np.ndarray) -> float | None:
    if len(np.unique(y_true)) < 2:
        return None
    try:
        if probabilities.shape[1] == 2:
            return float(roc_auc_score(y_true, probabilities[:, 1]))
        return float(
            roc_auc_score(
                y_true,
                probabilities,
                multi_class="ovr",
                average="macro",
                labels=list(range(probabilities.shape[1])),
            )
        )
    except ValueError:  # a class of the model absent from these rows
        return None


def check_holdout(y_encoded: np.ndarray, fraction: float) -> None:
    """Refuse, before any training, a split that stratification can't make."""
    counts = np.bincount(y_encoded)
    n_classes, n_rows = len(counts), len(y_encoded)
    held_out = int(np.ceil(fraction * n_rows))
    if counts.min() < 2:
        raise InvalidInput(
            "validation_fraction needs at least 2 rows of every class (to hold one out); "
            f"a class has {int(counts.min())}"
        )
    if held_out < n_classes or n_rows - held_out < n_classes:
        raise InvalidInput(
            f"validation_fraction {fraction} of {n_rows} rows holds out {held_out}: both parts "
            f"need at least one row of each of the {n_classes} classes"
        )


def holdout(
    n_rows: int, y_encoded: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices to train on and to score: scikit-learn's stratified `train_test_split`
    (test_size=fraction, random_state=seed), so that anyone can reproduce the split."""
    train, held_out = train_test_split(
        np.arange(n_rows), test_size=fraction, stratify=y_encoded, random_state=seed
    )
    return np.asarray(train), np.asarray(held_out)
