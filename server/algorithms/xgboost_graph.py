"""An XGBoost model as one ONNX `TreeEnsembleClassifier`, built from the booster's own JSON
arrays in a few numpy operations per tree (onnxmltools parses a text dump node by node in
Python: seconds for deep boosters, a quarter of their training time).

What it says is what XGBoost computes:
- XGBoost casts X to float32 and sends `x < t` left, t a float32: the graph takes float32
  input, keeps t, and branches `BRANCH_LT`;
- a missing value goes where each node says (`default_left`);
- a leaf adds its value to its class's margin, which starts at the model's intercept
  (`base_score`, a probability for `binary:logistic`, a margin per class otherwise); then
  the logistic or the softmax, as `predict_proba`;
- only the rounds `predict_proba` uses (up to the best one, where the fit stopped early).

Models it does not cover (categorical splits, other objectives) answer None: onnxmltools
converts those. The check at fit and load proves every copy either way.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from server.algorithms.forest_graph import ML_OPSET

OBJECTIVES = {
    "binary:logistic": "LOGISTIC",
    "multi:softprob": "SOFTMAX",
    "multi:softmax": "SOFTMAX",
}


def _intercepts(parameters: dict[str, str], objective: str, n_outputs: int) -> list[float]:
    values = [float(v) for v in parameters["base_score"].strip("[]").split(",")]
    if objective == "binary:logistic":  # kept as a probability: its margin
        values = [math.log(p / (1 - p)) for p in values]
    return values * n_outputs if len(values) == 1 else values


def _tree(tree: dict[str, Any], index: int, output: int) -> dict[str, np.ndarray]:
    left = np.asarray(tree["left_children"])
    leaf = left == -1
    ids = np.arange(len(left))
    conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
    leaves = ids[leaf]
    return {
        "nodes_treeids": np.full(len(left), index),
        "nodes_nodeids": ids,
        "nodes_featureids": np.where(leaf, 0, np.asarray(tree["split_indices"])),
        "nodes_values": np.where(leaf, np.float32(0), conditions),
        "nodes_modes": leaf,
        "nodes_truenodeids": np.where(leaf, 0, left),
        "nodes_falsenodeids": np.where(leaf, 0, np.asarray(tree["right_children"])),
        "nodes_missing_value_tracks_true": np.where(leaf, 0, np.asarray(tree["default_left"])),
        "class_treeids": np.full(len(leaves), index),
        "class_nodeids": leaves,
        "class_ids": np.full(len(leaves), output),
        "class_weights": conditions[leaf],
    }


def xgboost_to_onnx(estimator: Any, n_features: int) -> bytes | None:
    """The model's ONNX bytes (input `X` float32, outputs `label`, `probabilities`), or
    None for a model this builder does not cover."""
    from onnx import TensorProto, helper

    learner = json.loads(estimator.get_booster().save_raw("json"))["learner"]
    objective = learner["objective"]["name"]
    model = learner["gradient_booster"].get("model", {})
    trees, classes = model.get("trees", []), len(estimator.classes_)
    if objective not in OBJECTIVES or not trees or any(1 in t["split_type"] for t in trees):
        return None
    outputs = 1 if objective == "binary:logistic" else classes
    best = getattr(estimator, "best_iteration", None)
    if best is not None:  # the rounds predict_proba uses
        trees = trees[: int(model["iteration_indptr"][best + 1])]
    info = model["tree_info"]
    parts = [_tree(tree, i, int(info[i])) for i, tree in enumerate(trees)]
    joined = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    modes = np.where(joined.pop("nodes_modes"), "LEAF", "BRANCH_LT").tolist()
    node = helper.make_node(
        "TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
        classlabels_int64s=list(range(classes)), nodes_modes=modes,
        post_transform=OBJECTIVES[objective],
        base_values=_intercepts(learner["learner_model_param"], objective, outputs),
        **{key: values.tolist() for key, values in joined.items()},
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "xgboost",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, classes])],
    )  # fmt: skip
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
    )
    onnx_model.ir_version = 8
    return bytes(onnx_model.SerializeToString())
