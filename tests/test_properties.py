"""Property-based tests of request parsing and validation, through the real function in-process.

Whatever a caller sends (any query string, any body), the answer is a documented 200 or a 4xx JSON
error, never a 5xx and never internals (traces, file paths). Any valid ride is priced, finitely and
positively, and gives the same fare whichever request shape carries it.
"""

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from taxifare.model.schema import INPUT_COLUMNS
from taxifare.serving.validation import ALIASES
from taxifare.training.area_from_rides import BOOTCAMP_BOX
from tests.conftest import make_client

NEW_YORK = ZoneInfo("America/New_York")
FIELDS = list(INPUT_COLUMNS)
FIELD_NAMES = FIELDS + list(ALIASES)
PREDICT_PATHS = ["/", "/predict", "/v1/models/taxifare:predict"]
LEAK_MARKERS = ["Traceback", 'File "', "/work/", ".py", "site-packages"]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def app(model_path):
    """One in-process client for the whole module (built like conftest's `client`), model loaded."""
    with pytest.MonkeyPatch.context() as patch:
        client = make_client(patch, model_path)
        assert client.get("/health").status_code == 200
        yield client


# --- strategies ----------------------------------------------------------------------------------

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)  # UTF-8 encodable
huge_ints = st.integers(min_value=10**300, max_value=10**400) | st.integers(min_value=-(10**400), max_value=-(10**300))
number_strings = st.one_of(
    st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e-400", "0x10", "1_000",
                     "", " ", "+", "-", ".", "40.7", " 40.7 ", "-73.9", "3", "3.0", "3.5", "0", "-0", "9",
                     "\u0664\u0660.\u0667", "\uff14\uff10", "1" * 500]),
    st.floats().map(repr), st.integers().map(str), huge_ints.map(str),
)
datetime_strings = st.one_of(
    st.sampled_from(["2013-07-06 17:18:00", "2013-07-06 17:18:00 UTC", "2013-07-06T17:18:00Z",
                     "2013-07-06T17:18:00+25:00", "2013-07-06 17:18:00+00:00 UTC", "2013-02-30 10:00:00",
                     "2008-12-31 23:59:59", "2100-01-01 00:00:00", "0001-01-01 00:00:00", "9999-12-31 23:59:59",
                     "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2013-03-10 02:30:00", "now", ""]),
    st.datetimes().map(str), st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()), text,
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), huge_ints, st.floats(), text)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(text, inner, max_size=4), max_leaves=12)
field_values = st.one_of(number_strings, datetime_strings, json_values)
query_values = st.one_of(number_strings, datetime_strings, text)
query_keys = st.one_of(st.sampled_from(FIELD_NAMES), text)


@st.composite
def valid_rides(draw) -> dict:
    """A ride the API documents as valid, with the pickup time in one of the accepted formats.

    Wall-clock dates stay a day inside 2009-2099, so that re-expressing a time in another zone
    (see test_the_same_instant_in_every_time_format_gets_the_same_fare) never crosses the year bound as written.
    """
    wall = draw(st.datetimes(min_value=datetime(2009, 1, 2), max_value=datetime(2099, 12, 30, 23, 59, 59)))
    wall = wall.replace(microsecond=0)
    style = draw(st.sampled_from(["naive", "utc", "z", "offset"]))
    if style == "naive":
        when = wall.strftime("%Y-%m-%d %H:%M:%S")
    elif style == "utc":
        when = wall.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    elif style == "z":
        when = wall.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        minutes = draw(st.integers(min_value=-12 * 60, max_value=14 * 60))
        when = wall.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()
    (west, east), (south, north) = BOOTCAMP_BOX  # inside every model's service area, by its definition
    latitude, longitude = st.floats(south, north), st.floats(west, east)
    return {"pickup_datetime": when, "pickup_longitude": draw(longitude), "pickup_latitude": draw(latitude),
            "dropoff_longitude": draw(longitude), "dropoff_latitude": draw(latitude),
            "passenger_count": draw(st.integers(1, 8))}


@st.composite
def ride_like_objects(draw) -> dict:
    """JSON objects mixing real field names (some valid values) with random fields and values."""
    ride = draw(valid_rides())
    fields = {name: ride[name] for name in draw(st.lists(st.sampled_from(FIELDS), unique=True))}
    fields.update(draw(st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), text), field_values, max_size=8)))
    return fields


bigquery_calls = st.lists(st.one_of(
    st.lists(field_values, min_size=6, max_size=6),
    valid_rides().map(lambda ride: [ride[name] for name in FIELDS]),
    json_values,
), max_size=5)
bigquery_bodies = st.fixed_dictionaries(
    {"calls": st.one_of(bigquery_calls, json_values)},
    optional={"requestId": text, "caller": text, "sessionUser": text, "userDefinedContext": json_values},
)
instances_bodies = st.fixed_dictionaries(
    {"instances": st.one_of(st.lists(st.one_of(ride_like_objects(), valid_rides(), json_values), max_size=5),
                            json_values)},
    optional={"parameters": json_values},
)
json_documents = st.one_of(json_values, ride_like_objects(), valid_rides(), instances_bodies, bigquery_bodies)


# --- what every answer must look like --------------------------------------------------------------

def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_answer(response, sent: str, bigquery: bool | None = None, greeting_allowed: bool = False) -> dict:
    """A documented 200, or a 4xx JSON error in the caller's convention; no internals either way.

    `bigquery`: True/False when the caller's convention is known, None to accept either.
    """
    status, body_text = response.status_code, response.get_data(as_text=True)
    assert status < 500, f"{status} for {sent[:300]!r}: {body_text[:300]}"
    leaks = [marker for marker in LEAK_MARKERS if marker in body_text and marker not in sent]
    assert not leaks, f"{leaks} in {body_text[:500]}"
    assert response.mimetype == "application/json", body_text[:200]
    body = json.loads(body_text)
    assert isinstance(body, dict)
    if status == 200:
        if greeting_allowed and body == {"greeting": "Hello"}:
            return body
        (key, value), = body.items()
        if key == "fare":
            assert is_number(value)
        else:
            assert key in ("predictions", "replies") and isinstance(value, list) and value
            assert all(is_number(fare) for fare in value)
        return body
    assert 400 <= status < 500, status
    if set(body) == {"errorMessage"}:
        assert bigquery is not False, body
        assert isinstance(body["errorMessage"], str) and body["errorMessage"]
    else:
        assert bigquery is not True, body
        assert set(body) - {"refused_rows"} == {"error", "details"}, body
        assert isinstance(body["error"], str) and body["error"]
        assert isinstance(body["details"], dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in body["details"].items())
        if "refused_rows" in body:  # a batch refused row by row: at least the rows listed
            rows = {key.split("].")[0] for key in body["details"]}
            assert isinstance(body["refused_rows"], int) and body["refused_rows"] >= len(rows) >= 1, body
    return body


def expected_convention(body: bytes, content_type: str | None) -> bool | None:
    """Whether the API should answer in BigQuery's convention (None: the test does not predict it)."""
    if content_type is None or not content_type.startswith("application/json"):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(document, dict) and "calls" in document


# --- any input: documented answer, no 5xx, no internals ------------------------------------------

@FAST
@given(path=st.sampled_from(PREDICT_PATHS),
       pairs=st.lists(st.tuples(query_keys, query_values), max_size=10))
@example(path="/predict", pairs=[("pickup_datetime", "2013-07-06 17:18:00")] * 2)
@example(path="/predict", pairs=[("passenger_count", "nan"), ("pickup_latitude", "inf"), ("lat1", "40.7")])
@example(path="/", pairs=[])
def test_any_query_string_gets_a_documented_answer(app, path, pairs):
    query = urlencode(pairs)
    response = app.get(path, query_string=query)
    check_answer(response, query, bigquery=False, greeting_allowed=path == "/")


@FAST
@given(path=st.sampled_from(PREDICT_PATHS), query=st.text(st.characters(exclude_categories=("Cs",)), max_size=200))
@example(path="/predict", query="%ff%fe=%00&&=&pickup_datetime")
def test_any_raw_query_string_gets_a_documented_answer(app, path, query):
    response = app.get(path, query_string=query)
    check_answer(response, query, bigquery=False, greeting_allowed=path == "/")


@FAST
@given(pairs=st.lists(st.tuples(query_keys, query_values), max_size=10))
def test_any_form_body_gets_a_documented_answer(app, pairs):
    body = urlencode(pairs)
    response = app.post("/predict", data=body, content_type="application/x-www-form-urlencoded")
    check_answer(response, body, bigquery=False)


@FAST
@given(path=st.sampled_from(PREDICT_PATHS), body=st.binary(max_size=300),
       content_type=st.sampled_from([None, "application/json", "application/json; charset=utf-8", "text/plain",
                                     "application/octet-stream", "application/x-www-form-urlencoded",
                                     "multipart/form-data"]))
@example(path="/predict", body=b"[" * 100_000, content_type="application/json")
@example(path="/predict", body=b'{"calls": "x"', content_type="application/json")
@example(path="/predict", body=b"\xff\xfe{", content_type="application/json")
@example(path="/predict", body=b"   ", content_type=None)
def test_any_bytes_posted_get_a_documented_answer(app, path, body, content_type):
    response = app.post(path, data=body, content_type=content_type)
    check_answer(response, body.decode("utf-8", "replace"), expected_convention(body, content_type))


@FAST
@given(path=st.sampled_from(PREDICT_PATHS), document=json_documents)
@example(path="/predict", document={"pickup_datetime": "2013-07-06 17:18:00", "pickup_longitude": -73.95,
                                    "pickup_latitude": 40.78, "dropoff_longitude": -73.98,
                                    "dropoff_latitude": 40.77, "passenger_count": 10**400})
def test_any_json_document_gets_a_documented_answer(app, path, document):
    body = json.dumps(document)  # NaN / Infinity included: Python's json (the server's) reads them
    response = app.post(path, data=body, content_type="application/json")
    answer = check_answer(response, body, expected_convention(body.encode(), "application/json"))
    if response.status_code == 200 and isinstance(document, dict):
        if "calls" in document:
            assert len(answer["replies"]) == len(document["calls"])
        elif "instances" in document:
            assert len(answer["predictions"]) == len(document["instances"])


@FEWER
@given(calls=bigquery_calls.filter(bool))
@example(calls=[["2013-07-06 17:18:00", -73.95, 40.78, -73.98, 40.77, 10**400]])
@example(calls=[["2013-07-06 17:18:00", -73.95, 40.78, -73.98, 40.77, 10**400]] * 2)  # the vectorised path
def test_bigquery_calls_always_get_replies_or_an_error_message(app, calls):
    body = json.dumps({"requestId": "r1", "caller": "//bigquery", "sessionUser": "a@b.c", "calls": calls})
    response = app.post("/", data=body, content_type="application/json")
    answer = check_answer(response, body, bigquery=True)
    if response.status_code == 200:
        assert len(answer["replies"]) == len(calls)


# --- any valid ride: priced, and the same fare in every shape ------------------------------------

def _single_fare(app, ride) -> float:
    response = app.post("/predict", json=ride)
    answer = check_answer(response, json.dumps(ride), bigquery=False)
    assert response.status_code == 200, answer
    return answer["fare"]


@FAST
@given(ride=valid_rides())
@example(ride={"pickup_datetime": "2013-07-06 17:18:00", "pickup_longitude": -73.950655,
               "pickup_latitude": 40.783282, "dropoff_longitude": -73.984365, "dropoff_latitude": 40.769802,
               "passenger_count": 1})
@example(ride={"pickup_datetime": "2013-03-10 02:30:00", "pickup_longitude": -74.3, "pickup_latitude": 40.9,
               "dropoff_longitude": -73.7, "dropoff_latitude": 40.5, "passenger_count": 8})  # the bootcamp's corners
def test_a_valid_ride_gets_the_same_positive_fare_in_every_shape(app, ride):
    fare = _single_fare(app, ride)
    assert math.isfinite(fare) and fare > 0

    query = urlencode({name: str(value) for name, value in ride.items()})
    by_query = app.get("/predict", query_string=query)
    assert by_query.status_code == 200 and by_query.get_json() == {"fare": fare}

    aliased = urlencode({next((a for a, c in ALIASES.items() if c == name), name): str(value)
                         for name, value in ride.items()})
    by_alias = app.get("/", query_string=aliased)
    assert by_alias.status_code == 200 and by_alias.get_json() == {"fare": fare}

    instances = app.post("/v1/models/taxifare:predict", json={"instances": [ride, ride]})
    assert instances.status_code == 200 and instances.get_json() == {"predictions": [fare, fare]}

    call = [ride[name] for name in FIELDS]
    as_strings = [str(value) for value in call]
    calls = app.post("/", json={"requestId": "r", "calls": [call, as_strings]})
    assert calls.status_code == 200 and calls.get_json() == {"replies": [fare, fare]}


@FEWER
@given(ride=valid_rides())
def test_the_same_instant_in_every_time_format_gets_the_same_fare(app, ride):
    instant = datetime.fromisoformat(ride["pickup_datetime"].removesuffix(" UTC"))
    if ride["pickup_datetime"].endswith(" UTC"):
        instant = instant.replace(tzinfo=UTC)
    elif instant.tzinfo is None:
        instant = instant.replace(tzinfo=NEW_YORK)  # fold=0, the documented DST rule
    utc = instant.astimezone(UTC)
    formats = [utc.strftime("%Y-%m-%d %H:%M:%S UTC"), utc.strftime("%Y-%m-%dT%H:%M:%SZ"), utc.isoformat(),
               instant.astimezone(NEW_YORK).isoformat(), instant.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S")]
    fares = {when: _single_fare(app, {**ride, "pickup_datetime": when}) for when in formats}
    assert len(set(fares.values())) == 1, fares


@FEWER
@given(rides=st.lists(valid_rides(), min_size=2, max_size=70))
def test_a_batch_prices_each_ride_as_if_alone(app, rides):
    batch = app.post("/predict", json={"instances": rides})
    assert batch.status_code == 200
    predictions = batch.get_json()["predictions"]
    alone = [_single_fare(app, ride) for ride in rides]
    # one ride walks its trees alone, a batch walks all (tree, ride) pairs at once: equal to 1e-9,
    # so at most a cent apart once rounded
    assert predictions == pytest.approx(alone, abs=0.0101)


# --- the year range applies to the year as written ------------------------------------------------

@pytest.mark.parametrize("when", ["2099-12-31 22:00:00", "2009-01-01T00:30:00+01:00"])
def test_every_documented_year_is_priced_whatever_the_zone(app, when):
    ride = {"pickup_datetime": when, "pickup_longitude": -73.95, "pickup_latitude": 40.78,
            "dropoff_longitude": -73.98, "dropoff_latitude": 40.77, "passenger_count": 1}
    assert app.post("/predict", json=ride).status_code == 200
