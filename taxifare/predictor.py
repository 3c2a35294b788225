"""Predict fares with a fitted pipeline, taking the fastest exact path for the batch size."""

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from sklearn.pipeline import Pipeline

from taxifare.flat_trees import FlatTrees

if TYPE_CHECKING:
    import pandas as pd

FLAT_TREES_MAX_ROWS = 64
"""Up to this many rows the flat evaluator wins; beyond, scikit-learn's Cython tree walk does."""


class FarePredictor:
    """A fitted fare Pipeline, with single rides routed around scikit-learn's per-tree overhead.

    Both paths give the same fares (to 1e-9, see tests/test_flat_trees.py).
    """

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.features = pipeline.named_steps["features"]
        self.regressor = pipeline.named_steps["regressor"]
        self.trees = FlatTrees(self.regressor)

    def predict(self, rides: "pd.DataFrame | Mapping[str, np.ndarray]") -> np.ndarray:
        """Fares for rides given as a DataFrame or a dict of equal-length column arrays."""
        X = self.features.compute(rides)
        if len(X) <= FLAT_TREES_MAX_ROWS:
            return self.trees.predict(X)
        return self.regressor.predict(X)
