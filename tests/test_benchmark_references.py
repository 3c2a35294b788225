"""The serving benchmark's constant-fare reference runs our real request path, so its numbers mean what the README says."""

import functions_framework

from scripts.reference.constant_fare_function import CONSTANT_FARE
from tests.conftest import REPO
from tests.test_api import RIDE, assert_rejected, fare_of, query

CONSTANT_SOURCE = REPO / "scripts" / "reference" / "constant_fare_function.py"


def constant_client():
    return functions_framework.create_app(target="predict", source=str(CONSTANT_SOURCE)).test_client()


def test_constant_fare_reference_answers_like_the_function(client):
    constant = constant_client()
    for path in (query(), query(pickup_datetime="2014-01-01 03:00:00")):
        assert fare_of(constant, path) == CONSTANT_FARE
    ours, theirs = client.get(query()), constant.get(query())
    assert theirs.headers["Access-Control-Allow-Origin"] == ours.headers["Access-Control-Allow-Origin"]
    batch = constant.post("/", json={"instances": [RIDE, RIDE]})
    assert batch.get_json() == {"predictions": [CONSTANT_FARE, CONSTANT_FARE]}


def test_constant_fare_reference_parses_and_validates_like_the_function():
    constant = constant_client()
    assert_rejected(constant.get(query(pickup_latitude="north")), 400, "pickup_latitude")
    assert_rejected(constant.get(query(passenger_count=40)), 400, "passenger_count")
    assert_rejected(constant.get("/predict?pickup_latitude=40.7"), 400, "pickup_longitude")
