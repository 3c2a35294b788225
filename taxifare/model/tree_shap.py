"""Exact contributions of each feature to a tree ensemble's output: path-dependent TreeSHAP, in numpy.

TreeSHAP (Lundberg et al., "From local explanations to global understanding with explainable AI for
trees", 2020) gives each feature its Shapley value in the game "the tree's expected output when only
these features are known", where an unknown feature's splits are averaged by the training rows that
went each way (the node covers). The values plus the ensemble's expected output equal its output.

Instead of the paper's recursion, every leaf is taken on its own. Its path involves d distinct
features (d <= depth; a feature split twice on the path counts once), each with:
- the interval (low, high] of values that follow every split on it along the path (a missing value
  follows when every such split sends missing values the path's way), and
- its zero fraction z: the share of training rows that went the path's way at those splits.
For a given row, each of the d features follows the path or not; call A the set that does and
Z the product of z over the others. The leaf gives feature i
- if i follows: (1 - z_i) * Z * H(A without i), and
- if not:       -Z * H(A),
where H(S) = value * sum_k k! (d - k - 1)! / d! * [t^k] prod_{j in S} (z_j + t). H depends on the
leaf alone, so it is tabulated once for all 2^d subsets (LeafPaths), and a row costs a few passes
over (leaves x depth) arrays: no recursion, the same work for every tree shape, batches in chunks.
"""

import threading
import weakref
from dataclasses import dataclass
from math import factorial

import numpy as np

from taxifare.model.trees import TreeEnsemble

CHUNK_CELLS = 1 << 18
"""Rows x leaves x depth per chunk of a batch: its temporaries (2 MB each) stay in the CPU's cache."""


@dataclass(frozen=True, eq=False)
class LeafPaths:
    """An ensemble's leaves, ready to explain rows: which features each path asks about, and the answers' table.

    Leaves whose path splits on at least one feature, in two layouts:
    - slot-major (slots, leaves): slot s of a leaf is the s-th distinct feature on its path, with the
      interval (low, high] and missing_follows of the module's note; an unused slot follows no row.
      A row's followed slots, as bits, make the leaf's pattern A.
    - cells, one per (leaf, slot) in use, sorted by feature: cell_leaf, and where the cell's 2^d
      contributions (one per pattern A, from the module's formula) begin in `table`.
    feature_starts, features: the first cell of each feature that has cells, and that feature.
    expected: the ensemble's output averaged over its training rows (baseline included).
    """

    feature: np.ndarray
    low: np.ndarray
    high: np.ndarray
    missing_follows: np.ndarray
    cell_leaf: np.ndarray
    cell_start: np.ndarray
    table: np.ndarray
    feature_starts: np.ndarray
    features: np.ndarray
    expected: float

    @classmethod
    def of(cls, ensemble: TreeEnsemble) -> "LeafPaths":
        """The paths of every leaf (found one level at a time over all trees at once) and their table."""
        value, feature, low, high, missing, zero, used = _paths(ensemble)
        expected = ensemble.baseline + float(np.sum(value * zero.prod(axis=1)))
        splits = used > 0  # a tree that is one leaf adds to the expected output only
        value, feature, low, high, missing, zero, used = (a[splits] for a in (value, feature, low, high, missing,
                                                                             zero, used))
        in_use = np.arange(feature.shape[1]) < used[:, None]
        low, high, missing = np.where(in_use, low, np.inf), np.where(in_use, high, -np.inf), missing & in_use
        leaf, slot = np.nonzero(in_use)
        order = np.argsort(feature[leaf, slot], kind="stable")
        leaf, slot = leaf[order], slot[order]
        sizes = 1 << used[leaf]
        cell_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        table = np.empty(int(sizes.sum()))
        for d in np.unique(used):
            leaves = np.flatnonzero(used == d)
            contributions = value[leaves, None] * _pattern_contributions(zero[leaves, :d])  # (2^d, leaves, d)
            position = np.full((len(value), d), -1, dtype=np.intp)
            cells = np.flatnonzero(used[leaf] == d)
            position[leaf[cells], slot[cells]] = cell_start[cells]
            table[position[leaves][None] + np.arange(1 << d)[:, None, None]] = contributions
        cell_feature = feature[leaf, slot]
        feature_starts = np.flatnonzero(np.diff(cell_feature, prepend=-1))
        return cls(np.ascontiguousarray(feature.T), np.ascontiguousarray(low.T), np.ascontiguousarray(high.T),
                   np.ascontiguousarray(missing.T), leaf, cell_start, table, feature_starts,
                   cell_feature[feature_starts], expected)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Each feature's contribution to each row's output, shape (n_rows, n_features); rows sum to output - expected."""
        X = np.asarray(X, dtype=np.float64)
        out = np.zeros(X.shape)
        chunk = max(1, CHUNK_CELLS // max(self.feature.size, 1))
        for start in range(0, len(X), chunk):
            rows = X[start:start + chunk]
            out[start:start + chunk, self.features] = np.add.reduceat(self._cells(rows), self.feature_starts, axis=1)
        return out

    def _cells(self, X: np.ndarray) -> np.ndarray:
        """Each cell's contribution for each row, shape (rows, cells)."""
        values = X[:, self.feature]  # (rows, slots, leaves)
        follows = (values > self.low) & (values <= self.high)
        if np.isnan(values).any():
            follows |= np.isnan(values) & self.missing_follows
        pattern = follows[:, 0].astype(np.intp)
        for slot in range(1, follows.shape[1]):
            pattern += follows[:, slot].astype(np.intp) << slot
        return self.table[self.cell_start + pattern[:, self.cell_leaf]]


def _paths(ensemble: TreeEnsemble) -> tuple[np.ndarray, ...]:
    """(value, feature, low, high, missing_follows, zero, used) of every leaf: its value, its path's distinct
    features in slots (n_leaves, depth) as in the module's note, and how many slots it uses."""
    slots = max(ensemble.depth, 1)
    node = ensemble.roots
    feature = np.zeros((len(node), slots), dtype=np.intp)
    low, high = np.full(feature.shape, -np.inf), np.full(feature.shape, np.inf)
    missing, zero = np.ones(feature.shape, dtype=bool), np.ones(feature.shape)
    used = np.zeros(len(node), dtype=np.intp)
    leaves = []
    while len(node):
        right, left = ensemble.children[2 * node], ensemble.children[2 * node + 1]
        leaf = left == node  # a leaf's children are itself
        leaves.append((node[leaf], feature[leaf], low[leaf], high[leaf], missing[leaf], zero[leaf], used[leaf]))
        inner = ~leaf
        node, left, right = node[inner], left[inner], right[inner]
        feature, low, high, missing, zero, used = (a[inner] for a in (feature, low, high, missing, zero, used))
        split, threshold = ensemble.feature[node], ensemble.threshold[node]
        seen = (feature == split[:, None]) & (np.arange(slots) < used[:, None])
        slot = np.where(seen.any(axis=1), seen.argmax(axis=1), used)
        row = np.arange(len(node))
        children = []
        for child, goes_left in ((left, True), (right, False)):
            f, lo, hi, mi, z = feature.copy(), low.copy(), high.copy(), missing.copy(), zero.copy()
            f[row, slot] = split
            if goes_left:
                hi[row, slot] = np.minimum(hi[row, slot], threshold)
            else:
                lo[row, slot] = np.maximum(lo[row, slot], threshold)
            mi[row, slot] &= ensemble.missing_left[node] == goes_left
            z[row, slot] *= ensemble.cover[child] / ensemble.cover[node]
            children.append((child, f, lo, hi, mi, z, np.maximum(used, slot + 1)))
        node, feature, low, high, missing, zero, used = (np.concatenate(parts) for parts in zip(*children))
    node, feature, low, high, missing, zero, used = (np.concatenate(parts) for parts in zip(*leaves))
    return ensemble.value[node], feature, low, high, missing, zero, used


def _pattern_contributions(zero: np.ndarray) -> np.ndarray:
    """What a leaf of value 1 gives each of its d features, for every pattern A of followed ones: (2^d, leaves, d).

    From the module's formula: H(S) for every subset, each built from the subset without its lowest
    feature, and Z(A), the product of the zero fractions outside A.
    """
    n, d = zero.shape
    masks = np.arange(1 << d)
    polynomials = np.zeros((1 << d, n, d + 1))
    polynomials[0, :, 0] = 1.0
    products = np.ones((1 << d, n))  # prod_{j in S} z_j
    for mask in range(1, 1 << d):
        lowest = (mask & -mask).bit_length() - 1
        smaller = mask ^ (1 << lowest)
        polynomials[mask, :, 1:] = polynomials[smaller, :, :-1]
        polynomials[mask] += zero[:, lowest, None] * polynomials[smaller]
        products[mask] = products[smaller] * zero[:, lowest]
    weights = np.array([factorial(k) * factorial(d - k - 1) / factorial(d) for k in range(d)] + [0.0])
    h = polynomials @ weights  # the full set is never asked for: it gets weight 0
    others = products[(1 << d) - 1 - masks]  # Z(A)
    result = np.empty((1 << d, n, d))
    for slot in range(d):
        follows = ((masks >> slot) & 1).astype(bool)[:, None]
        result[:, :, slot] = np.where(follows, (1 - zero[:, slot]) * h[masks ^ (1 << slot)], -h) * others
    return result


_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def leaf_paths(ensemble: TreeEnsemble) -> LeafPaths:
    """The ensemble's LeafPaths, built on first use and kept as long as the ensemble (never in its file)."""
    with _cache_lock:
        paths = _cache.get(ensemble)
        if paths is None:
            paths = _cache[ensemble] = LeafPaths.of(ensemble)
        return paths
