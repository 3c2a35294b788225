"""Metrics and the baselines every model must beat, printed as a readable table.

Errors are reported on all valid rides, on real trips (pickup and dropoff 100 m apart or more) and
on the short rides alone: the short ones are 1.5% of rides but a quarter of the squared error.
A fare range is scored by how often it holds the real fare (coverage) and how wide it is.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from taxifare.model.features import trip_km
from taxifare.training.pipeline import DISTANCE_FEATURE, SHORT_TRIP_KM
from taxifare.training.transformers import RideFeatures


@dataclass(frozen=True)
class Scores:
    """Errors of one model on a set of rides, in dollars (rmse_short is nan when there are none)."""

    rmse: float
    mae: float
    rmse_trips: float
    rmse_short: float

    def rounded(self) -> dict[str, float | None]:
        return {name: None if np.isnan(value) else round(value, 4) for name, value in self.__dict__.items()}


@dataclass(frozen=True)
class RangeScores:
    """How a fare range did: the share of real fares inside it, and its mean width in dollars."""

    coverage: float
    mean_width: float


def short_rides(rides: object) -> np.ndarray:
    """Which rides are under SHORT_TRIP_KM, by the model's own trip length."""
    return trip_km(rides) < SHORT_TRIP_KM


def _rmse(error: np.ndarray) -> float:
    return float(np.sqrt(np.mean(error**2))) if len(error) else float("nan")


def score(y_true: np.ndarray, y_pred: np.ndarray, short: np.ndarray) -> Scores:
    """RMSE (the competition's metric) and MAE over all rides; RMSE over trips and over short rides."""
    error = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    return Scores(rmse=_rmse(error), mae=float(np.mean(np.abs(error))), rmse_trips=_rmse(error[~short]),
                  rmse_short=_rmse(error[short]))


def score_range(y_true: np.ndarray, low: np.ndarray, high: np.ndarray) -> RangeScores:
    inside = (y_true >= low) & (y_true <= high)
    return RangeScores(coverage=float(np.mean(inside)), mean_width=float(np.mean(high - low)))


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
    """A fixed-width table of RMSE (all rides, trips, short rides) and MAE per model."""
    width = max(len(name) for name in results) + 2
    lines = [f"{'model':<{width}}{'RMSE':>8}{'trips':>8}{'short':>8}{'MAE':>8}"]
    lines += [f"{name:<{width}}{s.rmse:>8.3f}{s.rmse_trips:>8.3f}{s.rmse_short:>8.3f}{s.mae:>8.3f}"
              for name, s in results.items()]
    return "\n".join(lines)


def format_ranges(ranges: dict[int, RangeScores]) -> str:
    """One line per calibrated coverage: what it promised, what it held, how wide."""
    return "\n".join(f"{coverage}% range: held {r.coverage:.1%} of real fares, mean width ${r.mean_width:.2f}"
                     for coverage, r in ranges.items())
