"""Why a fare: exact per-ride breakdowns (explain), checked against the shap package, in every request shape.

The model layer's contributions (path-dependent TreeSHAP over the compiled trees) must equal shap's
TreeExplainer on the fitted scikit-learn members to 1e-6, add up to the model's own fare to 1e-9,
give nothing to a feature the ride's trees never split on, and round to cents that add up to the fare
shown. The API gives them wherever a range can be asked for, and nothing changes without explain.
"""

import json
import pickle
import subprocess
import sys
from urllib.parse import urlencode

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taxifare.model.breakdown import BASE, PARTS, FareExplanation, split_cents
from taxifare.model.features import GROUPS, RideFeatureMap
from taxifare.model.loading import loads
from taxifare.model.schema import START_FARE
from taxifare.model.tree_shap import leaf_paths
from taxifare.model.trees import TreeEnsemble, TreeNodes
from taxifare.training.artifacts import PIPELINE_FILE, load_pipeline
from tests.conftest import REPO
from tests.test_api import RIDE, fare_of, query
from tests.test_long_trips import ride_along
from tests.test_range import CALLS, option_places, send

ADDITIVITY = 1e-9
AGREEMENT = 1e-6
TRIP_STRIDE = 8


@pytest.fixture(scope="module")
def model(model_path):
    return loads(open(model_path, "rb").read())


@pytest.fixture(scope="module")
def pipeline(trained_model):
    out, _ = trained_model
    return load_pipeline((out / PIPELINE_FILE).read_bytes())


@pytest.fixture(scope="module")
def shared_rides(raw_rides):
    """Every shared ride that has numbers (out-of-area ones included: the trees price them all)."""
    return raw_rides.dropna().drop(columns="fare_amount").reset_index(drop=True)


@pytest.fixture(scope="module")
def explained(model, shared_rides):
    return model.explain(shared_rides)


# --- the groups live beside the feature maths: no feature without one ------------------------------------


def test_every_feature_has_exactly_one_known_group_and_every_group_is_used(model):
    names, groups = model.feature_names(), model.features.groups()
    assert len(groups) == len(names) == len(set(names))
    assert set(groups) == set(GROUPS)  # no feature outside the rider's groups, no empty group
    assert model.features.names() == names
    by_name = dict(zip(names, groups, strict=True))
    assert by_name["trip_km"] == by_name["grid_km"] == "distance"
    assert by_name["pickup_to_jfk_km"] == "pickup place" and by_name["dropoff_to_jfk_km"] == "dropoff place"
    assert by_name["hour"] == "time of day" and by_name["weekday"] == "day of week"
    assert by_name["year"] == by_name["after_rate_change"] == "date" and by_name["passenger_count"] == "passengers"


def test_a_feature_map_with_a_new_landmark_still_groups_every_column():
    features = RideFeatureMap.build(landmarks={"jfk": (-73.78, 40.64), "ferry": (-74.01, 40.70)})
    assert len(features.groups()) == len(features.names()) == features.compute(RIDE_COLUMNS).shape[1]
    assert dict(zip(features.names(), features.groups(), strict=True))["dropoff_to_ferry_km"] == "dropoff place"


RIDE_COLUMNS = {"pickup_datetime": np.array([np.datetime64("2013-07-06T21:18:00", "s")]),
                "pickup_longitude": np.array([-73.950655]), "pickup_latitude": np.array([40.783282]),
                "dropoff_longitude": np.array([-73.984365]), "dropoff_latitude": np.array([40.769802]),
                "passenger_count": np.array([1])}


# --- exact: shap agrees, the parts add up to the model's own fare ------------------------------------------


def test_contributions_equal_shaps_tree_explainer_on_every_short_ride_and_every_eighth_trip(model, pipeline,
                                                                                            shared_rides):
    """Each segment's ensemble (a bag of scikit-learn models, weighted) against shap on its members, on the rides
    that segment prices; the base against shap's expected value. Every eighth trip (~2,500 rides) reaches the trees'
    paths as all 20,000 do, at an eighth of shap's time; base plus contributions is checked on them all below."""
    import shap  # the reference implementation (requirements-dev.txt); imported here: it loads numba
    regressor = pipeline.named_steps["regressor"]
    X = model.features.compute(shared_rides)
    segment = model.segments_of(X)
    bags = ((regressor.short_members_, 1 - regressor.short_shrinkage), (regressor.trip_members_, 1.0))
    for index, (members, weight) in enumerate(bags):
        rows = X[segment == index][::1 if index == 0 else TRIP_STRIDE]
        assert len(rows)
        theirs, expected = np.zeros(rows.shape), 0.0
        for member in members:
            explainer = shap.TreeExplainer(member, feature_perturbation="tree_path_dependent")
            theirs += weight / len(members) * explainer.shap_values(rows, check_additivity=False)
            expected += weight / len(members) * float(np.ravel(explainer.expected_value)[0])
        paths = leaf_paths(model.fares[index])
        np.testing.assert_allclose(paths.contributions(rows), theirs, rtol=0, atol=AGREEMENT)
        if index == 0:
            expected += regressor.short_shrinkage * regressor.short_mean_fare_
        assert paths.expected == pytest.approx(expected, abs=AGREEMENT)


def test_base_plus_contributions_is_the_models_fare_on_every_shared_ride(model, explained, shared_rides):
    np.testing.assert_array_equal(explained.fares, model.predict(shared_rides))
    total = explained.base + explained.contributions.sum(axis=1)
    assert np.abs(total - explained.fares).max() <= ADDITIVITY
    by_group = explained.base + explained.by_group().sum(axis=1)
    assert np.abs(by_group - explained.fares).max() <= ADDITIVITY


def test_the_cents_add_up_to_the_fare_shown_and_no_part_moves_a_cent(explained):
    cents = explained.cents()
    np.testing.assert_array_equal(cents.sum(axis=1), np.rint(explained.fares * 100))
    exact = np.column_stack([explained.base, explained.by_group()]) * 100
    assert np.abs(cents - exact).max() < 1
    first = explained.breakdowns()[0]
    assert tuple(first) == PARTS and first[BASE] == cents[0, 0] / 100


def test_a_split_on_a_later_feature_only_gives_it_the_leaf_minus_the_cover_weighted_mean():
    """Exact TreeSHAP of one split, by hand: the first feature, never split on, gets nothing; the split's feature
    gets the leaf's value minus the mean of the leaves weighed by the training rows that reached them."""
    stump = TreeNodes(feature=np.array([1, 0, 0]), threshold=np.array([0.5, 0.0, 0.0]), left=np.array([1, 0, 0]),
                      right=np.array([2, 0, 0]), is_leaf=np.array([False, True, True]),
                      missing_left=np.array([True, False, False]), value=np.array([0.0, 2.0, 6.0]),
                      cover=np.array([40.0, 30.0, 10.0]), depth=1)
    ensemble = TreeEnsemble.from_trees([stump], baseline=10.0)
    paths = leaf_paths(ensemble)
    assert leaf_paths(ensemble) is paths  # built once per ensemble: explaining a ride does not rebuild the table
    assert paths.expected == 10.0 + (2.0 * 30 + 6.0 * 10) / 40
    rows = np.array([[5.0, 0.0, 7.0], [5.0, 1.0, 7.0], [5.0, np.nan, 7.0]])  # left, right, missing goes left
    np.testing.assert_array_equal(paths.contributions(rows), [[0.0, -1.0, 0.0], [0.0, 3.0, 0.0], [0.0, -1.0, 0.0]])


def test_split_cents_rounds_down_then_gives_the_missing_cents_to_the_largest_remainders():
    parts = np.array([[3.333, 3.333, 3.334], [1.005, 2.007, -0.002], [0.5, 0.5, 0.0]])
    cents = split_cents(parts, np.array([1000, 301, 100]))
    np.testing.assert_array_equal(cents, [[333, 333, 334], [100, 201, 0], [50, 50, 0]])
    np.testing.assert_array_equal(split_cents(np.array([[0.004, 0.004, 0.002]]), np.array([1])), [[1, 0, 0]])
    ties = split_cents(np.full((1, len(PARTS)), 0.005), np.array([4]))  # equal remainders: to the parts listed first
    np.testing.assert_array_equal(ties, [[1, 1, 1, 1] + [0] * (len(PARTS) - 4)])
    half, quarter = 0.015, 0.0125  # 1.5 and 1.25 cents: four halves tie for the 3 cents missing, the first three win
    mixed = np.array([[half, quarter, half, quarter, quarter, half, half, quarter, quarter]])
    np.testing.assert_array_equal(split_cents(mixed, np.array([12])), [[2, 1, 2, 1, 1, 2, 1, 1, 1]])


def test_importance_is_the_mean_absolute_dollars_per_group_most_first_to_the_cent():
    """Training reports it: each group's mean |dollars| over the rides, to the cent, largest first, ties in GROUPS order."""
    groups = ("distance", "distance", "route", "date", "passengers")  # one feature per column; two for distance
    contributions = np.array([[4.0, 1.5, -0.125, 0.3, 0.3], [-2.0, 0.5, 0.125, -0.3, -0.3],
                              [3.0, -1.0, 0.125, 0.3, 0.3]])
    explained = FareExplanation(np.full(3, 10.0), np.full(3, 5.0), contributions, groups)
    importance = explained.importance()
    by_group = {"distance": (5.5 + 1.5 + 2.0) / 3, "route": 0.125, "date": 0.3, "passengers": 0.3}
    expected = sorted(((name, round(by_group.get(name, 0.0), 2)) for name in GROUPS),
                      key=lambda item: -by_group.get(item[0], 0.0))
    assert list(importance.items()) == expected
    assert list(importance)[:4] == ["distance", "date", "passengers", "route"] and importance["route"] == 0.12


def test_a_feature_the_rides_trees_never_split_on_adds_nothing(model, shared_rides, explained):
    X = model.features.compute(shared_rides)
    segment = model.segments_of(X)
    for index, ensemble in enumerate(model.fares):
        internal = ensemble.children[1::2] != np.arange(len(ensemble.value))
        unused = np.setdiff1d(np.arange(X.shape[1]), ensemble.feature[internal])
        assert len(unused)  # the short-ride bag leaves features out; the test must bite
        rows = (segment == index) & (explained.fares == model.fares_of(X))  # floored rides are the cut ride's
        assert rows.any()
        assert np.all(explained.contributions[np.ix_(rows, unused)] == 0)


RIDES = st.fixed_dictionaries({
    "pickup_datetime": st.integers(1_230_768_000, 1_435_708_800).map(lambda s: np.datetime64(s, "s")),
    "pickup_longitude": st.floats(-74.03, -73.75), "pickup_latitude": st.floats(40.60, 40.85),
    "dropoff_longitude": st.floats(-74.03, -73.75), "dropoff_latitude": st.floats(40.60, 40.85),
    "passenger_count": st.integers(1, 6)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rides=st.lists(RIDES, min_size=1, max_size=5))
def test_any_rides_breakdowns_add_up_and_unsplit_features_add_nothing(model, rides):
    columns = {name: np.array([ride[name] for ride in rides]) for name in rides[0]}
    explanation = model.explain(columns)
    np.testing.assert_array_equal(explanation.fares, model.predict(columns))
    assert np.abs(explanation.base + explanation.contributions.sum(axis=1) - explanation.fares).max() <= ADDITIVITY
    np.testing.assert_array_equal(explanation.cents().sum(axis=1), np.rint(explanation.fares * 100))
    X = model.features.compute(columns)
    split_on = set(model.fares[0].feature) | set(model.fares[1].feature)
    for unused in set(range(X.shape[1])) - split_on:
        assert np.all(explanation.contributions[:, unused] == 0)


def test_a_fare_the_long_trip_floor_raised_is_the_cut_ride_plus_the_rest_in_distance(model):
    floor = model.long_trips
    beyond = np.array([2.0, 5.0, 10.0])
    rides = ride_along(90, floor.reach_km + beyond)  # east from Midtown into Queens
    floored = model.predict(rides) > model.fares_of(model.features.compute(rides)) + 1e-6
    assert floored.sum() >= 2, "the floor must set some of these fares"
    explanation = model.explain(rides)
    assert np.abs(explanation.base + explanation.contributions.sum(axis=1) - explanation.fares).max() <= ADDITIVITY
    np.testing.assert_array_equal(explanation.cents().sum(axis=1), np.rint(explanation.fares * 100))
    cut = model.explain(ride_along(90, np.full(3, floor.reach_km)))
    distance = GROUPS.index("distance")
    added = explanation.by_group()[floored] - cut.by_group()[floored]
    np.testing.assert_allclose(added[:, distance], floor.rate * beyond[floored], rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.delete(added, distance, axis=1), 0, atol=1e-9)  # the rest is the cut ride's


def test_a_fare_the_start_fare_raised_is_the_trees_breakdown_plus_the_lift_in_distance(model, shared_rides,
                                                                                        explained):
    X = model.features.compute(shared_rides)
    trees = model.fares_of(X)
    lifted = trees < START_FARE
    assert lifted.any(), "some shared rides must be priced under the start fare by the trees, or this cannot bite"
    np.testing.assert_array_equal(explained.fares[lifted], START_FARE)
    segment = model.segments_of(X)
    for index in np.unique(segment[lifted]):
        rows = lifted & (segment == index)
        own = leaf_paths(model.fares[index]).contributions(X[rows])
        own[:, model.features.groups().index("distance")] += START_FARE - trees[rows]
        np.testing.assert_allclose(explained.contributions[rows], own, rtol=0, atol=ADDITIVITY)


def test_the_node_covers_add_less_than_a_megabyte_to_model_joblib(model):
    ensembles = [*model.fares, model.fare_range.low, model.fare_range.high]
    assert sum(len(pickle.dumps(ensemble.cover)) for ensemble in ensembles) <= 1_000_000


# --- the API: opt-in wherever a range is accepted; without it nothing changes -------------------------------


def breakdown_of(answer: dict) -> dict:
    assert tuple(answer["breakdown"]) == PARTS
    assert round(sum(answer["breakdown"].values()) * 100) == round(answer["fare"] * 100)
    return answer["breakdown"]


EXPLAIN_PLACES = option_places("explain", True, "1")
WRONG_PLACES = ("BigQuery, top level", "BigQuery, parameters", "BigQuery, a seventh value")


@pytest.mark.parametrize("place", [name for name in EXPLAIN_PLACES if name not in WRONG_PLACES])
def test_explain_is_honoured_wherever_a_range_is(client, place):
    how, path, body = EXPLAIN_PLACES[place]
    response = send(client, how, path, body)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    answers = next(iter(answer.values())) if set(answer) <= {"predictions", "replies"} else [answer]
    fare = fare_of(client, query())
    for one in answers:
        assert one["fare"] == fare
        breakdown_of(one)


@pytest.mark.parametrize("place", WRONG_PLACES)
def test_explain_beside_bigquery_calls_is_refused_saying_where_it_goes(client, place):
    how, path, body = EXPLAIN_PLACES[place]
    response = send(client, how, path, body)
    assert response.status_code == 400
    if place != "BigQuery, a seventh value":
        assert "userDefinedContext.explain" in response.get_json()["errorMessage"]


def test_explain_and_range_together(client):
    answer = client.get("/predict?" + urlencode({**RIDE, "explain": "true", "range": 80})).get_json()
    assert set(answer) == {"fare", "range", "breakdown"} and answer["range"]["coverage"] == 80
    assert answer == {**client.get("/predict?" + urlencode({**RIDE, "range": 80})).get_json(),
                      "breakdown": breakdown_of(answer)}
    replies = client.post("/", json={"calls": CALLS, "userDefinedContext": {"range": "80", "explain": "true"}})
    assert replies.get_json()["replies"][0] == answer


@pytest.mark.parametrize("off", ["0", "false", "FALSE", ""])
def test_explain_off_answers_byte_for_byte_as_without_it(client, off):
    plain = client.get(query())
    assert json.loads(plain.data) == {"fare": fare_of(client, query())}
    assert client.get(query() + "&explain=" + off).data == plain.data
    batch = {"instances": [RIDE, RIDE]}
    assert client.post("/", json={**batch, "explain": False}).data == client.post("/", json=batch).data
    calls = {"calls": CALLS}
    assert client.post("/", json={**calls, "userDefinedContext": {"explain": off}}).data \
        == client.post("/", json=calls).data


@pytest.mark.parametrize(("path", "body", "place", "shown"), [
    ("/predict?" + urlencode({**RIDE, "explain": "yes"}), None, "explain", '"yes"'),
    ("/", {**RIDE, "explain": 2}, "explain", "2"),
    ("/", {"instances": [RIDE], "parameters": {"explain": "maybe"}}, "parameters.explain", '"maybe"'),
    ("/", {"calls": CALLS, "userDefinedContext": {"explain": "t"}}, "userDefinedContext.explain", '"t"'),
])
def test_an_unreadable_explain_setting_is_a_400_naming_where(client, path, body, place, shown):
    response = client.get(path) if body is None else client.post(path, json=body)
    assert response.status_code == 400
    reason = f"true or false (or 1 or 0); got {shown}"
    if "calls" in (body or {}):
        assert response.get_json() == {"errorMessage": f"invalid explain setting: {place}: {reason}"}
    else:
        assert response.get_json() == {"error": "invalid explain setting", "details": {place: reason}}


@pytest.mark.parametrize(("number", "setting"), [(1, True), (0, False)])
def test_explain_as_the_json_number_1_or_0_is_true_or_false(client, number, setting):
    assert client.post("/", json={**RIDE, "explain": number}).data == \
        client.post("/", json={**RIDE, "explain": setting}).data


def test_an_empty_option_leaves_the_others_honoured(client):
    """A form's blank range field means no range: the explain setting after it still counts."""
    explained = client.get(query(explain="true")).get_json()
    assert set(explained) == {"fare", "breakdown"}
    assert client.get(query(range="", explain="true")).get_json() == explained


def test_explain_settings_that_disagree_are_refused_naming_both_places(client):
    response = client.post("/?explain=1", json={"instances": [RIDE], "parameters": {"explain": False}})
    assert response.status_code == 400
    assert response.get_json() == {"error": "conflicting explain settings", "details": {
        "parameters.explain": "false, but ?explain is true: a request has one explain setting; give it once, in "
                              "parameters.explain"}}
    bigquery = client.post("/?explain=1", json={"calls": CALLS, "userDefinedContext": {"explain": "0"}})
    assert bigquery.status_code == 400
    assert bigquery.get_json() == {"errorMessage": "conflicting explain settings: userDefinedContext.explain: false, but "
                                   "?explain is true: a request has one explain setting; give it once, in "
                                   "userDefinedContext.explain"}


def test_options_of_a_hand_built_bigquery_call_are_each_said_where_they_go(client):
    response = client.post("/", json={"calls": CALLS, "range": 80, "parameters": {"explain": True}})
    assert response.status_code == 400
    assert response.get_json() == {"errorMessage": (
        "range and explain setting in the wrong place: "
        "range: BigQuery calls take the range in userDefinedContext.range (the remote function's "
        "user_defined_context); "
        "parameters.explain: BigQuery calls take the explain setting in userDefinedContext.explain (the remote "
        "function's user_defined_context)")}


def test_model_shows_what_matters_most_on_the_held_out_rides(client, trained_model):
    importance = client.get("/model").get_json()["importance"]
    assert importance == trained_model[1].metadata["importance"]
    dollars = importance["mean_abs_dollars"]
    assert set(dollars) == set(GROUPS) and list(dollars.values()) == sorted(dollars.values(), reverse=True)
    assert next(iter(dollars)) == "distance" and importance["rides"] > 1000


# --- the CLI --------------------------------------------------------------------------------------------------


def test_taxifare_explain_prints_the_breakdown_the_api_gives(client, model_path, tmp_path):
    ride = urlencode({**RIDE, "pickup_datetime": "2013-07-06 17:18:00"})
    csv = tmp_path / "rides.csv"
    csv.write_text("pickup_datetime,pickup_longitude,pickup_latitude,dropoff_longitude,dropoff_latitude,"
                   "passenger_count\n2013-07-06 21:18:00 UTC,-73.950655,40.783282,-73.984365,40.769802,1\n")
    answer = client.get("/predict?" + urlencode({**RIDE, "explain": 1})).get_json()
    expected = (f"{answer['fare']:.2f}", *(f"{value:+.2f}" if part != BASE else f"{value:.2f}"
                                          for part, value in answer["breakdown"].items()))
    for source in (["--ride", ride], ["--data", str(csv)]):
        run = subprocess.run([sys.executable, "-m", "taxifare", "explain", "--model", model_path, *source],
                             capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
        assert run.returncode == 0, run.stderr
        header, row, *_ = run.stdout.splitlines()
        assert header.split()[2:] == ["base", "distance", "route", "pickup", "place", "dropoff", "place", "time",
                                      "of", "day", "day", "of", "week", "date", "passengers"]
        assert tuple(row.split()[1:]) == expected


def test_taxifare_explain_names_a_bad_ride(model_path):
    run = subprocess.run([sys.executable, "-m", "taxifare", "explain", "--model", model_path, "--ride",
                          "pickup_datetime=2013-07-06 17:18:00&pickup_longitude=x"], capture_output=True, text=True,
                         cwd=REPO, timeout=120, check=False)
    assert run.returncode != 0 and "missing: pickup_latitude" in run.stderr and "Traceback" not in run.stderr
