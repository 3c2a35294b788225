"""FareRegressor's bags: a bag of one learns from every trip, a bigger bag from bootstrap samples."""

import math

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from taxifare.training.compile import compile_range
from taxifare.training.ensemble import FareRegressor, calibration_rides_needed, conformal_margin


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


# --- the conformal margin: a coverage too few held-out rides cannot promise is never offered narrower ----

@pytest.mark.parametrize(("n", "coverage", "rank"), [(100, 0.8, 81), (99, 0.8, 80), (19, 0.95, 19), (39, 0.95, 38),
                                                     (4, 0.5, 3), (1, 0.5, 1)])
def test_the_margin_is_the_conformal_rank_of_the_scores(n, coverage, rank):
    scores = np.random.default_rng(n).permutation(np.arange(1.0, n + 1))  # the k-th smallest is k
    assert conformal_margin(scores, coverage) == rank


@pytest.mark.parametrize(("n", "coverage"), [(0, 0.5), (0, 0.95), (18, 0.95), (8, 0.9), (3, 0.8), (1, 0.8)])
def test_too_few_scores_give_an_unbounded_margin_not_a_narrower_one(n, coverage):
    assert conformal_margin(np.arange(float(n)), coverage) == math.inf


@pytest.mark.parametrize(("coverage", "needed"), [(0.5, 1), (0.8, 4), (0.9, 9), (0.95, 19), (0.99, 99)])
def test_calibration_rides_needed_is_the_first_n_with_a_finite_margin(coverage, needed):
    assert calibration_rides_needed(coverage) == needed
    assert conformal_margin(np.zeros(needed), coverage) == 0
    assert conformal_margin(np.zeros(needed - 1), coverage) == math.inf


def test_a_small_calibration_set_offers_only_the_coverages_it_can_promise():
    """40 rides, a quarter held out (~10): 50%, 80% and 90% are calibrated, 95% (19 rides) is refused, said so."""
    X = np.column_stack([np.linspace(1, 20, 40), np.random.default_rng(1).random(40)])
    y = 3 + 2 * X[:, 0]
    member = HistGradientBoostingRegressor(max_iter=5)
    model = FareRegressor(short_trip_km=0.0, n_members=1, member=member, range_member=member, random_state=3).fit(X, y)
    assert sorted(model.range_margins_) == [50, 80, 90]
    assert model.range_uncalibrated_ == {95: 19}
    assert all(math.isfinite(margin) for margin in model.range_margins_.values())
    with pytest.raises(KeyError):
        model.predict_range(X, 95)
    compiled = compile_range(model)
    assert sorted(compiled.margins) == [50, 80, 90]


def test_no_calibration_ride_means_no_range_rather_than_an_error():
    X = np.column_stack([np.linspace(1, 20, 40), np.zeros(40)])
    member = HistGradientBoostingRegressor(max_iter=5)
    model = FareRegressor(short_trip_km=0.0, n_members=1, member=member, range_member=member,
                          calibration_fraction=0.0).fit(X, 3 + X[:, 0])
    assert model.range_margins_ == {} and model.range_uncalibrated_ == {50: 1, 80: 4, 90: 9, 95: 19}
    assert compile_range(model) is None
