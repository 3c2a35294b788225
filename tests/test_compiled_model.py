"""The compiled numpy model gives the scikit-learn pipeline's fares, to 1e-9, without scikit-learn."""

import dataclasses
import tracemalloc

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from taxifare.model import loading
from taxifare.model.fare_model import FareModel, FareRange
from taxifare.model.loading import MODEL_FILE
from taxifare.model.schema import START_FARE
from taxifare.model.tree_shap import leaf_paths
from taxifare.model.trees import TreeEnsemble
from taxifare.training.artifacts import PIPELINE_FILE, load_pipeline
from taxifare.training.compile import compile_regressor
from taxifare.training.synthetic import generate_rides


@pytest.fixture(scope="module")
def pipeline(trained_model):
    out, _ = trained_model
    return load_pipeline((out / PIPELINE_FILE).read_bytes())


@pytest.fixture(scope="module")
def model(trained_model) -> FareModel:
    out, _ = trained_model
    return loading.loads((out / MODEL_FILE).read_bytes())


def test_compiled_fares_equal_the_pipeline_on_every_shared_ride(model, pipeline, raw_rides):
    # every row that has numbers, valid or not: out-of-area and zero coordinates included
    rides = raw_rides.dropna().drop(columns="fare_amount")
    assert len(rides) > 20_000 - 10
    np.testing.assert_allclose(model.predict(rides), pipeline.predict(rides), rtol=0, atol=1e-9)


def test_compiled_ranges_equal_the_pipeline_on_every_shared_ride(model, pipeline, raw_rides):
    rides = raw_rides.dropna().drop(columns="fare_amount")
    assert model.range_coverages == (50, 80, 90, 95)
    for coverage in model.range_coverages:
        expected = pipeline.predict_range(rides, coverage)
        for compiled, fitted in zip(model.predict_range(rides, coverage), expected, strict=True):
            np.testing.assert_allclose(compiled, fitted, rtol=0, atol=1e-9)


def test_short_rides_and_trips_are_priced_by_their_own_bags(model, valid_rides):
    rides = valid_rides.drop(columns="fare_amount")
    X = model.features.compute(rides)
    short = model.segments_of(X) == 0
    assert 0 < short.sum() < 0.05 * len(rides)
    assert (X[short, model.route_feature] < 0.1).all() and (X[~short, model.route_feature] >= 0.1).all()
    np.testing.assert_allclose(model.predict(rides)[short], model.fares[0].predict(X[short]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("segment", [0, 1])
def test_a_batch_all_in_one_segment_is_priced_as_each_ride_alone(model, valid_rides, segment):
    """The short-trip bag alone (rides that never moved), or the trip bag alone: no segment is assumed present."""
    rides = valid_rides.drop(columns="fare_amount")
    X = model.features.compute(rides)
    rides = rides[model.segments_of(X) == segment].iloc[:5]
    assert len(rides) == 5
    alone = [model.predict(rides.iloc[[row]])[0] for row in range(len(rides))]
    np.testing.assert_allclose(model.predict(rides), alone, rtol=0, atol=1e-9)


def test_compiled_fares_equal_the_pipeline_on_10000_synthetic_rides(model, pipeline):
    rides = generate_rides(10_000, seed=7).drop(columns="fare_amount")
    np.testing.assert_allclose(model.predict(rides), pipeline.predict(rides), rtol=0, atol=1e-9)


def test_one_ride_at_a_time_equals_the_batch(model, valid_rides):
    """One ride takes the all-nodes path, a batch the level walk: the same fares."""
    rides = valid_rides.drop(columns="fare_amount").iloc[:300]
    batch = model.predict(rides)
    alone = [model.predict(rides.iloc[[i]])[0] for i in range(len(rides))]
    np.testing.assert_allclose(alone, batch, rtol=0, atol=1e-9)


def test_a_dict_of_columns_prices_like_a_dataframe(model, valid_rides):
    rides = valid_rides.drop(columns="fare_amount").iloc[:20]
    columns = {name: rides[name].to_numpy() for name in rides.columns if name != "key"}
    columns["pickup_datetime"] = rides["pickup_datetime"].to_numpy(dtype="datetime64[s]")
    np.testing.assert_array_equal(model.predict(columns), model.predict(rides))


def test_large_batches_use_bounded_memory(model, valid_rides):
    rides = valid_rides.drop(columns="fare_amount")
    X = model.features.compute(rides.iloc[np.arange(60_000) % len(rides)])
    tracemalloc.start()
    try:
        model.fares[1].predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 1024 * 1024, f"{peak / 1e6:.1f} MB for 60,000 rows"  # all (tree, row) pairs at once: ~140 MB


def fitted_with_missing_values(seed: int) -> tuple[np.ndarray, HistGradientBoostingRegressor]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3000, 3))
    X[rng.random(X.shape) < 0.2] = np.nan
    y = np.nan_to_num(X[:, 0], nan=3.0) + np.nan_to_num(X[:, 1], nan=-2.0)
    return X, HistGradientBoostingRegressor(max_iter=30, random_state=seed).fit(X, y)


def test_missing_values_follow_the_learned_direction_in_both_strategies():
    X, regressor = fitted_with_missing_values(0)
    ensemble = compile_regressor(regressor)
    np.testing.assert_allclose(ensemble.predict(X), regressor.predict(X), rtol=0, atol=1e-9)  # level walk
    np.testing.assert_allclose(np.concatenate([ensemble.predict(X[i:i + 1]) for i in range(200)]),
                               regressor.predict(X[:200]), rtol=0, atol=1e-9)  # one row: all nodes at once


def test_combined_ensembles_predict_and_explain_the_weighted_sum():
    """A bag of three, unequally weighted: its output and its TreeSHAP contributions are the weighted sums."""
    fitted = [fitted_with_missing_values(seed) for seed in (1, 2, 3)]
    X, weights = fitted[0][0], (0.2, 0.3, 0.5)
    parts = [compile_regressor(regressor) for _, regressor in fitted]
    bag = TreeEnsemble.combine(list(zip(parts, weights, strict=True)))
    bag.check(X.shape[1])
    assert bag.n_trees == sum(regressor.n_iter_ for _, regressor in fitted)
    expected = sum(weight * regressor.predict(X) for (_, regressor), weight in zip(fitted, weights, strict=True))
    np.testing.assert_allclose(bag.predict(X), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(bag.predict(X[:1]), expected[:1], rtol=0, atol=1e-9)
    contributions = sum(weight * leaf_paths(part).contributions(X) for part, weight in zip(parts, weights, strict=True))
    np.testing.assert_allclose(leaf_paths(bag).contributions(X), contributions, rtol=0, atol=1e-9)
    paths = leaf_paths(bag)  # missing values included: expected output plus contributions is the output
    np.testing.assert_allclose(paths.expected + paths.contributions(X).sum(axis=1), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: {"features": "features"}, "features must be a RideFeatureMap"),
    (lambda m: {"fares": ()}, "fares must be a non-empty tuple of TreeEnsemble"),
    (lambda m: {"fares": list(m.fares)}, "fares must be a non-empty tuple of TreeEnsemble"),
    (lambda m: {"fares": (*m.fares[:-1], "trees")}, "fares must be a non-empty tuple of TreeEnsemble"),
    (lambda m: {"segment_names": m.segment_names[:-1]}, "segment_names must name each fare ensemble"),
    (lambda m: {"segment_names": list(m.segment_names)}, "segment_names must name each fare ensemble"),
    (lambda m: {"route_edges": m.route_edges[:-1]}, "route_edges must be sorted, one fewer than the segments"),
    (lambda m: {"fares": (*m.fares, m.fares[0]), "segment_names": (*m.segment_names, "again"),
                "route_edges": np.append(m.route_edges, m.route_edges[-1])},
     "route_edges must be sorted, one fewer than the segments"),  # two equal edges: a segment no ride reaches
    (lambda m: {"route_edges": m.route_edges.astype(np.float32)}, "route_edges must be a 1-d float64 array"),
    (lambda m: {"route_feature": float(m.route_feature)}, "route_feature must be an int"),
    (lambda m: {"route_feature": len(m.feature_names())},
     lambda m: f"route_feature has indices outside 0..{len(m.feature_names()) - 1}"),
    (lambda m: {"fare_range": "range"}, "fare_range must be a FareRange"),
    (lambda m: {"long_trips": "floor"}, "long_trips must be a LongTrips"),
    (lambda m: {"service_area": "area"}, "service_area must be a ServiceArea"),
], ids=["features", "no-fares", "fares-list", "fares-not-trees", "names-short", "names-list", "edges-short",
        "edges-equal", "edges-float32", "route-feature-float", "route-feature-past-the-end", "fare-range", "long-trips", "service-area"])
def test_a_malformed_model_is_refused_naming_the_part(model, change, message):
    with pytest.raises(ValueError) as refused:
        dataclasses.replace(model, **change(model)).check()
    assert str(refused.value) == (message(model) if callable(message) else message)


def test_route_edges_closer_than_one_pass_the_check(model):
    edges = np.append(model.route_edges, model.route_edges[-1] + 0.5)
    dataclasses.replace(model, fares=(*model.fares, model.fares[0]), segment_names=(*model.segment_names, "near"),
                        route_edges=edges).check()


MARGINS_MESSAGE = "range margins must map coverages (1-99) to finite dollars"


@pytest.mark.parametrize(("margins", "min_fare", "message"), [
    ({1: 0.5, 99: 4.0}, 2.5, None),  # the extreme coverages pass
    ({}, 2.5, MARGINS_MESSAGE), ({0: 0.5}, 2.5, MARGINS_MESSAGE), ({100: 0.5}, 2.5, MARGINS_MESSAGE),
    ({80.0: 0.5}, 2.5, MARGINS_MESSAGE), ({80: 1}, 2.5, MARGINS_MESSAGE), ({80: float("nan")}, 2.5, MARGINS_MESSAGE),
    ({80: float("inf")}, 2.5, MARGINS_MESSAGE), ({50: 0.5, 80: float("nan")}, 2.5, MARGINS_MESSAGE),
    ({80: 0.5}, 2, "min_fare must be a float"),
], ids=["1-and-99", "none", "0", "100", "float-coverage", "int-margin", "nan", "inf", "one-bad", "int-min-fare"])
def test_a_fare_range_is_checked_coverage_by_coverage(model, margins, min_fare, message):
    fare_range = FareRange(model.fare_range.low, model.fare_range.high, margins, min_fare)
    if message is None:
        fare_range.check(len(model.feature_names()))
        return
    with pytest.raises(ValueError) as refused:
        fare_range.check(len(model.feature_names()))
    assert str(refused.value) == message


def test_a_fare_range_without_two_ensembles_is_refused_saying_so(model):
    broken = FareRange(model.fare_range.low, "not trees", dict(model.fare_range.margins), model.fare_range.min_fare)
    with pytest.raises(ValueError) as refused:
        broken.check(len(model.feature_names()))
    assert str(refused.value) == "a fare range needs two TreeEnsembles"


LENGTHS = "tree arrays differ in length"
COVER = "cover must count at least one training row at every node"
DEPTH = "depth must be an int from 0 to 64 and baseline a float"
MALFORMED_TREES = {  # a change to the model's first ensemble -> its refusal, word for word
    "value float32": (lambda e: {"value": e.value.astype(np.float32)}, "value must be a 1-d float64 array"),
    "roots int32": (lambda e: {"roots": e.roots.astype(np.int32)}, "roots must be a 1-d int64 array"),
    "feature 2-d": (lambda e: {"feature": e.feature[:, None]}, "feature must be a 1-d int64 array"),
    "children float": (lambda e: {"children": e.children.astype(float)}, "children must be a 1-d int64 array"),
    "threshold float32": (lambda e: {"threshold": e.threshold.astype(np.float32)},
                          "threshold must be a 1-d float64 array"),
    "missing_left int": (lambda e: {"missing_left": e.missing_left.astype(np.intp)},
                         "missing_left must be a 1-d bool array"),
    "cover a list": (lambda e: {"cover": list(e.cover)}, "cover must be a 1-d float64 array"),
    "feature short": (lambda e: {"feature": e.feature[:-1]}, LENGTHS),
    "threshold short": (lambda e: {"threshold": e.threshold[:-1]}, LENGTHS),
    "missing_left short": (lambda e: {"missing_left": e.missing_left[:-1]}, LENGTHS),
    "cover short": (lambda e: {"cover": e.cover[:-1]}, LENGTHS),
    "children short": (lambda e: {"children": e.children[:-1]}, LENGTHS),
    "no roots": (lambda e: {"roots": e.roots[:0]}, LENGTHS),
    "a zero cover": (lambda e: {"cover": np.where(np.arange(len(e.cover)) == 3, 0.0, e.cover)}, COVER),
    "a NaN cover": (lambda e: {"cover": np.where(np.arange(len(e.cover)) == 3, np.nan, e.cover)}, COVER),
    "an infinite cover": (lambda e: {"cover": np.where(np.arange(len(e.cover)) == 3, np.inf, e.cover)}, COVER),
    "a root past the end": (lambda e: {"roots": np.append(e.roots[1:], len(e.value))},
                            lambda e, n: f"roots has indices outside 0..{len(e.value) - 1}"),
    "a negative child": (lambda e: {"children": np.where(np.arange(len(e.children)) == 0, -1, e.children)},
                         lambda e, n: f"children has indices outside 0..{len(e.value) - 1}"),
    "a feature past the end": (lambda e: {"feature": np.where(np.arange(len(e.feature)) == 0, 10**6, e.feature)},
                               lambda e, n: f"feature has indices outside 0..{n - 1}"),
    "a negative depth": (lambda e: {"depth": -1}, DEPTH),
    "depth 65": (lambda e: {"depth": 65}, DEPTH),
    "a float depth": (lambda e: {"depth": float(e.depth)}, DEPTH),
    "an int baseline": (lambda e: {"baseline": 11}, DEPTH),
}


@pytest.mark.parametrize("malformed", MALFORMED_TREES)
def test_a_malformed_ensemble_is_refused_saying_what_is_wrong(model, malformed):
    """A model file's trees are checked at load, before any walk trusts their indices: each flaw has its own refusal."""
    change, message = MALFORMED_TREES[malformed]
    ensemble, n_features = model.fares[0], len(model.feature_names())
    with pytest.raises(ValueError) as refused:
        dataclasses.replace(ensemble, **change(ensemble)).check(n_features)
    assert str(refused.value) == (message(ensemble, n_features) if callable(message) else message)


@pytest.mark.parametrize("depth", [0, 64])
def test_depths_from_0_to_64_pass_the_check(model, depth):
    dataclasses.replace(model.fares[0], depth=depth).check(len(model.feature_names()))


def test_a_node_one_training_row_reached_passes_the_check(model):
    ensemble = model.fares[0]
    one_row = np.where(np.arange(len(ensemble.cover)) == 3, 1.0, ensemble.cover)
    dataclasses.replace(ensemble, cover=one_row).check(len(model.feature_names()))


def test_rides_are_priced_by_the_segment_their_route_feature_falls_in(model, valid_rides):
    rides = valid_rides.drop(columns="fare_amount").iloc[:400]
    ensemble = model.fares[1]
    plus_ten = dataclasses.replace(ensemble, baseline=ensemble.baseline + 10)
    distance = model.feature_names().index("trip_km")
    routed = FareModel(model.features, ("short", "long"), (ensemble, plus_ten), distance, np.array([2.0]))
    routed.check()
    X = model.features.compute(rides)
    long = X[:, distance] >= 2.0
    assert 0 < long.sum() < len(rides)
    by_segment = ensemble.predict(X) + np.where(long, 10, 0)
    np.testing.assert_allclose(routed.fares_of(X), by_segment, rtol=0, atol=1e-9)
    np.testing.assert_allclose(routed.predict(rides), np.maximum(by_segment, START_FARE), rtol=0, atol=1e-9)
    assert (by_segment < START_FARE).any()  # one of these rides needs the start-fare floor


def test_a_single_ensemble_model_prices_every_ride_with_it_and_offers_no_range(model, valid_rides):
    """What compile_pipeline makes of a lone boosted-tree regressor: one ensemble, no range, the area kept."""
    rides = valid_rides.drop(columns="fare_amount").iloc[:400]
    ensemble = model.fares[1]
    single = FareModel.single(model.features, ensemble, model.service_area)
    single.check()
    expected = np.maximum(ensemble.predict(model.features.compute(rides)), START_FARE)
    np.testing.assert_allclose(single.predict(rides), expected, rtol=0, atol=1e-9)
    assert single.segment_names == ("all rides",) and single.range_coverages == ()
    explained = single.explain(rides)  # a breakdown too: base plus contributions, to the fare
    np.testing.assert_array_equal(explained.fares, single.predict(rides))
    np.testing.assert_allclose(explained.base + explained.contributions.sum(axis=1), explained.fares, rtol=0, atol=1e-9)
    assert single.service_area is model.service_area and single.long_trips is None
    assert FareModel.single(model.features, ensemble).service_area is None


def test_non_identity_links_are_refused():
    X = np.random.default_rng(0).random((200, 3))
    regressor = HistGradientBoostingRegressor(max_iter=3, loss="poisson").fit(X, X[:, 0] + 1)
    with pytest.raises(ValueError, match="identity-link"):
        compile_regressor(regressor)


def test_categorical_models_are_refused():
    X = np.column_stack([np.arange(100) % 4, np.arange(100)]).astype(float)
    regressor = HistGradientBoostingRegressor(max_iter=3, categorical_features=[0]).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="categorical"):
        compile_regressor(regressor)
