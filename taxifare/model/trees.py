"""Additive tree ensembles (gradient-boosted trees, bags of them) as flat numpy arrays.

Every node of every tree lives in a few shared arrays; leaves point to themselves, so every row
takes exactly `depth` steps without branching, and children are stored in pairs (right, left) so
one comparison picks the next node. Two evaluation strategies give the same sums:

- one row (a single ride, the common request): a level walk over the trees, one small array of
  n_trees nodes per level. It indexes with [] rather than take(): take() releases the GIL even
  for a few hundred elements, and under a threaded server another request's thread then keeps
  it for up to the 5 ms switch interval (measured: ~45 ms per ride with one busy sibling
  thread, 0.1 ms with indexing, which numpy only lets go of above 500 elements);
- more rows: a level walk over all (tree, row) pairs, in chunks of rows so memory stays bounded
  (about CHUNK_CELLS elements per temporary array); the work grows with rows x trees x depth.
  Here take() letting go of the GIL is welcome: the arrays are large, other requests may run.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from taxifare.model.checks import require_array, require_indices

CHUNK_CELLS = 1 << 16
"""Rows x trees per chunk of the level walk: its temporaries (~0.5 MB each) stay in the CPU's cache."""


@dataclass(frozen=True)
class TreeNodes:
    """One fitted tree as parallel arrays, node 0 its root (scikit-learn's histogram-GBM layout).

    A row goes left when its feature value is <= threshold, or when it is NaN and missing_left.
    cover: how many training rows reached each node (what TreeSHAP weighs the paths a row does not take by).
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    cover: np.ndarray
    depth: int


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """baseline + the sum of every tree's leaf value; build it with from_trees or combine.

    cover: the training rows that reached each node, of its own tree (a bag's weights are in `value`).
    """

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    children: np.ndarray
    value: np.ndarray
    cover: np.ndarray
    depth: int
    baseline: float

    @classmethod
    def from_trees(cls, trees: Sequence[TreeNodes], baseline: float) -> "TreeEnsemble":
        """baseline + sum of the trees."""
        sizes = np.array([len(tree.value) for tree in trees], dtype=np.intp)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        shift = np.repeat(offsets, sizes)
        own = np.arange(int(sizes.sum()), dtype=np.intp)
        is_leaf = np.concatenate([tree.is_leaf for tree in trees]).astype(bool)
        left = np.where(is_leaf, own, np.concatenate([tree.left for tree in trees]) + shift)
        right = np.where(is_leaf, own, np.concatenate([tree.right for tree in trees]) + shift)
        return cls(
            roots=offsets,
            feature=np.where(is_leaf, 0, np.concatenate([tree.feature for tree in trees])).astype(np.intp),
            threshold=np.where(is_leaf, np.inf, np.concatenate([tree.threshold for tree in trees])).astype(np.float64),
            missing_left=np.concatenate([tree.missing_left for tree in trees]).astype(bool) | is_leaf,
            children=np.column_stack([right, left]).ravel().astype(np.intp),
            value=np.concatenate([tree.value for tree in trees]).astype(np.float64),
            cover=np.concatenate([tree.cover for tree in trees]).astype(np.float64),
            depth=max(tree.depth for tree in trees),
            baseline=float(baseline),
        )

    @classmethod
    def combine(cls, weighted: Sequence[tuple["TreeEnsemble", float]]) -> "TreeEnsemble":
        """One ensemble predicting sum(weight * ensemble): a bag's average is weights of 1/k."""
        sizes = [len(ensemble.value) for ensemble, _ in weighted]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        return cls(
            roots=np.concatenate([e.roots + offset for (e, _), offset in zip(weighted, offsets, strict=True)]),
            feature=np.concatenate([e.feature for e, _ in weighted]),
            threshold=np.concatenate([e.threshold for e, _ in weighted]),
            missing_left=np.concatenate([e.missing_left for e, _ in weighted]),
            children=np.concatenate([e.children + offset for (e, _), offset in zip(weighted, offsets, strict=True)]),
            value=np.concatenate([e.value * weight for e, weight in weighted]),
            cover=np.concatenate([e.cover for e, _ in weighted]),
            depth=max(e.depth for e, _ in weighted),
            baseline=float(sum(e.baseline * weight for e, weight in weighted)),
        )

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The ensemble's output for each row of X, shape (n_rows, n_features)."""
        X = np.asarray(X, dtype=np.float64)
        if len(X) == 1:
            return np.array([self._predict_one(X[0])])
        chunk = max(1, CHUNK_CELLS // self.n_trees)
        return np.concatenate([self._predict_level_walk(X[start:start + chunk])
                               for start in range(0, len(X), chunk)])

    def _predict_one(self, x: np.ndarray) -> float:
        """One row: the trees' nodes one level at a time; [] indexing keeps the GIL (see the module's note)."""
        node = self.roots
        missing = np.isnan(x).any()
        for _ in range(self.depth):
            values = x[self.feature[node]]
            go_left = values <= self.threshold[node]
            if missing:
                go_left |= np.isnan(values) & self.missing_left[node]
            node = self.children[node + node + go_left]
        return float(self.value[node].sum()) + self.baseline

    def _predict_level_walk(self, X: np.ndarray) -> np.ndarray:
        """All (tree, row) pairs one level at a time, in place: a few passes over (n_trees, n_rows) arrays.

        Every row starts at the root, so the first level reads whole feature columns; the later
        levels gather each pair's own node. "clip" skips per-index checks: check() bounded them.
        """
        n = len(X)
        columns = np.ascontiguousarray(X.T)  # feature-major: row r of feature f at f * n + r
        flat_columns = columns.ravel()
        row = np.arange(n, dtype=np.intp)
        feature_start = self.feature * n
        missing = np.isnan(X).any()
        values = columns[self.feature[self.roots]]
        go_left = values <= self.threshold[self.roots][:, None]
        if missing:
            go_left |= np.isnan(values) & self.missing_left[self.roots][:, None]
        node = 2 * self.roots[:, None] + go_left
        self.children.take(node, out=node, mode="clip")
        where = np.empty_like(node)
        thresholds = np.empty(node.shape)
        for _ in range(1, self.depth):
            feature_start.take(node, out=where, mode="clip")
            where += row
            flat_columns.take(where, out=values, mode="clip")
            self.threshold.take(node, out=thresholds, mode="clip")
            np.less_equal(values, thresholds, out=go_left)
            if missing:
                go_left |= np.isnan(values) & self.missing_left[node]
            node += node
            node += go_left
            self.children.take(node, out=node, mode="clip")
        return self.value.take(node, mode="clip").sum(axis=0) + self.baseline

    def check(self, n_features: int) -> None:
        """Raise ValueError unless the arrays form trees over `n_features` features."""
        n_nodes = len(require_array(self.value, "value", np.float64, 1))
        for name, dtype in (("roots", np.intp), ("feature", np.intp), ("children", np.intp),
                            ("threshold", np.float64), ("missing_left", np.bool_), ("cover", np.float64)):
            require_array(getattr(self, name), name, dtype, 1)
        if len(self.feature) != n_nodes or len(self.threshold) != n_nodes or len(self.missing_left) != n_nodes \
                or len(self.cover) != n_nodes or len(self.children) != 2 * n_nodes or not len(self.roots):
            raise ValueError("tree arrays differ in length")
        if not (np.isfinite(self.cover).all() and (self.cover > 0).all()):
            raise ValueError("cover must count at least one training row at every node")
        require_indices(self.roots, "roots", n_nodes)
        require_indices(self.children, "children", n_nodes)
        require_indices(self.feature, "feature", n_features)
        if not isinstance(self.depth, int) or not 0 <= self.depth <= 64 or not isinstance(self.baseline, float):
            raise ValueError("depth must be an int from 0 to 64 and baseline a float")
