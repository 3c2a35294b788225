"""The fare model as scikit-learn fits it: ride features, boosted trees for trips, a bag for short rides, a range.

The recipe (model parameters, bag sizes, the short-ride threshold) was chosen by 5-fold
cross-validation on the shared rides (scripts/compare_recipes.py prints the comparison) within the
serving budget: every tree level costs on every request (a batch walks trees x depth levels), so
trips get one model of 350 trees of depth 4 (1,400 tree levels), which beat a bag of 5 x 40 trees
of depth 7 (the same 1,400) on real trips in both CV splits tried and when trained on one shared
file and scored on the other.
"""

from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from taxifare.training.ensemble import FareRegressor
from taxifare.training.transformers import RideFeatures

SHORT_TRIP_KM = 0.1
"""Rides shorter than 100 m (round trips, frozen GPS) are priced by a model of their own."""
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

RANGE_QUANTILES = (0.2, 0.8)
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
    distance = list(RideFeatures().fit(None).get_feature_names_out()).index(DISTANCE_FEATURE)
    regressor = FareRegressor(distance_column=distance, short_trip_km=SHORT_TRIP_KM, n_members=N_TRIP_MODELS,
                              n_short_members=N_SHORT_MEMBERS, member=HistGradientBoostingRegressor(**TRIP_PARAMS),
                              short_member=HistGradientBoostingRegressor(**SHORT_PARAMS),
                              range_member=HistGradientBoostingRegressor(**RANGE_PARAMS),
                              range_quantiles=RANGE_QUANTILES, random_state=random_state)
    return Pipeline([("features", features), ("regressor", regressor)])
