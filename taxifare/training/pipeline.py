"""The fare model as scikit-learn fits it: one Pipeline, ride features then gradient-boosted trees."""

from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from taxifare.training.transformers import RideFeatures

REGRESSOR_PARAMS = {
    "learning_rate": 0.15,
    "max_iter": 80,
    "max_leaf_nodes": 63,
    "max_depth": 8,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,
    "random_state": 0,
}
"""Chosen by 5-fold cross-validation on the shared 20k rides (scripts/benchmark_model.py)."""


def build_pipeline(**regressor_params) -> Pipeline:
    """An unfitted fare pipeline; keyword arguments override the regressor's defaults."""
    return Pipeline(
        [
            ("features", RideFeatures()),
            ("regressor", HistGradientBoostingRegressor(**{**REGRESSOR_PARAMS, **regressor_params})),
        ]
    )
