"""FareRegressor's bags: a bag of one learns from every trip, a bigger bag from bootstrap samples."""

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from taxifare.training.ensemble import FareRegressor


def fit_trips(n_members: int) -> tuple[FareRegressor, np.ndarray, np.ndarray]:
    """A regressor fit on 60 distinct trips whose fares a deep enough model can memorise."""
    rng = np.random.default_rng(0)
    X = np.column_stack([np.linspace(1, 20, 60), rng.permutation(60)])  # column 0: trip km, all real trips
    y = 3 + 2 * X[:, 0] + (X[:, 1] % 7)
    member = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.5, min_samples_leaf=1, max_leaf_nodes=64,
                                           early_stopping=False)
    model = FareRegressor(distance_column=0, short_trip_km=0.1, n_members=n_members, n_short_members=1,
                          member=member, range_quantiles=None).fit(X, y)
    return model, X, y


def test_a_bag_of_one_is_fit_on_every_trip_not_a_bootstrap_sample():
    model, X, y = fit_trips(n_members=1)
    assert np.abs(model.predict(X) - y).max() < 0.01  # it saw every ride


def test_bag_members_see_bootstrap_samples_so_each_misses_rides():
    model, X, y = fit_trips(n_members=3)
    misses = [np.abs(member.predict(X) - y).max() for member in model.trip_members_]
    assert min(misses) > 0.5  # each member left out about a third of the rides
