"""Compare training recipes by 5-fold cross-validation on the shared rides: the evidence behind the recipe.

    python scripts/compare_recipes.py             # every recipe below, a few minutes
    python scripts/compare_recipes.py --only bag  # recipes whose name contains "bag"
    python scripts/compare_recipes.py --files     # also: fit on one shared file, score on the other

Valid rides are those the cleaning rules keep; rides under 100 m stay in (a rider can send one), so
each recipe is scored on all valid rides, on real trips (100 m and more) and on the short rides alone.
Every recipe sees the same folds. The shipped recipe is taxifare/training/pipeline.py's; the last
recipes are whole pipelines (fit on the rides themselves), for what needs more than the features:
the long-trip floor prices the longest rides from the same rides cut shorter.
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from taxifare.model.features import RideFeatureMap, trip_km  # noqa: E402
from taxifare.training.cleaning import clean_rides  # noqa: E402
from taxifare.training.cli import default_sources  # noqa: E402
from taxifare.training.data import read_rides  # noqa: E402
from taxifare.training.ensemble import FareRegressor  # noqa: E402
from taxifare.training.pipeline import (  # noqa: E402
    N_SHORT_MEMBERS,
    N_TRIP_MODELS,
    SHORT_PARAMS,
    SHORT_TRIP_KM,
    TRIP_PARAMS,
    build_pipeline,
)

FOLDS = 5
OLD_PARAMS = {"learning_rate": 0.15, "max_iter": 80, "max_leaf_nodes": 63, "max_depth": 8, "min_samples_leaf": 40,
              "l2_regularization": 1.0, "early_stopping": False}
"""The recipe before this comparison: one model, fit without the rides under 100 m."""
BASE_FEATURES = ("pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude", "passenger_count",
                 "trip_km", "grid_km", "bearing_deg", "pickup_to_jfk_km", "pickup_to_lga_km", "pickup_to_ewr_km",
                 "pickup_to_midtown_km", "dropoff_to_jfk_km", "dropoff_to_lga_km", "dropoff_to_ewr_km",
                 "dropoff_to_midtown_km", "year", "month", "weekday", "hour", "years_since_2009", "after_rate_change")
"""Roughly the features before this comparison (distances, landmarks, local time), without the domain ones."""
BIG_MEMBER = {"learning_rate": 0.1, "max_iter": 150, "max_leaf_nodes": 31, "min_samples_leaf": 20, "max_features": 0.8,
              "early_stopping": False}
"""The bag members of the first experiments: 750 trees a bag, too slow to serve (see the README)."""
SMALL_MEMBER = {"max_leaf_nodes": 31, "max_depth": 7, "min_samples_leaf": 20, "max_features": 0.8,
                "early_stopping": False}
"""With lr 0.25 and 40 trees, the short-ride bag's members (SHORT_PARAMS) and the previous trip bag's."""


def hgb(**params) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(**{"random_state": 0, **params})


def single(params: dict, columns: list[int] | None = None) -> Callable:
    """One boosted-tree model fit on real trips only (as before), on all features or some columns."""
    def fit_predict(X, y, trips, X_test):
        take = slice(None) if columns is None else columns
        return hgb(**params).fit(X[trips][:, take], y[trips]).predict(X_test[:, take])
    return fit_predict


def bag(n_members: int, params: dict, short_bag: bool, short_shrinkage: float = 0.5) -> Callable:
    """A FareRegressor of two alike bags; without a short-ride bag, one bag is fit on every ride and prices them all."""
    return regressor(n_members, params, n_members, params, short_bag, short_shrinkage)


def regressor(n_trip_models: int, trip_params: dict, n_short_members: int = N_SHORT_MEMBERS,
              short_params: dict = SHORT_PARAMS, short_bag: bool = True, short_shrinkage: float = 0.5) -> Callable:
    """A FareRegressor: trip model(s) and short-ride bag each of their own size and parameters."""
    def fit_predict(X, y, trips, X_test):
        model = FareRegressor(distance_column=DISTANCE, short_trip_km=SHORT_TRIP_KM if short_bag else 0.0,
                              short_shrinkage=short_shrinkage, n_members=n_trip_models, member=hgb(**trip_params),
                              n_short_members=n_short_members, short_member=hgb(**short_params),
                              range_quantiles=None).fit(X, y)
        return model.predict(X_test)
    return fit_predict


def distance_line(X, y, trips, X_test):
    return LinearRegression().fit(X[trips][:, [DISTANCE]], y[trips]).predict(X_test[:, [DISTANCE]])


def pipeline(**changes) -> Callable:
    """The shipped pipeline with some parameters changed, fit on rides (not features) and without its range."""
    def fit_predict(rides, y, test_rides):
        fitted = build_pipeline().set_params(regressor__range_quantiles=None, **changes).fit(rides, y)
        return fitted.predict(test_rides)
    return fit_predict


PIPELINES = {
    "previous release: no long-trip floor, no monotonic distances": pipeline(
        regressor__reach_quantile=None, regressor__member=HistGradientBoostingRegressor(**TRIP_PARAMS)),
    "long-trip floor only": pipeline(regressor__member=HistGradientBoostingRegressor(**TRIP_PARAMS)),
    "monotonic distances only": pipeline(regressor__reach_quantile=None),
    "shipped: long-trip floor + monotonic trip and grid distances": pipeline(),
}


def mean_fare(X, y, trips, X_test):
    return np.full(len(X_test), y[trips].mean())


def rmse(error: np.ndarray) -> float:
    return float(np.sqrt(np.mean(error**2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the recipes whose name contains this")
    parser.add_argument("--folds-seed", type=int, default=0, help="shuffle of the folds (the README's table: 0)")
    parser.add_argument("--files", action="store_true", help="also fit on one shared file and score on the other")
    args = parser.parse_args()
    rides = clean_rides(read_rides(default_sources()).rides).rides
    y = rides.pop("fare_amount").to_numpy()
    feature_map = RideFeatureMap.build()
    names = list(feature_map.names())
    X = feature_map.compute(rides)
    global DISTANCE
    DISTANCE = names.index("trip_km")
    trips = X[:, DISTANCE] >= SHORT_TRIP_KM
    base = [names.index(name) for name in BASE_FEATURES]
    recipes = {
        "mean fare": mean_fare,
        "distance-only linear": distance_line,
        "one model, old features and parameters, no short rides": single(OLD_PARAMS, base),
        "one model, new features, old parameters": single(OLD_PARAMS),
        "one model, new features, lr 0.05, 500 trees, 15 leaves": single(
            {"learning_rate": 0.05, "max_iter": 500, "max_leaf_nodes": 15, "early_stopping": False}),
        "bag of 5 x 150 trees (lr 0.1, 31 leaves), one bag for all": bag(5, BIG_MEMBER, short_bag=False),
        "bag of 5 x 150 trees + short-ride bag": bag(5, BIG_MEMBER, short_bag=True),
        "bag of 8 x 40 trees (lr 0.25, depth 7) + short-ride bag": bag(8, {**SMALL_MEMBER, "learning_rate": 0.25,
                                                                         "max_iter": 40}, short_bag=True),
        "bag of 5 x 40 trees (lr 0.25, depth 7) + short-ride bag": bag(5, SHORT_PARAMS, short_bag=True),
        "one trip model, 500 trees of 15 leaves (lr 0.05) + short-ride bag": regressor(
            1, {"learning_rate": 0.05, "max_iter": 500, "max_leaf_nodes": 15, "early_stopping": False}),
        "shipped, short-ride bag not pulled to the mean": regressor(N_TRIP_MODELS, TRIP_PARAMS, short_shrinkage=0.0),
        "one trip model, 200 trees of depth 5 (lr 0.1, 24 leaves) + short-ride bag": regressor(
            1, {**TRIP_PARAMS, "learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 24, "max_depth": 5}),
        "shipped: one trip model, 350 trees of depth 4 (lr 0.07) + short-ride bag": regressor(N_TRIP_MODELS,
                                                                                          TRIP_PARAMS),
    }
    print(f"{len(y):,} valid rides ({(~trips).sum():,} under {SHORT_TRIP_KM * 1000:.0f} m), {FOLDS}-fold CV, "
          f"{len(names)} features\n")
    print(f"{'recipe':<74}{'all':>7}{'trips':>7}{'short':>7}{'seconds':>9}")
    folds = list(KFold(FOLDS, shuffle=True, random_state=args.folds_seed).split(X))
    runs = [*((name, lambda train, test, fit=fit: fit(X[train], y[train], trips[train], X[test]))
              for name, fit in recipes.items()),
            *((name, lambda train, test, fit=fit: fit(rides.iloc[train], y[train], rides.iloc[test]))
              for name, fit in PIPELINES.items())]
    for name, fit_predict in runs:
        if args.only not in name:
            continue
        started = time.perf_counter()
        predicted = np.empty(len(y))
        for train, test in folds:
            predicted[test] = fit_predict(train, test)
        error = predicted - y
        print(f"{name:<74}{rmse(error):>7.3f}{rmse(error[trips]):>7.3f}{rmse(error[~trips]):>7.3f}"
              f"{time.perf_counter() - started:>9.1f}", flush=True)
    if args.files:
        swap_files(args.only)


def swap_files(only: str) -> None:
    """Each pipeline fit on one shared file and scored on the other: rides it has never seen, as riders send."""
    files = [clean_rides(read_rides([source]).rides).rides for source in default_sources()]
    print(f"\n{'fit on one file, scored on the other (real trips / all)':<74}{'A->B':>14}{'B->A':>14}")
    for name, fit_predict in PIPELINES.items():
        if only not in name:
            continue
        cells = []
        for fit, scored in ((files[0], files[1]), (files[1], files[0])):
            fit, scored = fit.copy(), scored.copy()
            y_fit, y_scored = fit.pop("fare_amount").to_numpy(), scored.pop("fare_amount").to_numpy()
            error = fit_predict(fit, y_fit, scored) - y_scored
            trips = trip_km(scored) >= SHORT_TRIP_KM
            cells.append(f"{rmse(error[trips]):.3f} / {rmse(error):.3f}")
        print(f"{name:<74}{cells[0]:>14}{cells[1]:>14}", flush=True)


if __name__ == "__main__":
    main()
