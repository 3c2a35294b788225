"""Gradient-boosted trees as flat numpy arrays, evaluated all at once for small batches.

scikit-learn's HistGradientBoostingRegressor.predict costs ~9 microseconds per tree for one row
(input validation plus one Cython call per tree): 500 trees take ~5 ms. Here every tree's
nodes live in a few shared arrays, and one row walks all trees together, one level per step,
so a prediction costs a few dozen numpy operations whatever the number of trees.
The work grows with rows x nodes, so it only pays for small batches (see predictor.py).
"""

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor


class FlatTrees:
    """The fitted trees of a HistGradientBoostingRegressor, evaluated level by level.

    Leaves point to themselves, so every row takes exactly `depth` steps without branching.
    Children are stored in pairs (right, left) so one comparison picks the next node.
    """

    def __init__(self, regressor: HistGradientBoostingRegressor):
        if type(regressor._loss.link).__name__ != "IdentityLink":
            raise ValueError(f"only identity-link losses are supported by the flat evaluator, not {regressor.loss!r}")
        nodes = [predictors[0].nodes for predictors in regressor._predictors]
        if any(n["is_categorical"].any() for n in nodes):
            raise ValueError("categorical splits are not supported by the flat evaluator")
        sizes = np.array([len(n) for n in nodes])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        merged = np.concatenate(nodes)
        own = np.arange(len(merged))
        node_offset = np.repeat(offsets, sizes)
        is_leaf = merged["is_leaf"].astype(bool)
        left = np.where(is_leaf, own, merged["left"] + node_offset)
        right = np.where(is_leaf, own, merged["right"] + node_offset)
        self.roots = offsets.astype(np.intp)
        self.feature = np.where(is_leaf, 0, merged["feature_idx"]).astype(np.intp)
        self.threshold = np.where(is_leaf, np.inf, merged["num_threshold"])
        self.missing_left = merged["missing_go_to_left"].astype(bool) | is_leaf
        self.children = np.column_stack([right, left]).ravel().astype(np.intp)
        self.value = merged["value"]
        self.depth = int(merged["depth"].max())
        self.baseline = float(np.ravel(regressor._baseline_prediction)[0])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Sum of every tree's leaf value plus the baseline, for each row of X (n_rows, n_features).

        Every node's decision is taken at once (one gather and one comparison over all nodes);
        then each level of the walk is a single lookup into those decisions.
        """
        X = np.asarray(X, dtype=np.float64)
        values = X[:, self.feature]
        go_left = values <= self.threshold
        if np.isnan(X).any():
            go_left |= np.isnan(values) & self.missing_left
        decisions = go_left.ravel()
        row_start = (np.arange(len(X)) * len(self.feature))[:, None]
        node = np.broadcast_to(self.roots, (len(X), len(self.roots)))
        for _ in range(self.depth):
            node = self.children[2 * node + decisions[row_start + node]]
        return self.value[node].sum(axis=1) + self.baseline
