"""Hyperparameters the server refuses, whatever the library would make of them.

The libraries take some parameters that reach outside the training: CatBoost writes and
reads quantization borders, snapshots and a training folder at any path it is given;
LightGBM's command-line parameters name data, model and config files, and the machines and
ports of distributed training. A user of this service names none of them: the server
decides where a model's files go, and every training runs on one core of this machine.
Predict-time parameters are refused too: how a model answers is the server's to decide, so
that every runtime gives the same answer.

Each type's accepted parameters are its constructor's own list (server.ml.algorithms); this
module takes these out of it, with the reason a 422 gives. Then `check_against_labels`
refuses what contradicts the labels (a 5-class objective on 2 classes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from server.errors import InvalidInput

FILES = "names a file, a directory or a network peer on the server"
PREDICT = "changes how the model predicts, which the server decides"
FEATURES = "is for text, embedding or categorical features, which the service does not take"

CATBOOST_REFUSED: dict[str, str] = {
    **dict.fromkeys(
        (
            "train_dir",
            "input_borders",
            "output_borders",
            "snapshot_file",
            "save_snapshot",
            "snapshot_interval",
        ),
        FILES,
    ),
    **dict.fromkeys(
        (
            "cat_features",
            "text_features",
            "embedding_features",
            "text_processing",
            "dictionaries",
            "tokenizers",
            "feature_calcers",
        ),
        FEATURES,
    ),
}

# LightGBM's canonical names; every alias of each is refused too (`lightgbm_refused`).
LIGHTGBM_FILES = (
    "config",
    "convert_model",
    "convert_model_language",
    "data",
    "valid",
    "input_model",
    "output_model",
    "output_result",
    "forcedbins_filename",
    "forcedsplits_filename",
    "parser_config_file",
    "save_binary",
    "snapshot_freq",
    "task",
    "machines",
    "machine_list_filename",
    "num_machines",
    "local_listen_port",
    "time_out",
    "initscore_filename",
    "valid_data_initscores",
)
LIGHTGBM_PREDICT = (
    "predict_raw_score",
    "predict_leaf_index",
    "predict_contrib",
    "predict_disable_shape_check",
    "pred_early_stop",
    "pred_early_stop_freq",
    "pred_early_stop_margin",
    "num_iteration_predict",
    "start_iteration_predict",
)
LIGHTGBM_FEATURES = ("categorical_feature",)


def lightgbm_refused(aliases: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """The refused names with every alias LightGBM knows them by (`aliases`: canonical name
    -> its aliases, the library's own table)."""
    refused: dict[str, str] = {}
    for names, reason in (
        (LIGHTGBM_FILES, FILES),
        (LIGHTGBM_PREDICT, PREDICT),
        (LIGHTGBM_FEATURES, FEATURES),
    ):
        for canonical in names:
            for name in {canonical, *aliases.get(canonical, ())}:
                refused[name] = reason
    return refused


def refuse(model_type: str, requested: Iterable[str], refused: Mapping[str, str]) -> None:
    """422 naming every requested parameter that is refused, with why."""
    found = sorted(name for name in requested if name in refused)
    if found:
        reasons = "; ".join(f"'{name}' {refused[name]}" for name in found)
        raise InvalidInput(f"hyperparameter(s) not accepted for {model_type}: {reasons}")


# Objectives (and the label count they need) that each booster accepts; anything else is a
# regression or ranking objective, and this service trains classifiers.
BINARY, MULTI = "binary", "multiclass"
OBJECTIVES: dict[str, dict[str, str]] = {
    "XGBClassifier": {
        "binary:logistic": BINARY,
        "binary:logitraw": BINARY,
        "binary:hinge": BINARY,
        "multi:softprob": MULTI,
        "multi:softmax": MULTI,
    },
    "LGBMClassifier": {
        "binary": BINARY,
        "cross_entropy": BINARY,
        "xentropy": BINARY,
        "multiclass": MULTI,
        "softmax": MULTI,
        "multiclassova": MULTI,
        "multiclass_ova": MULTI,
        "ova": MULTI,
        "ovr": MULTI,
    },
    "CatBoostClassifier": {
        "Logloss": BINARY,
        "CrossEntropy": BINARY,
        "MultiClass": MULTI,
        "MultiClassOneVsAll": MULTI,
    },
}
OBJECTIVE_KEYS = {
    "XGBClassifier": ("objective",),
    "LGBMClassifier": ("objective", "objective_type", "app", "application", "loss"),
    "CatBoostClassifier": ("loss_function", "objective"),
}
CLASS_COUNT_KEYS = {  # XGBClassifier takes none: it sets num_class itself
    "LGBMClassifier": ("num_class", "num_classes"),
    "CatBoostClassifier": ("classes_count",),
}


def check_against_labels(
    model_type: str, hyperparameters: Mapping[str, Any], n_classes: int
) -> None:
    """422 for an objective or a class count that contradicts the labels: the model would
    answer another number of probabilities than there are classes."""
    for key in CLASS_COUNT_KEYS.get(model_type, ()):
        if key in hyperparameters and hyperparameters[key] != n_classes:
            raise InvalidInput(
                f"hyperparameter '{key}' is {hyperparameters[key]!r}, but y has {n_classes} "
                f"classes: leave it out (the server sets it from the labels)"
            )
    objectives = OBJECTIVES.get(model_type, {})
    for key in OBJECTIVE_KEYS.get(model_type, ()):
        if key not in hyperparameters:
            continue
        value = hyperparameters[key]
        name = str(value).split(":", 1)[0] if model_type == "CatBoostClassifier" else value
        kind = objectives.get(name) if isinstance(name, str) else None
        if kind is None:
            raise InvalidInput(
                f"hyperparameter '{key}' is {value!r}, which is not a classification objective "
                f"of {model_type}: use one of {', '.join(objectives)}"
            )
        if kind == BINARY and n_classes > 2:
            raise InvalidInput(
                f"hyperparameter '{key}' is {value!r}, a two-class objective, but y has "
                f"{n_classes} classes"
            )
