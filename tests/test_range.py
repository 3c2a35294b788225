"""The opt-in fare range: calibrated on held-out rides, served in every request shape, off by default."""

import json
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest

from taxifare.model import loading
from taxifare.model.fare_model import range_around
from taxifare.model.schema import START_FARE
from tests.test_api import RIDE, fare_of, query

CALLS = [[RIDE[name] for name in ("pickup_datetime", "pickup_longitude", "pickup_latitude", "dropoff_longitude",
                                  "dropoff_latitude", "passenger_count")]]


def ranged(answer: dict, coverage: int) -> tuple[float, float, float]:
    assert set(answer) == {"fare", "range"} and set(answer["range"]) == {"coverage", "low", "high"}, answer
    assert answer["range"]["coverage"] == coverage
    return answer["fare"], answer["range"]["low"], answer["range"]["high"]


def test_without_range_the_answer_is_the_fare_alone_byte_for_byte(client):
    response = client.get(query())
    assert response.get_data() == (json.dumps({"fare": fare_of(client, query())}) + "\n").encode()


def test_a_get_with_range_adds_a_range_around_the_same_fare(client):
    response = client.get(query(range=80))
    assert response.status_code == 200, response.get_data(as_text=True)
    fare, low, high = ranged(response.get_json(), 80)
    assert fare == fare_of(client, query())
    assert 2.5 <= low < fare < high


def test_wider_coverage_gives_a_wider_range(client, trained_model):
    _, result = trained_model
    coverages = result.metadata["range_coverages"]
    assert coverages == [50, 80, 90, 95]
    widths = []
    for coverage in coverages:
        _, low, high = ranged(client.get(query(range=coverage)).get_json(), coverage)
        widths.append(high - low)
    assert widths == sorted(widths) and widths[0] < widths[-1]


def test_every_shape_can_ask_for_a_range(client):
    single = client.get(query(range=90)).get_json()
    assert client.post("/", json={**RIDE, "range": 90}).get_json() == single
    assert client.post("/", data=urlencode({**RIDE, "range": 90}),
                       content_type="application/x-www-form-urlencoded").get_json() == single
    predictions = client.post("/", json={"instances": [RIDE, RIDE], "parameters": {"range": 90}}).get_json()
    assert predictions == {"predictions": [single, single]}
    replies = client.post("/", json={"calls": CALLS, "userDefinedContext": {"range": "90"}}).get_json()
    assert replies == {"replies": [single]}


OFFERED = "this model offers 50, 80, 90, 95"


@pytest.mark.parametrize(("value", "reason"), [
    ("70", f"no 70% range: {OFFERED}"), ("1", f"no 1% range: {OFFERED}"), ("99", f"no 99% range: {OFFERED}"),
    ("abc", 'a coverage in percent, such as 80; got "abc"'), ("100", "a coverage in percent, such as 80; got 100"),
    ("0", "a coverage in percent, such as 80; got 0"),
    ("\u00b2", 'a coverage in percent, such as 80; got "\u00b2"'),  # a digit int() refuses
])
def test_a_range_the_model_does_not_offer_is_a_400_naming_it(client, value, reason):
    """1 to 99 are coverages a model could offer (it names those it does); anything else is not a coverage."""
    response = client.get(query(range=value))
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid range", "details": {"range": reason}}


def test_a_json_range_must_be_a_number_not_a_boolean(client):
    response = client.post("/", json={**RIDE, "range": True})
    assert response.status_code == 400 and "range" in response.get_json()["details"]


def test_a_model_without_ranges_says_it_offers_none(monkeypatch, tmp_path, model_path):
    import dataclasses

    from tests.conftest import make_client

    bare = dataclasses.replace(loading.loads(Path(model_path).read_bytes()), fare_range=None)
    (tmp_path / "model.joblib").write_bytes(loading.dumps(bare))
    response = make_client(monkeypatch, str(tmp_path / "model.joblib")).get(query(range=80))
    assert (response.status_code, response.get_json()) == (
        400, {"error": "invalid range", "details": {"range": "no 80% range: this model offers none"}})


def test_bigquery_gets_a_range_error_as_an_error_message(client):
    response = client.post("/", json={"calls": CALLS, "userDefinedContext": {"range": "70"}})
    assert response.status_code == 400 and "range" in response.get_json()["errorMessage"]


def test_range_around_widens_clamps_at_the_start_fare_and_always_holds_the_fare():
    low, high = np.array([1.0, 5.0, 10.0, 4.0]), np.array([3.0, 8.0, 11.0, 5.0])
    fares = np.array([2.6, 6.0, 8.0, 7.0])
    widened_low, widened_high = range_around(low, high, fares, 1.0, START_FARE)
    # 0 -> the start fare; 4 as is; 9 above its fare -> the fare; 3 as is
    np.testing.assert_array_equal(widened_low, [START_FARE, 4.0, 8.0, 3.0])
    # 4 as is; 9 as is; 12 as is; 6 below its fare -> the fare
    np.testing.assert_array_equal(widened_high, [4.0, 9.0, 12.0, 7.0])
    narrowed_low, narrowed_high = range_around(low, high, fares, -0.5, START_FARE)  # a margin may be negative
    np.testing.assert_array_equal(narrowed_low, [START_FARE, 5.5, 8.0, 4.5])
    np.testing.assert_array_equal(narrowed_high, [2.6, 7.5, 10.5, 7.0])


@pytest.fixture(scope="module")
def model(model_path):
    return loading.loads(Path(model_path).read_bytes())


def test_every_range_on_every_shared_ride_holds_its_fare_and_never_goes_below_the_start_fare(model, valid_rides):
    """README's promise, on 20,000 real rides; the clamps are needed there (checked), so the test can fail."""
    rides = valid_rides.drop(columns=["key", "fare_amount"])
    for coverage in model.range_coverages:
        fares, low, high = model.predict_range(rides, coverage)
        assert (low >= START_FARE).all() and (low <= fares).all() and (fares <= high).all(), coverage
        np.testing.assert_array_equal(fares, model.predict(rides))
    X = model.features.compute(rides)
    fares = model.predict(rides)
    unclamped_low = model.fare_range.low.predict(X) - model.fare_range.margins[95]
    unclamped_high = model.fare_range.high.predict(X) + model.fare_range.margins[50]
    assert (unclamped_low < START_FARE).sum() > 1_000 and (unclamped_high < fares).sum() > 1_000


def test_the_held_out_coverage_is_close_to_what_each_range_promises(trained_model):
    _, result = trained_model
    ranges = result.metadata["metrics"]["ranges"]
    for coverage, measured in ranges.items():
        assert abs(measured["coverage"] - int(coverage) / 100) < 0.05, ranges
    assert ranges["80"]["mean_width"] < ranges["95"]["mean_width"]


# --- a range is honoured wherever a caller puts it, or refused saying where it goes: never ignored ----------

def option_places(option: str, value: object, text: str) -> dict[str, tuple[str, str, object]]:
    """(how, path, body) of a request giving the option in each place a caller might put it: as a JSON value
    `value`, or as `text` in a query string, a form or BigQuery's userDefinedContext (which holds strings)."""
    given = {**RIDE, option: value}
    return {
        "query string": ("get", "/predict?" + urlencode({**RIDE, option: text}), None),
        "form": ("form", "/", urlencode({**RIDE, option: text})),
        "JSON ride": ("json", "/", given),
        "JSON ride, parameters": ("json", "/", {**RIDE, "parameters": {option: value}}),
        "JSON ride, query string": ("json", f"/?{option}={text}", RIDE),
        "form, query string": ("form", f"/predict?{option}={text}", urlencode(RIDE)),
        "batch, parameters": ("json", "/", {"instances": [RIDE, RIDE], "parameters": {option: value}}),
        "batch, top level": ("json", "/", {"instances": [RIDE, RIDE], option: value}),
        "batch, every instance": ("json", "/", {"instances": [given, given]}),
        "batch, some instances": ("json", "/", {"instances": [RIDE, given]}),
        "batch, an instance's parameters": ("json", "/", {"instances": [RIDE, {**RIDE, "parameters": {option: value}}]}),
        "batch, everywhere alike": ("json", "/", {"instances": [given, RIDE], option: value,
                                                  "parameters": {option: value}}),
        "batch, query string": ("json", f"/predict?{option}={text}", {"instances": [RIDE, RIDE]}),
        "KServe path, parameters": ("json", "/v1/models/taxifare:predict",
                                    {"instances": [RIDE], "parameters": {option: value}}),
        "KServe path, top level": ("json", "/v1/models/taxifare:predict", {"instances": [RIDE], option: value}),
        "KServe path, instance": ("json", "/v1/models/taxifare:predict", {"instances": [given]}),
        "KServe path, query string": ("json", f"/v1/models/taxifare:predict?{option}={text}", {"instances": [RIDE]}),
        "BigQuery context": ("json", "/", {"calls": CALLS, "userDefinedContext": {option: text}}),
        "BigQuery, query string": ("json", f"/?{option}={text}", {"calls": CALLS}),
        "BigQuery, top level": ("json", "/", {"calls": CALLS, option: value}),
        "BigQuery, parameters": ("json", "/", {"calls": CALLS, "parameters": {option: value}}),
        "BigQuery, a seventh value": ("json", "/", {"calls": [[*CALLS[0], value]]}),
    }


RANGE_PLACES = option_places("range", 80, "80")
WHERE_IT_GOES = {
    "BigQuery, top level": {"errorMessage": "range in the wrong place: range: BigQuery calls take the range in "
                                            "userDefinedContext.range (the remote function's user_defined_context)"},
    "BigQuery, parameters": {"errorMessage": "range in the wrong place: parameters.range: BigQuery calls take the "
                                             "range in userDefinedContext.range (the remote function's "
                                             "user_defined_context)"},
    "BigQuery, a seventh value": {"errorMessage": "malformed calls: 1 row refused: calls[0]: expected an array of 6 "
                                                  "values (pickup_datetime, pickup_longitude, pickup_latitude, "
                                                  "dropoff_longitude, dropoff_latitude, passenger_count)"},
}


def send(client, how: str, path: str, body: object):
    if how == "get":
        return client.get(path)
    if how == "form":
        return client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    return client.post(path, json=body)


@pytest.mark.parametrize("place", RANGE_PLACES)
def test_a_range_anywhere_a_caller_puts_it_is_honoured_or_refused_saying_where_it_goes(client, place):
    response = send(client, *RANGE_PLACES[place])
    single = client.get(query(range=80)).get_json()
    if place in WHERE_IT_GOES:
        assert (response.status_code, response.get_json()) == (400, WHERE_IT_GOES[place])
        return
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    answers = [answer] if "fare" in answer else next(iter(answer.values()))
    assert answers == [single] * len(answers)  # every ride, the batch's whole length, has the 80% range


@pytest.mark.parametrize(("how", "path", "body", "details"), [
    ("json", "/", {"instances": [RIDE, {**RIDE, "range": 90}], "parameters": {"range": 80}},
     {"instances[1].range": "90, but parameters.range is 80: a request has one range; give it once, in "
                            "parameters.range"}),
    ("json", "/", {"instances": [{**RIDE, "range": 80}, {**RIDE, "range": 90}]},
     {"instances[1].range": "90, but instances[0].range is 80: a request has one range; give it once, in "
                            "parameters.range"}),
    ("json", "/", {"instances": [RIDE], "range": 90, "parameters": {"range": 80}},
     {"parameters.range": "80, but range is 90: a request has one range; give it once, in parameters.range"}),
    ("json", "/?range=80", {**RIDE, "range": 90},
     {"range": "90, but ?range is 80: a request has one range; give it once, in range (or parameters.range)"}),
    ("json", "/", {**RIDE, "range": 90, "parameters": {"range": 80}},
     {"parameters.range": "80, but range is 90: a request has one range; give it once, in range (or "
                          "parameters.range)"}),
    ("form", "/?range=80", urlencode({**RIDE, "range": 90}),
     {"range": "90, but ?range is 80: a request has one range; give it once, in range (or parameters.range)"}),
])
def test_ranges_that_disagree_are_refused_naming_both_places(client, how, path, body, details):
    response = send(client, how, path, body)
    assert (response.status_code, response.get_json()) == (400, {"error": "conflicting ranges", "details": details})


def test_bigquery_ranges_that_disagree_are_refused_naming_both_places(client):
    response = client.post("/?range=80", json={"calls": CALLS, "userDefinedContext": {"range": "90"}})
    assert response.get_json() == {"errorMessage": "conflicting ranges: userDefinedContext.range: 90, but ?range is "
                                                   "80: a request has one range; give it once, in "
                                                   "userDefinedContext.range"}


@pytest.mark.parametrize(("body", "key", "reason"), [
    ({"instances": [RIDE], "rnage": 80}, "rnage",
     "unknown (did you mean range?): a batch takes only instances, parameters, range, explain"),
    ({"instances": [RIDE], "paramters": {"range": 80}}, "paramters",
     "unknown (did you mean parameters?): a batch takes only instances, parameters, range, explain"),
    ({"instances": [RIDE], "signature_name": "serving_default"}, "signature_name",
     "unknown: a batch takes only instances, parameters, range, explain"),
    ({"instances": [RIDE], "parameters": {"Range": 80}}, "parameters.Range",
     "unknown (did you mean range?): parameters takes only range, explain"),
    ({"instances": [RIDE], "parameters": {"seed": 1}}, "parameters.seed",
     "unknown: parameters takes only range, explain"),
    ({**RIDE, "parameters": {"rang": 80}}, "parameters.rang",
     "unknown (did you mean range?): parameters takes only range, explain"),
    ({"instances": [{**RIDE, "parameters": {"x": 1}}]}, "instances[0].parameters.x",
     "unknown: instances[0].parameters takes only range, explain"),
])
def test_unknown_options_are_refused_naming_the_key(client, body, key, reason):
    response = client.post("/", json=body)
    assert response.status_code == 400
    assert response.get_json()["details"] == {key: reason}


def test_unknown_keys_in_the_bigquery_context_are_refused_but_not_beside_calls(client):
    response = client.post("/", json={"calls": CALLS, "userDefinedContext": {"rnage": "80"}})
    assert response.get_json() == {"errorMessage": "unknown keys in userDefinedContext: userDefinedContext.rnage: "
                                                   "unknown (did you mean range?): userDefinedContext takes only range, "
                                                   "explain"}
    google_may_add = {"requestId": "r", "caller": "c", "sessionUser": "s", "someFieldGoogleAddsLater": {"a": 1}}
    replies = client.post("/", json={"calls": CALLS, **google_may_add}).get_json()
    assert replies == {"replies": [fare_of(client, query())]}


@pytest.mark.parametrize("holder", [80, "80", [80], None])
def test_options_must_be_an_object(client, holder):
    response = client.post("/", json={"instances": [RIDE], "parameters": holder})
    if holder is None:  # JSON null: no options
        assert response.get_json() == {"predictions": [fare_of(client, query())]}
        return
    assert response.status_code == 400
    assert response.get_json()["details"]["parameters"].endswith('; expected e.g. {"range": 80}')


def test_a_coverage_the_model_was_not_calibrated_for_is_refused_naming_those_it_was(model, valid_rides):
    import dataclasses

    rides = valid_rides.head(2).drop(columns=["key", "fare_amount"])
    with pytest.raises(ValueError) as refused:
        model.predict_range(rides, 70)
    assert str(refused.value) == "no 70% range: this model has [50, 80, 90, 95]"
    with pytest.raises(ValueError) as none:
        dataclasses.replace(model, fare_range=None).predict_range(rides, 80)
    assert str(none.value) == "no 80% range: this model has none"
