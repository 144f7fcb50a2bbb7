"""Rows where a compiled model and its estimator could part: at the model's own split values.

Training rows sit far from the thresholds, so a check on them alone passed models that
flipped labels next to a split (a forest at the midpoint of two 5-decimal values, LightGBM's
double thresholds rounded to float32). A tree routes a row differently only when a value lies
between the two runtimes' views of one threshold, so the probes are built from the
thresholds themselves:
- every split value t, from the estimator where the library exposes it (each type's
  `thresholds`, server.algorithms) and from the compiled graph (what ONNX Runtime compares);
- t's neighbours: the next float64 on either side, the nearest float32 and the next float32 on
  either side of it;
- extreme values: 0, -0, the smallest float32 and float64, float32's largest and beyond it.
Two kinds of row use them: a kept training row with one value replaced (a single split moved),
and rows whose every value is a probe of its own feature (many splits at once), half and half,
at most `limit` rows in all (the check sizes it to a time budget).
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
_MAGNITUDES = np.array(
    [
        0.0,
        -0.0,
        float(np.finfo(F32).smallest_subnormal),
        float(np.finfo(np.float64).smallest_subnormal),
        1e-300,
        float(np.finfo(F32).max),
        3.5e38,
        1e300,
    ]
)
EXTREMES = np.concatenate([_MAGNITUDES, -_MAGNITUDES])


def neighbours(thresholds: np.ndarray) -> np.ndarray:
    """Each threshold and the float64 and float32 values closest to it on either side."""
    t = np.unique(thresholds[np.isfinite(thresholds)])
    with np.errstate(over="ignore"):  # next to float32's largest is its infinity: dropped
        nearest32 = t.astype(F32)
        finite32 = nearest32[np.isfinite(nearest32)]
        candidates = np.concatenate(
            [
                t,
                np.nextafter(t, np.inf),
                np.nextafter(t, -np.inf),
                finite32.astype(np.float64),
                np.nextafter(finite32, F32(np.inf)).astype(np.float64),
                np.nextafter(finite32, F32(-np.inf)).astype(np.float64),
            ]
        )
    return np.unique(candidates[np.isfinite(candidates)])


def graph_trees(onnx: bytes, n_features: int) -> tuple[dict[int, np.ndarray], int]:
    """The split values of the tree ensembles in an ONNX graph, per feature, and how many
    trees they hold (0 for a graph without trees)."""
    import onnx as onnx_lib

    model = onnx_lib.load_from_string(onnx)
    found: dict[int, list[np.ndarray]] = {}
    trees = 0
    for node in model.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        # Only the four attributes needed, read straight from the protobuf (converting all
        # of a 100-tree forest's, class weights included, took 0.1 s).
        attributes = {a.name: a for a in node.attribute}
        if "nodes_values_as_tensor" in attributes:
            tensor = attributes["nodes_values_as_tensor"].t
            values = onnx_lib.numpy_helper.to_array(tensor).astype(np.float64)
        else:
            values = np.asarray(attributes["nodes_values"].floats, dtype=np.float64)
        trees += len(np.unique(np.asarray(attributes["nodes_treeids"].ints)))
        features = np.asarray(attributes["nodes_featureids"].ints, dtype=np.int64)
        branches = np.asarray(attributes["nodes_modes"].strings) != b"LEAF"
        for feature in range(n_features):
            found.setdefault(feature, []).append(values[(features == feature) & branches])
    return {f: np.concatenate(v) for f, v in found.items()}, trees


def probe_rows(
    rows: np.ndarray,
    per_feature: dict[int, np.ndarray],
    limit: int,
    seed: int = 0,
    domains: dict[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Kept rows with values moved onto each feature's probes (see the module's docstring),
    `limit` of them, the same for the same inputs. A column with a domain (a categorical
    column's codes and missing, a one-hot column's 0 and 1) is probed with those values
    only: no request can hold another there."""
    rng = np.random.default_rng(seed)
    n_features = rows.shape[1]
    base = rows[~np.isnan(rows).any(axis=1)]
    if not len(base):
        base = np.zeros((1, n_features))
    domains = domains or {}
    values = {
        feature: domains[feature]
        if feature in domains
        else np.concatenate([neighbours(per_feature.get(feature, np.empty(0))), EXTREMES])
        for feature in range(n_features)
    }
    features = np.concatenate([np.full(len(values[f]), f) for f in range(n_features)])
    moved_to = np.concatenate([values[f] for f in range(n_features)])
    if len(features) > limit // 2:
        chosen = rng.choice(len(features), limit // 2, replace=False)
        features, moved_to = features[chosen], moved_to[chosen]
    one_moved = base[rng.integers(0, len(base), len(features))].copy()
    one_moved[np.arange(len(features)), features] = moved_to
    all_moved = np.column_stack(
        [rng.choice(values[feature], limit - len(features)) for feature in range(n_features)]
    )
    return np.vstack([one_moved, all_moved])
