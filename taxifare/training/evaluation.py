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

from taxifare.model.fare_model import FareModel
from taxifare.model.features import trip_km
from taxifare.training.pipeline import DISTANCE_FEATURE, SHORT_TRIP_KM
from taxifare.training.transformers import RideFeatures

MEAN_FARE = "mean fare"
DISTANCE_LINEAR = "distance-only linear"


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
    return {MEAN_FARE: DummyRegressor(strategy="mean"), DISTANCE_LINEAR: distance_only}


def baseline_parameters(rides: object, y: np.ndarray) -> dict[str, dict[str, float]]:
    """Both baselines fit on these rides, as numbers model.json can carry to an evaluation on new rides."""
    baselines = build_baselines()
    mean = baselines[MEAN_FARE].fit(rides, y)
    linear = baselines[DISTANCE_LINEAR].fit(rides, y).named_steps["linear"]
    return {MEAN_FARE: {"fare": round(float(mean.constant_.ravel()[0]), 6)},
            DISTANCE_LINEAR: {"intercept": round(float(linear.intercept_), 6), "per_km": round(float(linear.coef_[0]), 6)}}


def apply_baselines(parameters: dict[str, dict[str, float]], rides: object) -> dict[str, np.ndarray]:
    """The recorded baselines' fares for these rides."""
    km = trip_km(rides)
    linear = parameters[DISTANCE_LINEAR]
    return {MEAN_FARE: np.full(len(km), parameters[MEAN_FARE]["fare"]),
            DISTANCE_LINEAR: linear["intercept"] + linear["per_km"] * km}


def range_scores(predictor: object, rides: object, y: np.ndarray) -> dict[int, RangeScores]:
    """Coverage and width of each calibrated range of a FareModel or a fitted pipeline, on these rides."""
    coverages = (predictor.range_coverages if isinstance(predictor, FareModel)
                 else predictor.named_steps["regressor"].range_margins_)
    return {int(coverage): score_range(y, *predictor.predict_range(rides, coverage)[1:]) for coverage in coverages}


def _cell(value: float) -> str:
    return f"{'-':>8}" if np.isnan(value) else f"{value:>8.3f}"


def format_table(results: dict[str, Scores]) -> str:
    """A fixed-width table of RMSE (all rides, trips, short rides) and MAE per model; "-" where there are no rides."""
    width = max(len(name) for name in results) + 2
    lines = [f"{'model':<{width}}{'RMSE':>8}{'trips':>8}{'short':>8}{'MAE':>8}"]
    lines += [f"{name:<{width}}{_cell(s.rmse)}{_cell(s.rmse_trips)}{_cell(s.rmse_short)}{_cell(s.mae)}"
              for name, s in results.items()]
    return "\n".join(lines)


def format_ranges(ranges: dict[int, RangeScores]) -> str:
    """One line per calibrated coverage: what it promised, what it held, how wide."""
    return "\n".join(f"{coverage}% range: held the fare of {r.coverage:.1%} of these rides, mean width "
                     f"${r.mean_width:.2f}" for coverage, r in ranges.items())
