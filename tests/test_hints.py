"""Hints in errors: what the caller most likely meant, worded only when a request is refused.

"did you mean" for near-miss names of every kind (fields, short aliases, options, batch envelopes),
swapped latitude and longitude, a date sent without its time; and the names that must not be
mistaken for anything (the bootcamp's `key`, the columns of NYC's trip records).
"""

import json
from urllib.parse import urlencode

import pytest

from taxifare.serving.hints import REFUSAL_CUTOFF, closest
from taxifare.serving.validation import KNOWN_FIELDS, RIDE_OPTIONS
from tests.test_api import RIDE, fare_of, query


def without(*names: str) -> dict:
    return {name: value for name, value in RIDE.items() if name not in names}


def refused(response) -> dict:
    assert response.status_code == 400, response.get_data(as_text=True)
    return response.get_json()


@pytest.mark.parametrize(("sent", "field", "meant"), [
    ("passengers", "passenger_count", "passenger_count"),
    ("passenger", "passenger_count", "passenger_count"),
    ("Passenger-Count", "passenger_count", "passenger_count"),
    ("pickup_lat", "pickup_latitude", "pickup_latitude"),
    ("pickup_lng", "pickup_longitude", "pickup_longitude"),
    ("dropoff_lon", "dropoff_longitude", "dropoff_longitude"),
    ("pickup_date_time", "pickup_datetime", "pickup_datetime"),
    ("lng1", "pickup_longitude", "lon1"),
    ("lat_1", "pickup_latitude", "lat1"),
    ("LON2", "dropoff_longitude", "lon2"),
])
def test_a_missing_field_names_the_near_miss_that_was_sent(client, sent, field, meant):
    ride = {**without(field), sent: RIDE[field]}
    details = refused(client.get("/predict?" + urlencode(ride)))["details"]
    assert details == {field: f'missing (you sent "{sent}": did you mean {meant}?)'}
    assert refused(client.post("/", json=ride))["details"] == details


def test_a_batch_row_gets_the_same_hint(client):
    body = {"instances": [RIDE, {**without("passenger_count"), "passengers": 2}]}
    assert refused(client.post("/", json=body))["details"] == {
        "instances[1].passenger_count": 'missing (you sent "passengers": did you mean passenger_count?)'}


@pytest.mark.parametrize(("sent", "meant"), [("rnage", "range"), ("Range", "range"), ("ranges", "range"),
                                             ("paramters", "parameters"), ("params", "parameters")])
def test_a_misspelt_option_in_a_ride_is_refused_not_ignored(client, sent, meant):
    expected = {sent: f"unknown field: did you mean {meant}?"}
    assert refused(client.post("/", json={**RIDE, sent: 80}))["details"] == expected
    assert refused(client.post("/", json={"instances": [RIDE, {**RIDE, sent: 80}]}))["details"] == {
        f"instances[1].{sent}": f"unknown field: did you mean {meant}?"}
    assert refused(client.get(query(**{sent: 80})))["details"] == expected


@pytest.mark.parametrize("extra", ["key", "source", "fare_amount", "vendor_id", "rate_code", "trip_distance",
                                   "dropoff_datetime", "store_and_fwd_flag", "payment_type", "tip_amount", "age",
                                   "change", "id"])
def test_extra_fields_that_are_no_option_are_still_priced(client, extra):
    assert fare_of(client, query(**{extra: "1"})) == fare_of(client, query())
    response = client.post("/", json={"instances": [{**RIDE, extra: "1"}] * 3})
    assert response.get_json() == {"predictions": [fare_of(client, query())] * 3}


@pytest.mark.parametrize(("key", "envelope", "shape"), [
    ("instance", "instances", '{"instances": [ride, ...]}'), ("Instances", "instances", '{"instances": [ride, ...]}'),
    ("call", "calls", '{"calls": [[six values], ...]}'), ("CALLS", "calls", '{"calls": [[six values], ...]}'),
])
def test_a_misspelt_batch_envelope_gets_one_error_naming_the_key(client, key, envelope, shape):
    rows = [RIDE] if envelope == "instances" else [list(RIDE.values())]
    assert refused(client.post("/", json={key: rows, "requestId": "r"})) == {
        "error": f'unknown key "{key}": did you mean {envelope}?',
        "details": {key: f"did you mean {envelope}? A batch is {shape}"}}


@pytest.mark.parametrize("point", ["pickup", "dropoff"])
def test_swapped_latitude_and_longitude_get_one_error_saying_so(client, point):
    latitude, longitude = RIDE[f"{point}_latitude"], RIDE[f"{point}_longitude"]
    swapped = {**RIDE, f"{point}_latitude": longitude, f"{point}_longitude": latitude}
    expected = {f"{point}_latitude": f"{point} latitude and longitude look swapped ({longitude} is a longitude, "
                                     f"{latitude} a latitude): send {point}_latitude={latitude}, "
                                     f"{point}_longitude={longitude}"}
    assert refused(client.get("/predict?" + urlencode(swapped)))["details"] == expected
    assert refused(client.post("/", json={"instances": [RIDE, swapped]}))["details"] == {
        f"instances[1].{name}": reason for name, reason in expected.items()}


@pytest.mark.parametrize(("latitude", "longitude"), [(-74.3, 40.0), (-72.9, 42.0)])
def test_a_swapped_point_on_the_edges_of_the_box_is_still_called_swapped(client, latitude, longitude):
    """The box's bounds are inclusive for the swap check too: (40.0, -74.3) and (42.0, -72.9) are in the box."""
    details = refused(client.get(query(pickup_latitude=latitude, pickup_longitude=longitude)))["details"]
    assert details == {"pickup_latitude": f"pickup latitude and longitude look swapped ({latitude} is a longitude, "
                                          f"{longitude} a latitude): send pickup_latitude={longitude}, "
                                          f"pickup_longitude={latitude}"}


def test_a_misspelt_option_does_not_hide_the_hint_for_a_field_after_it(client):
    """Sent as written (the test client's json= would sort the keys, putting "passengers" first)."""
    body = json.dumps({**without("passenger_count"), "rnage": 80, "passengers": 1})
    details = refused(client.post("/", data=body, content_type="application/json"))["details"]
    assert details == {"rnage": "unknown field: did you mean range?",
                       "passenger_count": 'missing (you sent "passengers": did you mean passenger_count?)'}


def test_a_field_that_is_not_missing_gets_no_did_you_mean(client):
    """An extra "passengers" beside passenger_count is ignored; the ride's real error is the only one."""
    details = refused(client.post("/", json={**RIDE, "passengers": 2, "pickup_datetime": "soon"}))["details"]
    assert list(details) == ["pickup_datetime"]


def test_coordinates_that_swapping_would_not_fix_keep_their_own_errors(client):
    details = refused(client.get(query(pickup_latitude=-73.95, pickup_longitude=45.0)))["details"]
    assert details == {"pickup_longitude": "outside the NYC service area (longitude -74.3 to -72.9): 45",
                       "pickup_latitude": "outside the NYC service area (latitude 40.0 to 42.0): -73.95"}


@pytest.mark.parametrize("send", ["query", "json", "batch"])
def test_a_date_without_a_time_is_refused_asking_for_the_time(client, send):
    reason = 'a date without a time: "2013-07-06" (fares depend on the hour: add it, e.g. "2013-07-06 00:00:00")'
    if send == "query":
        details = refused(client.get(query(pickup_datetime="2013-07-06")))["details"]
    elif send == "json":
        details = refused(client.post("/", json={**RIDE, "pickup_datetime": "2013-07-06"}))["details"]
    else:  # a clean batch goes through the vectorised time parser first
        dated = {**RIDE, "pickup_datetime": "2013-07-06"}
        details = refused(client.post("/", json={"instances": [dated] * 3}))["details"]
        assert details == {f"instances[{row}].pickup_datetime": reason for row in range(3)}
        return
    assert details == {"pickup_datetime": reason}


def test_names_are_matched_whatever_their_case_and_separators():
    assert closest("PICKUP-LATITUDE", KNOWN_FIELDS) == "pickup_latitude"
    assert closest("Lng_1", KNOWN_FIELDS) == "lon1"
    assert closest("passcnt", KNOWN_FIELDS) == "passcount"
    assert closest("xyz", KNOWN_FIELDS) is None
    assert closest("", KNOWN_FIELDS) is None


def test_only_close_misspellings_count_as_options():
    assert [name for name in ("rnage", "rang", "RANGE", "arange", "paramters", "para")
            if closest(name, RIDE_OPTIONS, REFUSAL_CUTOFF)] == ["rnage", "rang", "RANGE", "arange", "paramters", "para"]
    assert [name for name in ("r", "ran", "rate", "age", "change", "key", "orange juice")
            if closest(name, RIDE_OPTIONS, REFUSAL_CUTOFF)] == []
