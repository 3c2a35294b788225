"""The fare model as scikit-learn fits it: ride features, boosted trees for trips, a bag for short rides, a range.

The recipe (model parameters, bag sizes, the short-ride threshold) was chosen by 5-fold
cross-validation on the shared rides (scripts/compare_recipes.py prints the comparison) within the
serving budget: every tree level costs on every request (a batch walks trees x depth levels), so
trips get one model of 350 trees of depth 4 (1,400 tree levels), which beat a bag of 5 x 40 trees
of depth 7 (the same 1,400) on real trips in both CV splits tried and when trained on one shared
file and scored on the other.
"""

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from taxifare.model.schema import START_FARE
from taxifare.training.ensemble import RANGE_QUANTILES, SHORT_TRIP_KM, FareRegressor
from taxifare.training.transformers import RideFeatures

MONOTONE_FEATURES = ("trip_km", "grid_km")
"""With every other feature fixed, a longer trip never gets a lower fare or range (monotonic constraints), as on
a meter: this is what keeps fares from dipping as a ride nears the edge of the training data (the lines from
Midtown in tests/test_long_trips.py), at 0.01 RMSE on real trips in cross-validation (README, "Long trips")."""
REACH_QUANTILE = 0.995
"""Rides longer than all but the longest 0.5% of training trips (21 km on the shared rides) are never priced
below the same line's fare at that length plus a learned rate per km (taxifare.model.long_trips)."""


DISTANCE_FEATURE = "trip_km"
N_TRIP_MODELS = 1
TRIP_PARAMS = {
    "learning_rate": 0.07,
    "max_iter": 350,
    "max_leaf_nodes": 16,
    "max_depth": 4,
    "min_samples_leaf": 20,
    "max_features": 0.8,
    "early_stopping": False,
}
"""Many small steps of shallow trees: the shape that scored best on real trips for its serving cost."""
N_SHORT_MEMBERS = 5
SHORT_PARAMS = {
    "learning_rate": 0.25,
    "max_iter": 40,
    "max_leaf_nodes": 31,
    "max_depth": 7,
    "min_samples_leaf": 20,
    "max_features": 0.8,
    "early_stopping": False,
}

RANGE_PARAMS = {
    "learning_rate": 0.1,
    "max_iter": 100,
    "max_leaf_nodes": 31,
    "max_depth": 8,
    "min_samples_leaf": 20,
    "early_stopping": False,
}
"""The two quantile models of the fare range (quantile loss learns slower: more, smaller steps)."""


def build_pipeline(random_state: int = 0) -> Pipeline:
    """An unfitted fare pipeline."""
    features = RideFeatures()
    names = list(RideFeatures().fit(None).get_feature_names_out())
    monotone = [int(name in MONOTONE_FEATURES) for name in names]
    regressor = FareRegressor(distance_column=names.index(DISTANCE_FEATURE), short_trip_km=SHORT_TRIP_KM,
                              n_members=N_TRIP_MODELS, reach_quantile=REACH_QUANTILE, n_short_members=N_SHORT_MEMBERS,
                              member=HistGradientBoostingRegressor(**TRIP_PARAMS, monotonic_cst=monotone),
                              short_member=HistGradientBoostingRegressor(**SHORT_PARAMS),
                              range_member=HistGradientBoostingRegressor(**RANGE_PARAMS, monotonic_cst=monotone),
                              range_quantiles=RANGE_QUANTILES, random_state=random_state)
    return FarePipeline([("features", features), ("regressor", regressor)])


class FarePipeline(Pipeline):
    """RideFeatures -> FareRegressor, plus the floors: the start fare, and the long-trip floor, which needs the
    rides and not only their features.

    `predict` and `predict_range` give what the compiled FareModel gives (tests/test_compiled_model.py).
    """

    def predict(self, X: object, **params: object) -> np.ndarray:
        """The fare of each ride (a DataFrame or a dict of columns)."""
        features = self[:-1].transform(X)
        return self._floored(X, features, self[-1].predict(features))

    def predict_range(self, X: object, coverage: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fares, low, high): each ride's fare and a range meant to hold `coverage` percent of real fares."""
        features = self[:-1].transform(X)
        return self[-1].predict_range(features, coverage, self._floored(X, features, self[-1].predict(features)))

    def _floored(self, rides: object, features: np.ndarray, fares: np.ndarray) -> np.ndarray:
        """As FareModel does: no fare below the start fare, none under the long-trip floor."""
        fares = np.maximum(fares, START_FARE)
        long_trips = self[-1].long_trips_
        if long_trips is None:
            return fares
        return long_trips.floored(rides, features, fares, lambda cut: self[-1].predict(self[:-1].transform(cut)))
