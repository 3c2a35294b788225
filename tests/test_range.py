"""The opt-in fare range: calibrated on held-out rides, served in every request shape, off by default."""

import json
from urllib.parse import urlencode

import pytest

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


@pytest.mark.parametrize(("value", "reason"), [("70", "this model offers 50, 80, 90, 95"), ("abc", "a coverage in percent"),
                                               ("100", "a coverage in percent"), ("0", "a coverage in percent"),
                                               ("\u00b2", "a coverage in percent")])  # a digit int() refuses
def test_a_range_the_model_does_not_offer_is_a_400_naming_it(client, value, reason):
    response = client.get(query(range=value))
    assert response.status_code == 400
    assert reason in response.get_json()["details"]["range"]


def test_a_json_range_must_be_a_number_not_a_boolean(client):
    response = client.post("/", json={**RIDE, "range": True})
    assert response.status_code == 400 and "range" in response.get_json()["details"]


def test_bigquery_gets_a_range_error_as_an_error_message(client):
    response = client.post("/", json={"calls": CALLS, "userDefinedContext": {"range": "70"}})
    assert response.status_code == 400 and "range" in response.get_json()["errorMessage"]


def test_the_held_out_coverage_is_close_to_what_each_range_promises(trained_model):
    _, result = trained_model
    ranges = result.metadata["metrics"]["ranges"]
    for coverage, measured in ranges.items():
        assert abs(measured["coverage"] - int(coverage) / 100) < 0.05, ranges
    assert ranges["80"]["mean_width"] < ranges["95"]["mean_width"]
