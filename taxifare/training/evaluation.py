"""Metrics and the baselines every model must beat, printed as a readable table."""

from dataclasses import dataclass

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from taxifare.training.transformers import RideFeatures

DISTANCE_FEATURE = "haversine_km"


@dataclass(frozen=True)
class Scores:
    """Test-set errors of one model, in dollars."""

    rmse: float
    mae: float


def score(y_true: np.ndarray, y_pred: np.ndarray) -> Scores:
    """RMSE (the competition's metric) and MAE."""
    error = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    return Scores(rmse=float(np.sqrt(np.mean(error**2))), mae=float(np.mean(np.abs(error))))


def build_baselines() -> dict[str, object]:
    """The two references: always the mean fare, and a straight line on the trip's distance."""
    names = list(RideFeatures().fit(None).get_feature_names_out())
    distance_only = Pipeline(
        [
            ("features", RideFeatures()),
            ("distance", ColumnTransformer([(DISTANCE_FEATURE, "passthrough", [names.index(DISTANCE_FEATURE)])])),
            ("linear", LinearRegression()),
        ]
    )
    return {"mean fare": DummyRegressor(strategy="mean"), "distance-only linear": distance_only}


def format_table(results: dict[str, Scores]) -> str:
    """A fixed-width table of RMSE and MAE per model."""
    width = max(len(name) for name in results) + 2
    lines = [f"{'model':<{width}}{'RMSE':>8}{'MAE':>8}"]
    lines += [f"{name:<{width}}{s.rmse:>8.3f}{s.mae:>8.3f}" for name, s in results.items()]
    return "\n".join(lines)
