"""A scikit-learn forest as one ONNX `TreeEnsembleClassifier`, built from the trees' own arrays.

skl2onnx walks every node in Python (8.6 s for a 100-tree forest on 20k rows, as long as the
fit), rounds thresholds to the nearest float32 and sends missing values one way. Here each
tree's arrays become the node's attributes in a few numpy operations, and they say what
scikit-learn computes:
- scikit-learn casts X to float32 and compares `float32(x) <= t` with a double threshold t.
  For a float32 x that is exactly `x <= floor32(t)`, the largest float32 not above t: the
  graph takes float32 input and gets those thresholds, so no row at a split goes the other way;
- a missing value goes where each node says (`missing_go_to_left`), and a split at an infinite
  threshold (missing or not, in a forest trained on missing values) stays one;
- a leaf's class weights are its class fractions over the number of trees, so the ensemble's
  sum is the forest's average of its trees' probabilities (in float32: within the check's
  tolerance, and near ties go to the estimator, server.inference.compiled.choice).
"""

from __future__ import annotations

from typing import Any

import numpy as np

ML_OPSET = 3  # ai.onnx.ml: TreeEnsembleClassifier as scikit-learn's converter writes it


def floor_float32(values: np.ndarray) -> np.ndarray:
    """The largest float32 not above each value (numpy's cast rounds to the nearest)."""
    with np.errstate(over="ignore"):
        nearest = values.astype(np.float32)
    above = nearest.astype(np.float64) > values
    nearest[above] = np.nextafter(nearest[above], np.float32(-np.inf))
    return nearest


def _tree_attributes(tree: Any, index: int, n_trees: int) -> dict[str, np.ndarray]:
    """One tree's nodes and leaf weights, as flat arrays (node ids are scikit-learn's)."""
    left, right = tree.children_left, tree.children_right
    leaf = left == -1
    ids = np.arange(tree.node_count)
    value = tree.value[:, 0, :]
    totals = value.sum(axis=1, keepdims=True)
    fractions = value / np.where(totals == 0, 1.0, totals)  # as the tree's predict_proba
    # Every class of every leaf, zeros too: with two classes, ONNX Runtime makes up a score
    # for a class that no leaf of the row names (seen: [-1.0, 1.0] for [1.0, 0.0]).
    leaves, classes = np.nonzero(np.broadcast_to(leaf[:, None], fractions.shape))
    return {
        "nodes_treeids": np.full(tree.node_count, index),
        "nodes_nodeids": ids,
        "nodes_featureids": np.where(leaf, 0, tree.feature),
        "nodes_values": np.where(leaf, 0.0, floor_float32(tree.threshold)).astype(np.float32),
        "nodes_modes": leaf,
        "nodes_truenodeids": np.where(leaf, 0, left),
        "nodes_falsenodeids": np.where(leaf, 0, right),
        "nodes_missing_value_tracks_true": np.where(leaf, 0, tree.missing_go_to_left),
        "class_treeids": np.full(len(leaves), index),
        "class_nodeids": leaves,
        "class_ids": classes,
        "class_weights": (fractions[leaves, classes] / n_trees).astype(np.float32),
    }


def forest_to_onnx(forest: Any, n_features: int) -> bytes:
    """The forest's ONNX bytes: input `X` float32 [rows, n_features], outputs `label` and
    `probabilities` float32 [rows, classes]."""
    from onnx import TensorProto, helper

    trees = [estimator.tree_ for estimator in forest.estimators_]
    parts = [_tree_attributes(tree, i, len(trees)) for i, tree in enumerate(trees)]
    joined = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    modes = np.where(joined.pop("nodes_modes"), "LEAF", "BRANCH_LEQ").tolist()
    attributes: dict[str, Any] = {key: values.tolist() for key, values in joined.items()}
    n_classes = int(forest.n_classes_)
    node = helper.make_node(
        "TreeEnsembleClassifier",
        ["X"],
        ["label", "probabilities"],
        domain="ai.onnx.ml",
        classlabels_int64s=list(range(n_classes)),
        nodes_modes=modes,
        post_transform="NONE",
        **attributes,
    )
    graph = helper.make_graph(
        [node],
        "forest",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_classes]),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
    )
    model.ir_version = 8  # what ONNX Runtime reads for these opsets
    return bytes(model.SerializeToString())
