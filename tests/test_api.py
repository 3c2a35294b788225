"""The HTTP contract, in-process through functions_framework.create_app(...).test_client()."""

import io
import json
import random
import re
import socket
import threading
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from taxifare.model import places
from taxifare.serving import request_parsing
from taxifare.serving.api import KSERVE_PATH, PAGES, PREDICT_PATHS
from taxifare.serving.quoting import quoted
from taxifare.serving.request_parsing import BODY_READ_TIMEOUT_SECONDS, EXPECTED_BODY, MAX_BODY_BYTES, MAX_ROWS
from taxifare.serving.validation import ALIASES, MAX_REPORTED_ERRORS

RIDE = {
    "pickup_datetime": "2013-07-06 17:18:00", "pickup_longitude": -73.950655, "pickup_latitude": 40.783282,
    "dropoff_longitude": -73.984365, "dropoff_latitude": 40.769802, "passenger_count": 1,
}
SHORT_NAMES = {"lon1": RIDE["pickup_longitude"], "lat1": RIDE["pickup_latitude"], "lon2": RIDE["dropoff_longitude"],
               "lat2": RIDE["dropoff_latitude"], "passcount": 1, "pickup_datetime": RIDE["pickup_datetime"]}


def query(**changes) -> str:
    return "/predict?" + urlencode({**RIDE, **changes})


def fare_of(client, path: str) -> float:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert list(body) == ["fare"] and isinstance(body["fare"], float)
    return body["fare"]


def assert_rejected(response, status: int, field: str, reason: str = ""):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert field in body["details"], body
    assert reason in body["details"][field], body
    assert "Traceback" not in response.get_data(as_text=True)


# --- the bootcamp's clients -------------------------------------------------------------

def test_root_without_parameters_greets_exactly(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.get_json() == {"greeting": "Hello"}


def test_get_predict_returns_exactly_one_float_fare(client):
    fare = fare_of(client, query())
    assert 5 < fare < 30
    assert fare == round(fare, 2)


def test_root_with_a_query_also_predicts(client):
    assert fare_of(client, "/?" + urlencode(RIDE)) == fare_of(client, query())


def test_short_names_from_the_notebooks_are_accepted(client):
    assert fare_of(client, "/predict?" + urlencode(SHORT_NAMES)) == fare_of(client, query())


def test_the_field_notes_example_prices_an_airport_ride_higher(client):
    airport = "/predict?pickup_datetime=2013-07-06 10:18:00&pickup_longitude=-73.70&pickup_latitude=40.9&dropoff_longitude=-73.98&dropoff_latitude=40.70&passenger_count=2"
    assert fare_of(client, airport) > fare_of(client, query()) + 10


# --- time zones --------------------------------------------------------------------------

@pytest.mark.parametrize("same_instant", [
    "2013-07-06 21:18:00 UTC", "2013-07-06T21:18:00Z", "2013-07-06T17:18:00-04:00", "2013-07-06T23:18:00+02:00",
    "2013-07-06T17:18:00",
])
def test_naive_times_are_new_york_and_zoned_times_are_respected(client, same_instant):
    assert fare_of(client, query(pickup_datetime=same_instant)) == fare_of(client, query())


def test_utc_suffix_is_not_new_york_time(client):
    night = fare_of(client, query(pickup_datetime="2013-07-06 03:00:00"))
    assert fare_of(client, query(pickup_datetime="2013-07-06 07:00:00 UTC")) == night


@pytest.mark.parametrize(("gap_or_overlap", "resolved_utc"), [
    ("2013-03-10 02:30:00", "2013-03-10 07:30:00 UTC"),  # spring gap: pre-jump offset (EST) -> 03:30 EDT
    ("2013-11-03 01:30:00", "2013-11-03 05:30:00 UTC"),  # autumn overlap: first occurrence (EDT)
])
def test_dst_gaps_and_overlaps_resolve_deterministically(client, gap_or_overlap, resolved_utc):
    assert fare_of(client, query(pickup_datetime=gap_or_overlap)) == fare_of(client, query(pickup_datetime=resolved_utc))


# --- POST shapes -------------------------------------------------------------------------

def test_post_json_object_like_gcloud_functions_call(client):
    response = client.post("/", data=json.dumps(RIDE), content_type="application/json")
    assert response.get_json() == {"fare": fare_of(client, query())}


def test_post_form_body(client):
    response = client.post("/", data=urlencode(RIDE), content_type="application/x-www-form-urlencoded")
    assert response.get_json() == {"fare": fare_of(client, query())}


def test_instances_batch_keeps_order_and_matches_single_rides(client, valid_rides):
    rides = valid_rides.sample(50, random_state=1)
    instances = [
        {**{k: float(v) for k, v in row.items() if k not in ("key", "fare_amount", "pickup_datetime")},
         "pickup_datetime": row["pickup_datetime"].strftime("%Y-%m-%d %H:%M:%S UTC")}
        for row in rides.to_dict("records")
    ]
    response = client.post("/", json={"instances": instances})
    predictions = response.get_json()["predictions"]
    assert len(predictions) == 50
    singles = [client.post("/", json=instance).get_json()["fare"] for instance in instances[:10]]
    assert predictions[:10] == singles


def test_kserve_v1_path(client):
    response = client.post("/v1/models/taxifare:predict", json={"instances": [RIDE, RIDE]})
    assert response.get_json() == {"predictions": [fare_of(client, query())] * 2}


def test_bigquery_remote_function_calls(client):
    calls = [[RIDE["pickup_datetime"], RIDE["pickup_longitude"], RIDE["pickup_latitude"], RIDE["dropoff_longitude"],
              RIDE["dropoff_latitude"], RIDE["passenger_count"]]] * 3
    body = {"requestId": "124ab1c", "caller": "//bigquery.googleapis.com/projects/p/jobs/j", "sessionUser": "a@b.c",
            "userDefinedContext": {}, "calls": calls}
    first, again = client.post("/", json=body), client.post("/", json=body)
    assert first.get_json() == {"replies": [fare_of(client, query())] * 3}
    assert again.get_json() == first.get_json()  # idempotent: BigQuery may repeat a request


def test_bigquery_errors_use_error_message(client):
    response = client.post("/", json={"requestId": "r", "calls": [[RIDE["pickup_datetime"], "abc", 40.7, -73.9, 40.7, 1]]})
    assert response.status_code == 400
    body = response.get_json()
    assert list(body) == ["errorMessage"]
    assert "calls[0].pickup_longitude" in body["errorMessage"] and "not a number" in body["errorMessage"]


def test_bigquery_wrong_arity_is_named(client):
    response = client.post("/", json={"calls": [[1, 2, 3]]})
    assert response.status_code == 400 and "calls[0]" in response.get_json()["errorMessage"]


# --- errors name the field and the reason ------------------------------------------------

@pytest.mark.parametrize(("field", "value", "reason"), [
    ("pickup_latitude", "abc", 'not a number: "abc"'),
    ("pickup_latitude", "4_0.7", "not a number"),
    ("pickup_latitude", "nan", 'not a finite number: "nan"'),
    ("pickup_longitude", "inf", 'not a finite number: "inf"'),
    ("pickup_latitude", "45.0", "outside the NYC service area"),
    ("dropoff_longitude", "-75", "outside the NYC service area"),
    ("passenger_count", "0", "whole number from 1 to 8"),
    ("passenger_count", "9", "whole number from 1 to 8"),
    ("passenger_count", "1.5", "whole number from 1 to 8"),
    ("pickup_datetime", "yesterday", "not a date and time"),
    ("pickup_datetime", "2013-02-30 10:00:00", "not a date and time"),
    ("pickup_datetime", "1999-07-06 17:18:00", "out of range"),
    ("pickup_datetime", "2213-07-06 17:18:00", "out of range"),
    ("pickup_datetime", "2013-07-06T17:18:00Z UTC", "two time zones"),
])
def test_bad_values_are_400_naming_field_and_reason(client, field, value, reason):
    assert_rejected(client.get(query(**{field: value})), 400, field, reason)


def test_missing_fields_are_each_named(client):
    response = client.get("/predict?pickup_latitude=40.7")
    assert response.status_code == 400
    assert set(response.get_json()["details"]) == {"pickup_datetime", "pickup_longitude", "dropoff_longitude",
                                                   "dropoff_latitude", "passenger_count"}


def test_repeated_field_is_refused(client):
    assert_rejected(client.get(query() + "&pickup_latitude=40.71"), 400, "pickup_latitude", "given 2 times")
    assert client.get(query() + "&pickup_latitude=40.71").get_json() == {
        "error": "repeated fields", "details": {"pickup_latitude": "given 2 times"}}


@pytest.mark.parametrize("alias_first", [False, True])
def test_field_given_under_both_names_is_refused_naming_both_as_sent(client, alias_first):
    ride = {"lat1": 40.7, **RIDE} if alias_first else {**RIDE, "lat1": 40.7}
    response = client.post("/", data=json.dumps(ride), content_type="application/json")  # json= would sort keys
    sent = '"lat1" and "pickup_latitude"' if alias_first else '"pickup_latitude" and "lat1"'
    assert response.get_json() == {"error": "invalid ride fields",
                                   "details": {"pickup_latitude": f"given twice (as {sent})"}}


@pytest.mark.parametrize("value", [True, None, [40.7], {"a": 1}])
def test_json_values_of_the_wrong_type_are_named(client, value):
    assert_rejected(client.post("/", json={**RIDE, "pickup_latitude": value}), 400, "pickup_latitude", "not a number")


@pytest.mark.parametrize(("value", "shown"), [(1373131080, "1373131080"), (None, "null"), ([2013], "[2013]")])
def test_a_pickup_time_that_is_not_a_string_is_named_as_sent(client, value, shown):
    """An epoch number is not taken for a time: the answer says what was sent, in JSON."""
    response = client.post("/", json={**RIDE, "pickup_datetime": value})
    assert response.get_json()["details"] == {"pickup_datetime": f"not a date and time string: {shown}"}


def test_datetime_must_be_a_string(client):
    assert_rejected(client.post("/", json={**RIDE, "pickup_datetime": 1373145480}), 400, "pickup_datetime", "string")


@pytest.mark.parametrize(("body", "field", "reason"), [
    (b"{not json", "body", "not JSON"),
    (b"[" * 5_000 + b"]" * 5_000, "body", "nested too deeply"),
    (b"[1, 2]", "body", "array"),
    (b'"a ride"', "body", "got a JSON string"),
    (b"\xff\xfe", "body", "not JSON"),
    (b"", "body", "empty"),
])
def test_bodies_that_are_not_a_usable_json_object(client, body, field, reason):
    assert_rejected(client.post("/", data=body, content_type="application/json"), 400, field, reason)


def test_a_body_that_is_not_json_gets_the_parsers_reason_cut_to_80_characters(client):
    body = b'{"pickup_datetime": "2013-07-06 17:18:00",' + b" " * 100_000 + b"}"
    with pytest.raises(ValueError) as parsed:
        json.loads(body)
    assert len(str(parsed.value)) > 80
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "body is not JSON", "details": {"body": f"not JSON: {str(parsed.value)[:80]}"}}


def test_json_nested_deeper_than_python_parses_is_not_usable(client):
    response = client.post("/", data=b"[" * 5_000 + b"]" * 5_000, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "body is not usable JSON", "details": {"body": "nested too deeply"}}


def test_a_lone_surrogate_that_pythons_json_reads_is_refused_naming_its_field(client):
    """The body is decoded as json.loads decodes bytes (surrogatepass): the odd string reaches validation."""
    body = json.dumps({**RIDE, "pickup_datetime": "X"}).encode().replace(b"X", b"\xed\xa0\x80")
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid ride fields", "details": {
        "pickup_datetime": 'not a date and time: "\ud800" (expected e.g. "2013-07-06 17:18:00")'}}


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"instances": []}, "instances", "empty"),
    ({"instances": {}}, "instances", "got a JSON object"),
    ({"instances": [RIDE, 3]}, "instances[1]", "object"),
    ({"instances": [RIDE, {**RIDE, "passenger_count": 0}]}, "instances[1].passenger_count", "whole number"),
])
def test_malformed_batches_name_the_row(client, body, field, reason):
    assert_rejected(client.post("/", json=body), 400, field, reason)


@pytest.mark.parametrize("shape", ["instances", "calls"])
def test_a_number_beyond_float_range_in_a_batch_is_named(client, shape):
    huge = {**RIDE, "pickup_longitude": 10**400}
    rows = [huge, RIDE] if shape == "instances" else [list(huge.values()), list(RIDE.values())]
    response = client.post("/", json={shape: rows})
    assert response.status_code == 400
    assert "pickup_longitude" in response.get_data(as_text=True) and "not a number" in response.get_data(as_text=True)


@pytest.mark.parametrize("partial", ["2013", "2013-07"])
def test_batches_refuse_the_partial_dates_single_rides_refuse(client, partial):
    response = client.post("/", json={"instances": [{**RIDE, "pickup_datetime": partial}, RIDE]})
    assert_rejected(response, 400, "instances[0].pickup_datetime", "not a date and time")


def test_batch_errors_are_capped(client):
    response = client.post("/", json={"instances": [{}] * 500})
    assert response.status_code == 400
    six_missing = [(row, name) for row in range(4) for name in RIDE]  # each empty row misses all six fields
    assert response.get_json() == {
        "error": "invalid ride fields: 500 rows refused; only the first 20 errors are listed",
        "details": {f"instances[{row}].{name}": "missing" for row, name in six_missing[:MAX_REPORTED_ERRORS]},
        "refused_rows": 500}


def test_a_batch_error_counts_every_refused_row_and_lists_the_first_in_row_order(client, valid_rides):
    rides = [{**{name: float(row[name]) for name in RIDE if name != "pickup_datetime"},
              "pickup_datetime": row["pickup_datetime"].strftime("%Y-%m-%d %H:%M:%S UTC")}
             for row in valid_rides.sample(1_000, random_state=2).to_dict("records")]
    bad = sorted(random.Random(3).sample(range(1_000), 143))
    for index in bad:
        rides[index]["passenger_count"] = 0
    response = client.post("/", json={"instances": rides})
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid ride fields: 143 rows refused; only the first 20 errors are listed",
        "details": {f"instances[{index}].passenger_count": "not a whole number from 1 to 8: 0"
                    for index in bad[:MAX_REPORTED_ERRORS]},
        "refused_rows": 143}
    calls = [[ride[name] for name in RIDE] for ride in rides]
    message = client.post("/", json={"calls": calls}).get_json()["errorMessage"]
    assert message == "invalid ride fields: 143 rows refused; only the first 20 errors are listed: " + "; ".join(
        f"calls[{index}].passenger_count: not a whole number from 1 to 8: 0" for index in bad[:MAX_REPORTED_ERRORS])


def test_a_batch_with_fewer_errors_than_the_cap_lists_them_all(client):
    response = client.post("/", json={"instances": [RIDE, {**RIDE, "passenger_count": 9}, RIDE]})
    assert response.get_json() == {"error": "invalid ride fields: 1 row refused",
                                   "details": {"instances[1].passenger_count": "not a whole number from 1 to 8: 9"},
                                   "refused_rows": 1}


def test_a_single_ride_error_has_no_row_count(client):
    assert client.post("/", json={**RIDE, "passenger_count": 9}).get_json() == {
        "error": "invalid ride fields", "details": {"passenger_count": "not a whole number from 1 to 8: 9"}}


@pytest.mark.parametrize("shape", ["instances", "calls"])
def test_a_malformed_batch_counts_every_malformed_row(client, shape):
    good = RIDE if shape == "instances" else list(RIDE.values())
    rows = [good] * 5 + [3] * 30
    response = client.post("/", json={shape: rows})
    assert response.status_code == 400
    expected = "expected a JSON object of ride fields" if shape == "instances" else \
        "expected an array of 6 values (" + ", ".join(RIDE) + ")"
    details = {f"{shape}[{index}]": expected for index in range(5, 5 + MAX_REPORTED_ERRORS)}
    message = f"malformed {shape}: 30 rows refused; only the first 20 errors are listed"
    if shape == "instances":
        assert response.get_json() == {"error": message, "details": details, "refused_rows": 30}
    else:
        assert response.get_json() == {"errorMessage": message + ": " + "; ".join(f"{k}: {v}" for k, v in
                                                                                details.items())}


def test_oversized_batch_is_413_saying_the_cap(client):
    response = client.post("/", json={"instances": [RIDE] * (MAX_ROWS + 1)})
    assert_rejected(response, 413, "instances", f"{MAX_ROWS:,}")
    assert f"{MAX_ROWS:,}" in response.get_json()["error"]


def test_oversized_body_is_413_before_parsing_saying_how_many_rides_fit(client):
    response = client.post("/", data=b" " * (MAX_BODY_BYTES + 1), content_type="application/json")
    assert response.status_code == 413
    assert response.get_json() == {
        "error": f"a body of {MAX_BODY_BYTES + 1:,} bytes is over the limit of 3,145,728 bytes: one request takes at "
                 "most 10,000 rides",
        "details": {"body": "at most 3,145,728 bytes; split the rides into requests of at most 10,000"}}


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_unsupported_methods_are_405(client, method):
    response = getattr(client, method)("/predict")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST, OPTIONS"
    assert "method" in response.get_json()["details"]


@pytest.mark.parametrize("path", ["/predict/extra", "/v1/models/a%0Ab:predict", "/v1/models/taxifare:predict%0A",
                                  "/%0A"])
def test_unknown_path_is_404_json(client, path):
    # a newline in the path is beyond Flask's router: main.py sends that 404 to the API too
    response = client.post(path, json={"instances": [RIDE]})
    assert response.status_code == 404 and response.get_json()["details"] == {"path": "see /docs for the API"}


def test_a_full_batch_of_the_cap_is_priced(client):
    response = client.post("/", json={"instances": [RIDE] * MAX_ROWS})
    assert response.status_code == 200
    assert response.get_json() == {"predictions": [fare_of(client, query())] * MAX_ROWS}


# --- CORS ---------------------------------------------------------------------------------

def test_cors_on_answers_and_errors(client):
    assert client.get(query(), headers={"Origin": "https://example.com"}).headers["Access-Control-Allow-Origin"] == "*"
    assert client.get(query(pickup_latitude="x")).headers["Access-Control-Allow-Origin"] == "*"


def test_cors_preflight(client):
    response = client.options("/predict", headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST",
                                                   "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 204
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]


# --- health, metadata, documentation -----------------------------------------------------

def test_health_reports_the_model_version(client, trained_model):
    _, result = trained_model
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "model_version": result.metadata["model_version"],
                                   "model_sha256": result.metadata["sha256"]}


def test_model_endpoint_serves_model_json(client, trained_model):
    out, _ = trained_model
    assert client.get("/model").get_json() == json.loads((out / "model.json").read_text())


def test_openapi_describes_every_endpoint(client):
    """Every path the router answers is documented, and nothing else: read from the router's own tables."""
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    kserve = "/v1/models/{model}:predict"
    assert KSERVE_PATH.fullmatch(kserve.replace("{model}", "taxifare"))
    assert set(spec["paths"]) == {*PREDICT_PATHS, kserve, *PAGES}
    for path in PREDICT_PATHS:
        assert set(spec["paths"][path]) == {"get", "post"}, path
    for path in PAGES:
        assert set(spec["paths"][path]) == {"get"}, path
    assert set(spec["paths"][kserve]) == {"post"}


def spec_validator(spec: dict, schema: dict):
    """A JSON Schema validator of one schema of the served spec, its $refs resolved in the spec's components."""
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator({**schema, "components": spec["components"]})


def test_the_served_spec_is_valid_openapi_and_every_example_in_it_fits_its_schema(client):
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    spec = client.get("/openapi.json").get_json()
    OPENAPI_31_VALIDATOR.validate(spec)
    referenced, examples = set(), 0

    def walk(node: object) -> None:
        nonlocal examples
        if isinstance(node, dict):
            if "$ref" in node:
                referenced.add(node["$ref"].removeprefix("#/components/schemas/"))
            if "schema" in node and "example" in node:  # a parameter
                spec_validator(spec, node["schema"]).validate(node["example"])
                examples += 1
            if "schema" in node and "examples" in node and not isinstance(node["schema"], str):  # a JSON media type
                for example in node["examples"].values():
                    if not isinstance(example["value"], str):  # the form's example is its urlencoded text
                        spec_validator(spec, node["schema"]).validate(example["value"])
                        examples += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec["paths"])
    schemas = spec["components"]["schemas"]
    for schema in schemas.values():  # the example beside each field, in the schema it illustrates
        for field in schema.get("properties", {}).values():
            if "example" in field:
                spec_validator(spec, field).validate(field["example"])
                examples += 1
        walk(schema)
    assert referenced == set(schemas)  # every $ref resolves, and every schema is used
    assert examples > 50


def test_the_spec_states_the_limits_the_function_holds(client):
    from taxifare.model.schema import LATITUDE_RANGE, LONGITUDE_RANGE, PASSENGER_RANGE
    from taxifare.serving.request_parsing import MAX_FIELDS, MAX_QUERY_BYTES

    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    ride = schemas["Ride"]["properties"]
    for where in ("pickup", "dropoff"):
        for axis, (low, high) in (("latitude", LATITUDE_RANGE), ("longitude", LONGITUDE_RANGE)):
            field = ride[f"{where}_{axis}"]
            assert (field["minimum"], field["maximum"]) == (low, high)
            assert field["type"] == ["number", "string"]  # numbers in strings are read, as queries and forms send them
            assert f"{where} {axis}, NYC service area {low} to {high}" in field["description"]
    low, high = PASSENGER_RANGE
    assert ride["passenger_count"] | {"description": ""} == {"type": ["integer", "string"], "minimum": low,
                                                             "maximum": high, "example": 1, "description": ""}
    assert f"whole number {low}-{high}" in ride["passenger_count"]["description"]
    assert ride["pickup_datetime"]["type"] == "string"
    assert {name: ride[name]["example"] for name in RIDE} == RIDE  # the README's example ride, as /docs' form starts
    assert schemas["Instances"]["properties"]["instances"]["maxItems"] == MAX_ROWS
    assert schemas["BigQueryCalls"]["properties"]["calls"]["maxItems"] == MAX_ROWS
    post = spec["paths"]["/predict"]["post"]["responses"]
    assert f"more than {MAX_FIELDS} fields" in post["400"]["description"]
    assert f"lists its first {MAX_REPORTED_ERRORS} errors" in post["400"]["description"]
    assert post["413"]["description"].startswith(f"body over {MAX_BODY_BYTES:,} bytes, more than {MAX_ROWS:,} rides")
    assert post["414"]["description"] == f"query string over {MAX_QUERY_BYTES:,} bytes"
    parameters = spec["paths"]["/predict"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in parameters] == [
        (name, "query", False) for name in (*RIDE, "range", "explain")]  # GET / without any of them is the greeting
    aliases = {canonical: alias for alias, canonical in ALIASES.items()}
    for parameter in parameters[:len(RIDE)]:
        name = parameter["name"]
        assert parameter["description"] == ride[name]["description"] + (
            f" (alias: {aliases[name]})" if name in aliases else "")


def test_every_parameter_and_header_declares_its_type_and_the_version_header_an_example(client):
    """Client generators type what they read from the schema; /docs' "Try it out" starts from the example."""
    spec = client.get("/openapi.json").get_json()
    operations = [operation for path in spec["paths"].values() for operation in path.values()]
    parameters = [parameter for operation in operations for parameter in operation.get("parameters", [])]
    assert parameters and all(p["schema"]["type"] == "string" and isinstance(p.get("example", p["schema"].get(
        "example")), str) for p in parameters)
    headers = {name: header for operation in operations for answer in operation["responses"].values()
               for name, header in answer.get("headers", {}).items()}
    assert {name: header["schema"]["type"] for name, header in headers.items()} == {
        "X-Model-Version": "string", "Retry-After": "integer"}
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{8}", headers["X-Model-Version"]["schema"]["example"])


def test_every_answer_fits_the_schema_and_headers_the_spec_gives_its_status(client, monkeypatch, tmp_path):
    """Answers of every shape and status, checked against the served spec (the real-server check, in-process)."""
    from tests.conftest import make_client

    spec = client.get("/openapi.json").get_json()
    kserve = "/v1/models/{model}:predict"
    sent = [("/", "get", client.get("/")), ("/predict", "get", client.get(query())),
            ("/predict", "get", client.get(query(range=80))), ("/predict", "get", client.get(query(explain=1))),
            ("/", "get", client.get("/?" + urlencode({**RIDE, "range": 80, "explain": 1}))),
            ("/predict", "post", client.post("/predict", json={"instances": [RIDE, RIDE], "parameters": {"range": 80}})),
            ("/predict", "post", client.post("/predict", json={"instances": [RIDE], "explain": True})),
            ("/predict", "post", client.post("/predict", json={"calls": [BIGQUERY_CALL]})),
            ("/", "post", client.post("/", json={"calls": [BIGQUERY_CALL], "userDefinedContext": {"range": "80"}})),
            (kserve, "post", client.post("/v1/models/taxifare:predict", json={"instances": [RIDE]})),
            ("/predict", "get", client.get(query(pickup_latitude="abc"))),
            ("/predict", "post", client.post("/predict", json={"instances": [RIDE, 3]})),
            ("/predict", "post", client.post("/predict", json={"calls": [BIGQUERY_CALL[:5]]})),
            ("/predict", "post", client.post("/predict", environ_overrides={"CONTENT_LENGTH": "9000000"})),
            ("/predict", "get", client.get("/predict?" + "a" * 20_000)),
            (kserve, "post", client.post("/v1/models/my%20model:predict", json={"instances": [RIDE]})),
            ("/health", "get", client.get("/health")), ("/model", "get", client.get("/model")),
            ("/openapi.json", "get", client.get("/openapi.json")), ("/docs", "get", client.get("/docs"))]
    loaded = len(sent)
    unloaded = make_client(monkeypatch, str(tmp_path / "model.joblib"))
    sent += [(path.split("?")[0], "get", unloaded.get(path)) for path in (query(), query(pickup_latitude="abc"),
                                                                        "/health", "/model")]
    statuses = set()
    for index, (path, method, response) in enumerate(sent):
        documented = spec["paths"][path.split("?")[0]][method]["responses"][str(response.status_code)]
        statuses.add(response.status_code)
        content = documented["content"][response.mimetype]
        if response.mimetype == "application/json":
            spec_validator(spec, content["schema"]).validate(response.get_json())
        headers = {name.lower(): header for name, header in documented.get("headers", {}).items()}
        expected = {name for name, header in headers.items() if header.get("required") or index < loaded}
        assert expected <= {name.lower() for name, _ in response.headers}, (path, response.status_code)
        for name in expected:
            value = response.headers[name]
            schema = headers[name]["schema"]
            spec_validator(spec, schema).validate(int(value) if schema.get("type") == "integer" else value)
        if response.status_code == 503 and path != "/health":
            assert set(headers) == {"retry-after"}, path  # no model yet: when to retry, no version
            assert headers["retry-after"]["schema"] == {"type": "integer"}  # whole seconds
            assert int(response.headers["Retry-After"]) >= 1
        elif "x-model-version" in headers:
            assert headers["x-model-version"]["schema"]["type"] == "string"
    assert statuses == {200, 400, 404, 413, 414, 503}
    answers = spec["paths"]["/predict"]
    for wrong in ({"fare": "12.50"}, {"fare": 12.5, "range": 80}, {"predictions": [12.5]}):
        assert not spec_validator(spec, answers["get"]["responses"]["200"]["content"]["application/json"]["schema"])\
            .is_valid(wrong), wrong
    schemas = spec["components"]["schemas"]
    assert not spec_validator(spec, schemas["Predictions"]).is_valid({"predictions": ["12.50"]})
    assert not spec_validator(spec, schemas["Replies"]).is_valid({"replies": [{"fare": 12.5}]})


def test_every_error_example_in_the_spec_is_the_functions_own_answer(client, monkeypatch, tmp_path):
    from tests.conftest import make_client

    spec = client.get("/openapi.json").get_json()
    shown = {(status, name): example["value"] for operations in spec["paths"].values()
             for operation in operations.values() for status, answer in operation["responses"].items()
             if status >= "400" for name, example in answer.get("content", {}).get("application/json", {})
             .get("examples", {}).items() if name in ("error", "outside the service area")}  # /health's are its own
    answers = {"400": client.get(query(pickup_latitude="abc")),
               "404": client.post("/v1/models/my%20model:predict", json={"instances": [RIDE]}),
               "413": client.post("/predict", environ_overrides={"CONTENT_LENGTH": "9000000"}),
               "414": client.get("/predict?" + "a" * 20_000),
               "503": make_client(monkeypatch, str(tmp_path / "model.joblib")).get(query())}
    outside = client.get(query(pickup_latitude=40.3, pickup_longitude=-73.3))
    assert {key[0] for key in shown} == set(answers)
    assert {name for status, name in shown if status == "400"} == {"error", "outside the service area"}
    for (status, name), value in shown.items():
        answer = outside if name == "outside the service area" else answers[status]
        assert (answer.status_code, answer.get_json()) == (int(status), value), (status, name)


ABSOLUTE_URL = re.compile(r"""(?:\b(?:src|href|action|poster)\s*=\s*["']?|url\(\s*["']?|@import\s+["']?|"""
                          r"""tileLayer\(\s*["'])((?:https?:)?//[^"'\s)>]+)""", re.IGNORECASE)
OPENSTREETMAP_HOSTS = {"tile.openstreetmap.org", "www.openstreetmap.org"}
LEAFLET = Path(__file__).parents[1] / "taxifare" / "serving" / "static" / "leaflet"


def test_docs_page_loads_only_its_own_files_except_map_tiles(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    html = response.get_data(as_text=True)
    assert "<form" in html and "openapi.json" in html and "__PLACES__" not in html
    hosts = {urlsplit(url if url.startswith("http") else "http:" + url).hostname for url in ABSOLUTE_URL.findall(html)}
    assert hosts == OPENSTREETMAP_HOSTS  # the optional street tiles and their attribution, nothing else
    for asset, mimetype, source in (("leaflet.js", "text/javascript", LEAFLET / "leaflet.js"),
                                    ("leaflet.css", "text/css", LEAFLET / "leaflet.css"),
                                    ("boroughs.geojson", "application/geo+json", places.BOROUGHS_PATH)):
        served = client.get(f"/docs/{asset}")
        assert served.status_code == 200 and served.mimetype == mimetype
        assert served.data == source.read_bytes()
        assert served.headers["Cache-Control"] == "public, max-age=86400"
        assert served.headers["Access-Control-Allow-Origin"] == "*"
        assert f'"docs/{asset}"' in html


# --- logging ------------------------------------------------------------------------------

def test_one_json_log_line_per_request_without_coordinates(capsys, client, trained_model):
    _, result = trained_model  # capsys first: it also captures the client's model load (its log line)
    client.get(query(), headers={"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"})
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # every line is JSON
    assert any(e["severity"] == "INFO" and e["message"].startswith("loaded model") for e in entries)
    lines = [json.dumps(e) for e in entries if "httpRequest" in e]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["severity"] == "INFO"
    assert entry["httpRequest"]["status"] == 200 and entry["httpRequest"]["requestUrl"] == "/predict"
    assert entry["model_version"] == result.metadata["model_version"]
    assert entry["logging.googleapis.com/trace"].endswith("105445aa7843bc8bf206b12000100000")
    assert float(entry["httpRequest"]["latency"].rstrip("s")) < 1
    assert "40.78" not in lines[0] and "-73.95" not in lines[0]


def test_refused_requests_log_a_warning(client, capsys):
    client.get(query(pickup_latitude="x"))
    entry = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert entry["severity"] == "WARNING" and entry["httpRequest"]["status"] == 400


def test_the_log_line_counts_the_rides_priced_and_none_for_other_answers(client, capsys, monkeypatch, tmp_path):
    """`rows` is what an operator sums to count fares served: only an answer with fares counts any."""
    from tests.conftest import make_client

    client.get(query())
    capsys.readouterr()
    client.get(query())
    client.post("/predict", json={"instances": [RIDE, RIDE, RIDE]})
    client.options("/predict")
    client.get("/")
    client.get(query(pickup_latitude="x"))
    client.get(query(range="abc"))
    client.put("/predict")
    client.get("/nowhere")
    client.options("/health")
    client.delete("/health")
    client.get("/health")
    make_client(monkeypatch, str(tmp_path / "missing.joblib")).get(query())  # 503: no model
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(entry["httpRequest"]["status"], entry["rows"]) for entry in lines if "httpRequest" in entry] == [
        (200, 1), (200, 3), (204, 0), (200, 0), (400, 0), (400, 0), (405, 0), (404, 0), (204, 0), (405, 0), (200, 0),
        (503, 0)]


# --- strict where the contract is strict; limits that act before work grows ----------------

def test_a_json_key_given_twice_is_refused_like_a_repeated_query_field(client):
    body = '{"passenger_count": 99, ' + json.dumps(RIDE)[1:]  # passenger_count twice, the last one valid
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid ride fields", "details": {"passenger_count": "given 2 times"}}


def test_a_repeated_field_does_not_hide_the_rows_other_errors(client):
    ride = {key: value for key, value in RIDE.items() if key != "passenger_count"}
    body = '{"pickup_datetime": "2013-07-06 17:18:00", ' + json.dumps(ride)[1:]
    response = client.post("/", data=body, content_type="application/json")
    assert response.get_json()["details"] == {"pickup_datetime": "given 2 times", "passenger_count": "missing"}


def test_an_alias_given_twice_in_json_is_refused_under_the_fields_name(client):
    ride = {key: value for key, value in RIDE.items() if key != "pickup_latitude"}
    body = '{"lat1": 40.7, "lat1": 40.71, ' + json.dumps(ride)[1:]
    response = client.post("/", data=body, content_type="application/json")
    assert response.get_json() == {"error": "invalid ride fields", "details": {"pickup_latitude": "given 2 times"}}


def test_a_repeated_key_in_a_batch_names_the_row(client):
    body = '{"instances": [' + json.dumps(RIDE) + ', {"pickup_latitude": 1, ' + json.dumps(RIDE)[1:] + "]}"
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid ride fields: 1 row refused",
                                   "details": {"instances[1].pickup_latitude": "given 2 times"}, "refused_rows": 1}


def test_a_repeated_batch_envelope_is_refused(client):
    body = '{"instances": [], "instances": [' + json.dumps(RIDE) + "]}"
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "repeated fields", "details": {"instances": "given 2 times"}}


@pytest.mark.parametrize("send", ["query", "json"])
@pytest.mark.parametrize(("field", "value"), [("pickup_datetime", "2013-07-06 17:18:00\x00"),
                                              ("pickup_latitude", "40.78\x00"), ("pickup_datetime", "2013-07-06\n")])
def test_control_characters_are_refused_naming_the_field(client, send, field, value):
    if send == "query":
        response = client.get(query(**{field: value}))  # urlencode sends \x00 as %00
    else:
        response = client.post("/", json={**RIDE, field: value})
    assert_rejected(response, 400, field, "control character")


@pytest.mark.parametrize(("send", "fields", "status", "where"), [
    ("query", 100, 400, "query_string"), ("query", 20_000, 414, "query_string"), ("form", 100_000, 400, "form")])
def test_too_many_fields_are_refused_before_parsing(client, send, fields, status, where):
    text = "&".join(["a"] * fields)
    response = client.get("/predict?" + text) if send == "query" else \
        client.post("/", data=text, content_type="application/x-www-form-urlencoded")
    assert_rejected(response, status, where)


@pytest.mark.parametrize("send", ["query", "form"])
def test_the_field_cap_takes_64_fields_and_refuses_65(client, send):
    from taxifare.serving.request_parsing import MAX_FIELDS

    def sent(fields: int):
        text = urlencode(RIDE) + "".join(f"&key{index}=1" for index in range(fields - len(RIDE)))
        return client.get("/predict?" + text) if send == "query" else \
            client.post("/", data=text, content_type="application/x-www-form-urlencoded")

    assert sent(MAX_FIELDS).get_json() == {"fare": fare_of(client, query())}
    where = "query string" if send == "query" else "form"
    assert sent(MAX_FIELDS + 1).get_json() == {"error": f"too many fields in the {where}", "details": {
        where.replace(" ", "_"): f"{MAX_FIELDS + 1} fields, at most {MAX_FIELDS} (a ride has 6)"}}


def test_the_query_string_cap_takes_its_bytes_and_refuses_one_more(client):
    from taxifare.serving.request_parsing import MAX_QUERY_BYTES

    ride = urlencode(RIDE) + "&key="
    at_cap = ride + "k" * (MAX_QUERY_BYTES - len(ride))
    assert client.get("/predict?" + at_cap).get_json() == {"fare": fare_of(client, query())}
    response = client.get("/predict?" + at_cap + "k")
    assert response.status_code == 414
    assert response.get_json() == {"error": "query string too long", "details": {
        "query_string": f"{MAX_QUERY_BYTES + 1:,} bytes, at most {MAX_QUERY_BYTES:,}"}}


def test_a_ride_with_a_few_extra_fields_is_still_priced(client):
    assert fare_of(client, query(key="2013-07-06 17:18:00.1", source="notebook")) == fare_of(client, query())


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"instances": [' + b"{}," * 20_000 + b"{}]}", "JSON objects and arrays"),
    (b"[" + b"1," * 200_000 + b"1]", "JSON values"),
])
def test_json_that_would_amplify_memory_is_refused_before_parsing(client, body, reason):
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert reason in response.get_json()["error"]


def test_a_long_path_is_logged_cut_short(client, capsys):
    capsys.readouterr()
    assert client.get("/" + "a" * 300_000).status_code == 404
    line = next(line for line in capsys.readouterr().out.splitlines() if '"httpRequest"' in line)
    assert len(line) < 2_000 and "more characters]" in json.loads(line)["httpRequest"]["requestUrl"]



# --- forgiving where it is safe, precise where it is not ----------------------------------

@pytest.mark.parametrize("lead", ["", "\n", " \t\r\n"])
def test_json_sent_as_a_form_is_read_as_json(client, lead):
    """curl -d '{...}' without -H 'Content-Type: application/json' sends a form header (a heredoc adds a newline)."""
    response = client.post("/", data=lead + json.dumps(RIDE), content_type="application/x-www-form-urlencoded")
    assert response.get_json() == {"fare": fare_of(client, query())}


@pytest.mark.parametrize("content_type", [None, "application/json", "application/x-www-form-urlencoded"])
def test_a_post_without_a_body_is_read_from_its_query_string(client, content_type):
    """curl -X POST 'URL?pickup_latitude=...' and the like: the ride is in the URL, as for a GET."""
    response = client.post(query(), content_type=content_type)
    assert response.get_json() == {"fare": fare_of(client, query())}


def test_a_get_is_priced_from_its_url_and_any_body_it_carries_is_ignored(client):
    """A GET's body has no meaning (RFC 9110 §9.3.1): the ride is the one in the URL, as every cache would assume."""
    body = {"data": json.dumps({"instances": [RIDE, RIDE]}), "content_type": "application/json"}
    response = client.get(query(), **body)
    assert response.get_json() == {"fare": fare_of(client, query())}
    head = client.head(query(), **body)  # HEAD answers as GET would, without the body
    assert (head.status_code, head.headers["Content-Length"]) == (200, response.headers["Content-Length"])


def test_a_json_array_sent_as_a_form_is_read_as_json(client):
    """curl -d '[...]': JSON, not a form; so the answer is the JSON one, naming what the body should be."""
    response = client.post("/", data=json.dumps([RIDE]), content_type="application/x-www-form-urlencoded")
    assert response.get_json() == {"error": BODY_ERROR, "details": {"body": "got a JSON array"}}


@pytest.mark.parametrize(("field", "edge"), [("pickup_latitude", 40.0), ("pickup_latitude", 42.0),
                                             ("pickup_longitude", -74.3), ("pickup_longitude", -72.9)])
def test_a_point_on_the_service_box_edge_is_inside_the_box_and_left_to_the_models_area(client, field, edge):
    """The box's bounds are inclusive: at the edge, the ride is priced or refused by the model's finer area."""
    answer = client.get(query(**{field: edge})).get_json()
    assert list(answer) == ["fare"] or list(answer["details"]) == ["pickup"], answer


@pytest.mark.parametrize("content_type", [None, "application/json", "application/x-www-form-urlencoded"])
def test_a_post_with_neither_body_nor_query_string_is_told_the_body_is_empty(client, content_type):
    """Not six "missing" fields: what is missing is the body."""
    response = client.post("/", content_type=content_type)
    assert (response.status_code, response.get_json()) == (
        400, {"error": f"expected {EXPECTED_BODY}", "details": {"body": "empty"}})


def test_a_misspelt_field_is_named_in_the_error(client):
    ride = {key: value for key, value in RIDE.items() if key != "pickup_latitude"}
    response = client.get("/predict?" + urlencode({**ride, "pickup_lat": RIDE["pickup_latitude"]}))
    assert_rejected(response, 400, "pickup_latitude", 'you sent "pickup_lat": did you mean pickup_latitude?')


@pytest.mark.parametrize(("value", "shown"), [(True, "not a number: true"), (None, "not a number: null")])
def test_errors_quote_values_as_json(client, value, shown):
    assert_rejected(client.post("/", json={**RIDE, "pickup_latitude": value}), 400, "pickup_latitude", shown)


@pytest.mark.parametrize(("value", "shown"), [
    ("x" * 38, '"' + "x" * 38 + '"'),  # 40 characters in JSON: shown whole
    ("x" * 39, '"' + "x" * 36 + "..."),  # 41: cut to 40, the cut marked
    ("x" * 5000, '"' + "x" * 36 + "..."),
    ("fünf", '"fünf"'),  # as the client wrote it, not "f\u00fcnf"
])
def test_errors_show_at_most_40_characters_of_a_value_as_written(client, value, shown):
    """An error never echoes a whole payload back, and what it shows reads as the client typed it."""
    response = client.post("/", json={**RIDE, "passenger_count": value})
    assert response.get_json()["details"] == {"passenger_count": f"not a number: {shown}"}


def test_quoting_a_value_json_cannot_write_never_fails():
    """Error messages must not become 500s: whatever a future caller quotes is shown, as its str()."""
    assert quoted(Decimal("2.50")) == '"2.50"'


def test_json_answers_end_with_a_newline_and_read_like_the_readme(client):
    assert client.get("/").get_data() == b'{"greeting": "Hello"}\n'
    assert client.get(query()).get_data(as_text=True) == f'{{"fare": {fare_of(client, query())}}}\n'


def test_preflight_advertises_only_the_methods_a_path_takes(client):
    for path, allow in (("/health", "GET, OPTIONS"), ("/predict", "GET, POST, OPTIONS")):
        headers = client.options(path).headers
        assert (headers["Access-Control-Allow-Methods"], headers["Allow"]) == (allow, allow), path
    assert client.options("/nowhere").status_code == 404


# --- the safety net: what no input should ever cause is still a plain 500 -----------------------

def test_an_unexpected_error_is_a_plain_500_with_cors_and_one_logged_trace(client, capsys, monkeypatch):
    """A fault injected where no input can reach (pricing raises): the net in api.handle answers it."""
    from taxifare.serving import api

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /work/x.py")

    monkeypatch.setattr(api, "price", broken)
    capsys.readouterr()
    response = client.get(query())
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error", "details": {}}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Model-Version"]
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    traces = [entry for entry in entries if "Traceback" in entry["message"]]
    assert len(traces) == 1 and traces[0]["severity"] == "ERROR"
    assert traces[0]["message"].startswith("unhandled error on GET /predict\n")
    assert "RuntimeError: secret internals" in traces[0]["message"]
    (request,) = [entry for entry in entries if "httpRequest" in entry]
    assert (request["severity"], request["httpRequest"]["status"], request["error"], request["rows"]) == (
        "ERROR", 500, "RuntimeError", 0)  # no fare was served
    monkeypatch.undo()
    assert client.get(query()).status_code == 200  # the next request is answered as usual


# --- a chunked upload (no Content-Length) is capped while it is read -----------------------------

@pytest.mark.parametrize(("size", "status"), [(MAX_BODY_BYTES, 400), (MAX_BODY_BYTES + 1, 413)])
def test_a_chunked_body_over_the_cap_is_413_while_one_at_the_cap_is_read(client, size, status):
    """gunicorn passes a chunked body on with wsgi.input_terminated and no length: only the read can cap it."""
    body = io.BytesIO(b" " * size)  # blanks: at the cap it is read whole, then found empty
    response = client.post("/", input_stream=body, content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"}, environ_base={"wsgi.input_terminated": True})
    assert response.status_code == status
    if status == 413:
        assert response.get_json() == {
            "error": "the body is over the limit of 3,145,728 bytes: one request takes at most 10,000 rides",
            "details": {"body": "at most 3,145,728 bytes; split the rides into requests of at most 10,000"}}
    else:
        assert response.get_json() == {"error": f"expected {EXPECTED_BODY}", "details": {"body": "empty"}}


# --- a body that cannot be read is the client's doing: 400 saying why, never a 500 --------------------------

class FailingUpload(io.RawIOBase):
    """An upload whose connection fails after its first bytes, as a socket error or a stall would."""

    def __init__(self, error: Exception):
        self.error, self.started = error, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.started:
            raise self.error
        self.started = True
        buffer[:8] = b'{"pickup'
        return 8


@pytest.mark.parametrize(("error", "reason"), [
    (ConnectionResetError(104, "Connection reset by peer"), "transfer failed (ConnectionResetError)"),
    (TimeoutError("timed out"), f"not received within {BODY_READ_TIMEOUT_SECONDS:g} s")])
def test_an_upload_that_fails_midway_is_a_400_saying_why(client, error, reason):
    response = client.post("/", content_type="application/json", headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input": FailingUpload(error), "wsgi.input_terminated": True})
    assert response.status_code == 400
    assert response.get_json() == {"error": "the request body could not be read", "details": {"body": reason}}


def test_an_upload_cut_short_of_its_declared_length_is_a_400_saying_how_far_it_got(client):
    """gunicorn passes a Content-Length body on unwrapped (wsgi.input_terminated): only the count shows it ended early."""
    response = client.post("/", content_type="application/json", environ_overrides={
        "wsgi.input": io.BytesIO(b'{"pickup_datetime": "2013'), "CONTENT_LENGTH": "1000", "wsgi.input_terminated": True})
    assert response.status_code == 400
    assert response.get_json() == {"error": "the request body could not be read",
                                   "details": {"body": "transfer failed: the upload ended after 25 of 1,000 bytes"}}


def test_a_stalled_upload_on_gunicorns_socket_times_out_and_the_socket_keeps_its_own_timeout(client, monkeypatch):
    """Each read on the connection's socket is bounded (BODY_READ_TIMEOUT_SECONDS; shortened here), and the socket gets
    its previous timeout back for the connection's next request."""
    monkeypatch.setattr(request_parsing, "BODY_READ_TIMEOUT_SECONDS", 0.2)
    server_side, client_side = socket.socketpair()
    hang_up = threading.Timer(5, client_side.close)  # were the read unbounded, the upload would end here instead
    with server_side, client_side:
        server_side.settimeout(30.0)
        client_side.sendall(b'{"pickup')  # and nothing more
        hang_up.start()
        try:
            response = client.post("/", content_type="application/json", headers={"Transfer-Encoding": "chunked"},
                                   environ_overrides={"wsgi.input": server_side.makefile("rb", buffering=0),
                                                      "wsgi.input_terminated": True, "gunicorn.socket": server_side})
        finally:
            hang_up.cancel()
        assert response.get_json() == {"error": "the request body could not be read",
                                       "details": {"body": "not received within 0.2 s"}}
        assert server_side.gettimeout() == 30.0


# --- pages: the exact answers of a method or path the router does not take, and of a missing model -----

@pytest.mark.parametrize(("method", "path", "allow"), [
    ("put", "/predict", "GET, POST, OPTIONS"), ("delete", "/v1/models/taxifare:predict", "GET, POST, OPTIONS"),
    ("post", "/health", "GET, OPTIONS"), ("put", "/docs/leaflet.js", "GET, OPTIONS"),
])
def test_a_method_a_path_does_not_take_is_405_naming_those_it_does(client, method, path, allow):
    response = getattr(client, method)(path)
    assert (response.status_code, response.headers["Allow"]) == (405, allow)
    assert response.get_json() == {"error": f"method {method.upper()} is not allowed on {path}",
                                   "details": {"method": f"use {allow}"}}


def test_an_unknown_path_is_quoted_up_to_100_characters(client):
    path = "/" + "x" * 300
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json() == {"error": f"no such endpoint: {path[:100]}", "details": {"path": "see /docs for the API"}}


@pytest.mark.parametrize("path", ["/health", "/model", "/model/area"])
def test_health_metadata_and_area_are_503_with_the_reason_until_a_model_loads(monkeypatch, tmp_path, path):
    from tests.conftest import make_client

    response = make_client(monkeypatch, str(tmp_path / "model.joblib")).get(path)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "1")
    reason = "model file not found at the configured MODEL_URI"
    assert response.get_json() == ({"status": "unavailable", "reason": reason} if path == "/health" else
                                   {"error": "model unavailable, retry shortly", "details": {"model": reason}})


def test_a_model_without_model_json_or_service_area_serves_what_its_bytes_say(monkeypatch, tmp_path, model_path):
    """An older model: /model gives the version and digest derived from the bytes, /model/area a 404 saying why."""
    import dataclasses

    from taxifare.model import loading
    from tests.conftest import make_client

    data = loading.dumps(dataclasses.replace(loading.loads(Path(model_path).read_bytes()), service_area=None))
    (tmp_path / "model.joblib").write_bytes(data)
    client = make_client(monkeypatch, str(tmp_path / "model.joblib"))
    digest = loading.sha256_hex(data)
    assert client.get("/model").get_json() == {"model_version": f"sha256-{digest[:12]}", "sha256": digest}
    area = client.get("/model/area")
    assert area.status_code == 404
    assert area.get_json() == {"error": "this model has no service area: it prices the whole service box",
                               "details": {"path": "see /model"}}
    open_water = query(pickup_latitude=40.3, pickup_longitude=-73.3)  # inside the box, outside any ride's area
    assert [client.get(ride).status_code for ride in (query(), open_water)] == [200, 200]


# --- JSON of the wrong kind: the exact answer names the kind it got ------------------------------------

BODY_ERROR = 'expected a JSON object: the six ride fields, {"instances": [rides]} or {"calls": [[six values]]}'


@pytest.mark.parametrize(("value", "kind"), [([1], "array"), (True, "boolean"), (5, "number"), (1.5, "number"),
                                             ("x", "string")])
def test_a_body_of_the_wrong_json_kind_is_named(client, value, kind):
    response = client.post("/", json=value)
    assert response.status_code == 400
    assert response.get_json() == {"error": BODY_ERROR, "details": {"body": f"got a JSON {kind}"}}


@pytest.mark.parametrize(("value", "kind"), [({}, "object"), (True, "boolean"), (None, "null"), (5, "number"),
                                             ("x", "string")])
def test_instances_of_the_wrong_json_kind_are_named(client, value, kind):
    response = client.post("/", json={"instances": value})
    assert response.status_code == 400
    assert response.get_json() == {"error": "instances must be a JSON array", "details": {"instances": f"got a JSON {kind}"}}


def test_parameters_of_the_wrong_json_kind_are_named(client):
    response = client.post("/", json={"instances": [RIDE], "parameters": [80]})
    assert response.status_code == 400
    assert response.get_json() == {"error": "parameters must be a JSON object",
                                   "details": {"parameters": 'got a JSON array; expected e.g. {"range": 80}'}}


# --- BigQuery's errors come back as its errorMessage, naming the calls ---------------------------------

BIGQUERY_CALL = [RIDE[name] for name in ("pickup_datetime", "pickup_longitude", "pickup_latitude", "dropoff_longitude",
                                         "dropoff_latitude", "passenger_count")]


def test_bigquery_calls_given_twice_are_one_error_message(client):
    body = f'{{"calls": [{json.dumps(BIGQUERY_CALL)}], "calls": [{json.dumps(BIGQUERY_CALL)}]}}'
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"errorMessage": "repeated fields: calls: given 2 times"}


def test_malformed_bigquery_calls_are_named_and_counted_in_the_error_message(client):
    response = client.post("/", json={"calls": [BIGQUERY_CALL, [1, 2], "x", [*BIGQUERY_CALL, 1]]})
    assert response.status_code == 400
    six = ("expected an array of 6 values (pickup_datetime, pickup_longitude, pickup_latitude, dropoff_longitude, "
           "dropoff_latitude, passenger_count)")
    assert response.get_json() == {
        "errorMessage": f"malformed calls: 3 rows refused: calls[1]: {six}; calls[2]: {six}; calls[3]: {six}"}
    null = client.post("/", json={"calls": None})
    assert null.get_json() == {"errorMessage": "calls must be a JSON array: calls: got a JSON null"}


def test_a_blank_form_field_is_refused_as_not_a_number_not_as_missing(client):
    form = {**RIDE, "passenger_count": ""}
    response = client.post("/", data=urlencode(form), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid ride fields", "details": {"passenger_count": 'not a number: ""'}}


def test_unknown_keys_beside_instances_are_named_with_what_a_batch_takes(client):
    response = client.post("/", json={"instances": [RIDE], "extra": 1})
    assert response.status_code == 400
    assert response.get_json() == {"error": "unknown keys in the batch", "details": {
        "extra": "unknown: a batch takes only instances, parameters, range, explain"}}


@pytest.mark.parametrize(("field", "value"), [("passenger_count", True), ("passenger_count", 1.5),
                                              ("passenger_count", "1"), ("pickup_latitude", "40.78"),
                                              ("pickup_latitude", False)])
@pytest.mark.parametrize("ride", [RIDE, {name: str(value) for name, value in RIDE.items()}],
                         ids=["numbers", "numbers in strings"])
def test_a_batch_answers_each_row_as_the_lone_ride_is_answered(client, field, value, ride):
    """Every row of the batch has the value: the vectorised batch check must neither let through what a ride may
    not send (a boolean, a fraction of a passenger) nor refuse what it may (a number in a string)."""
    alone = client.post("/", json={**ride, field: value})
    batch = client.post("/", json={"instances": [{**ride, field: value}] * 2})
    if alone.status_code == 200:
        assert batch.get_json() == {"predictions": [alone.get_json()["fare"]] * 2}
        return
    reason = alone.get_json()["details"][field]
    assert batch.status_code == 400
    assert batch.get_json() == {"error": "invalid ride fields: 2 rows refused",
                                "details": {f"instances[{row}].{field}": reason for row in range(2)}, "refused_rows": 2}


def test_an_empty_batch_is_refused_in_the_callers_convention(client):
    assert client.post("/", json={"instances": []}).get_json() == {
        "error": "instances is empty: send at least one ride", "details": {"instances": "empty"}}
    assert client.post("/", json={"calls": []}).get_json() == {
        "errorMessage": "calls is empty: send at least one ride: calls: empty"}


def test_bigquery_calls_over_the_cap_are_a_413_error_message(client):
    response = client.post("/", json={"calls": [BIGQUERY_CALL] * (MAX_ROWS + 1)})
    assert response.status_code == 413
    assert response.get_json() == {
        "errorMessage": "10,001 calls is over the cap of 10,000 per request; split the batch: calls: at most 10,000"}


def test_a_bad_range_is_named_where_it_was_given_in_the_callers_convention(client):
    coverage = 'a coverage in percent, such as 80; got "x"'
    assert client.post("/", json={"instances": [RIDE], "parameters": {"range": "x"}}).get_json() == {
        "error": "invalid range", "details": {"parameters.range": coverage}}
    assert client.post("/", json={"calls": [BIGQUERY_CALL], "userDefinedContext": {"range": "x"}}).get_json() == {
        "errorMessage": f"invalid range: userDefinedContext.range: {coverage}"}
    assert client.post("/", json={"calls": [BIGQUERY_CALL], "userDefinedContext": [80]}).get_json() == {
        "errorMessage": 'userDefinedContext must be a JSON object: userDefinedContext: got a JSON array; expected e.g. '
                        '{"range": 80}'}


@pytest.mark.parametrize("over", [0, 1])
def test_the_json_container_cap_refuses_one_over_and_not_the_cap(client, over):
    from taxifare.serving.request_parsing import MAX_JSON_CONTAINERS

    inner = MAX_JSON_CONTAINERS - 2 + over  # the envelope's object and array, then one array per ride
    response = client.post("/", data=b'{"instances": [' + b"[]," * (inner - 1) + b"[]]}", content_type="application/json")
    assert response.status_code == 413
    if over:
        assert response.get_json() == {
            "error": f"a body of {MAX_JSON_CONTAINERS + 1:,} JSON objects and arrays is over the limit of "
                     f"{MAX_JSON_CONTAINERS:,} (one per ride): one request takes at most 10,000 rides",
            "details": {"body": f"at most {MAX_JSON_CONTAINERS:,} (one per ride); split the rides into requests of "
                                "at most 10,000"}}
    else:  # parsed: refused for its rows, not for its containers
        assert response.get_json()["error"] == f"{inner:,} instances is over the cap of 10,000 per request; split the batch"


@pytest.mark.parametrize("over", [0, 1])
def test_the_json_value_cap_refuses_one_over_and_not_the_cap(client, over):
    from taxifare.serving.request_parsing import MAX_JSON_VALUES

    values = MAX_JSON_VALUES + over
    response = client.post("/", data=b"[" + b"1," * (values - 1) + b"1]", content_type="application/json")
    if over:
        assert response.status_code == 413
        assert response.get_json() == {
            "error": f"a body of {values:,} JSON values is over the limit of {MAX_JSON_VALUES:,}: one request takes "
                     "at most 10,000 rides",
            "details": {"body": f"at most {MAX_JSON_VALUES:,}; split the rides into requests of at most 10,000"}}
    else:  # parsed: refused for being an array, not for its values
        assert response.status_code == 400 and response.get_json()["details"] == {"body": "got a JSON array"}


def test_a_range_given_twice_in_parameters_is_named_in_the_callers_convention(client):
    ride, call = json.dumps(RIDE), json.dumps(BIGQUERY_CALL)
    batch = client.post("/", data=f'{{"instances": [{ride}], "parameters": {{"range": 80, "range": 80}}}}',
                        content_type="application/json")
    assert batch.get_json() == {"error": "repeated fields", "details": {"parameters.range": "given 2 times"}}
    bigquery = client.post("/", data=f'{{"calls": [{call}], "userDefinedContext": {{"range": 80, "range": 80}}}}',
                           content_type="application/json")
    assert bigquery.get_json() == {"errorMessage": "repeated fields: userDefinedContext.range: given 2 times"}


def test_a_range_given_twice_in_the_query_beside_a_body_is_refused(client):
    response = client.post("/?range=80&range=80", json={"instances": [RIDE]})
    assert response.status_code == 400
    assert response.get_json() == {"error": "repeated fields", "details": {"?range": "given 2 times"}}


def test_a_declared_body_at_the_cap_is_read_not_refused(client):
    response = client.post("/", data=b" " * MAX_BODY_BYTES, content_type="application/json")
    assert response.status_code == 400 and response.get_json() == {"error": f"expected {EXPECTED_BODY}",
                                                                   "details": {"body": "empty"}}


def test_a_bigquery_call_before_a_model_loads_is_a_503_error_message_saying_when_to_retry(monkeypatch, tmp_path):
    from tests.conftest import make_client

    response = make_client(monkeypatch, str(tmp_path / "model.joblib")).post("/", json={"calls": [BIGQUERY_CALL]})
    assert (response.status_code, response.headers["Retry-After"]) == (503, "1")
    assert response.get_json() == {"errorMessage": "model unavailable, retry shortly: model: model file not found at "
                                                   "the configured MODEL_URI"}
