"""The OpenAPI 3.1 description of the API, served at /openapi.json and rendered by /docs.

Every operation carries its examples (requests and answers): /docs shows and tries exactly these,
so the page cannot drift from the document, and tests/test_docs_page.py checks it shows them all.
"""

from functools import cache
from urllib.parse import urlencode

from taxifare import __version__
from taxifare.model.breakdown import BASE, PARTS
from taxifare.model.fare_model import RANGE_COVERAGES
from taxifare.model.schema import INPUT_COLUMNS, LATITUDE_RANGE, LONGITUDE_RANGE, PASSENGER_RANGE
from taxifare.serving.examples import (
    AIRPORT_FARE,
    AIRPORT_RIDE,
    EXAMPLE_BREAKDOWN,
    EXAMPLE_FARE,
    EXAMPLE_RANGE,
    EXAMPLE_RIDE,
    as_call,
)
from taxifare.serving.request_parsing import (
    EXPLAIN_FIELD,
    FORM_TYPE,
    MAX_BODY_BYTES,
    MAX_FIELDS,
    MAX_QUERY_BYTES,
    MAX_ROWS,
    PARAMETERS,
    RANGE_FIELD,
)
from taxifare.serving.responses import MODEL_VERSION_HEADER
from taxifare.serving.ride_time import EXAMPLE
from taxifare.serving.validation import ALIASES, AREA_PATH, MAX_REPORTED_ERRORS

DATETIME_HELP = ("Pickup date and time. Naive = New York local time; ' UTC' suffix = UTC (Kaggle format); ISO 8601 "
                 "with 'T', an offset or 'Z' accepted. A date alone is refused (fares depend on the hour): write "
                 "midnight out, '2013-07-06 00:00:00'. DST: a time in the spring gap keeps the pre-jump offset, an "
                 "ambiguous autumn time is its first (EDT) occurrence. Years 2009-2099; rides after the serving model's "
                 "last training ride (GET /model: data.pickup_times.last) are priced at the rates of the data's last "
                 "months.")
RANGE_HELP = ("Opt-in fare range: the coverage in percent (e.g. 80: the range holds 80% of real fares, calibrated on "
              "held-out rides). The serving model's choices are in /model's range_coverages ("
              f"{', '.join(map(str, RANGE_COVERAGES[:-1]))} and {RANGE_COVERAGES[-1]} by default); without it the "
              "answer is the fare alone. One range a request, given anywhere a caller would "
              "put it: a ride's 'range' (query, form, JSON) or its 'parameters': {'range'}; a batch's "
              "'parameters': {'range'} (Vertex AI), 'range' beside 'instances', or 'range' in instances (those that "
              "give it must agree; every ride then gets a range); BigQuery's userDefinedContext.range; or '?range=' "
              "in the URL of any POST. Places that disagree, or a misspelt option ('rnage'), are a 400.")
RANGE_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 99, "description": RANGE_HELP, "example": 80}
EXPLAIN_HELP = ("Opt-in breakdown of each fare: 'explain=1' (true/false, 1/0) adds 'breakdown': the base (the average "
                "fare of the rides the model that priced the ride learned from) and what each group of features adds, "
                "in dollars: " + ", ".join(PARTS[1:]) + ". The parts are exact (path-dependent TreeSHAP on the "
                "model's trees) and their cents add up to the fare's exactly. One setting a request, given anywhere a "
                "range can be (same places, same rules); combinable with range. Without it the answer is unchanged.")
EXPLAIN_SCHEMA = {"type": ["boolean", "integer", "string"], "description": EXPLAIN_HELP, "example": True}
BREAKDOWN_HELP = (f"{BASE}: what the model that priced the ride starts from (the average fare of the rides it learned "
                  "from); each other part: what that group of features adds (negative: takes off), in dollars. They add "
                  "up to the fare, cent for cent: each part is rounded down to the cent, and the cents missing to reach "
                  "the fare's go to the parts that lost most in rounding. A fare set by the long-trip floor is broken "
                  "down as the floor: the ride cut at the reach, plus the per-km part in distance.")
EXAMPLE_VERSION = "20261127-231506-19c3e72d"
KSERVE_MODEL = {"name": "model", "in": "path", "required": True, "description": "any model name (KServe v1 style)",
                "schema": {"type": "string", "pattern": r"^[\w.-]+$", "example": "taxifare"}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _example(summary: str, value: object) -> dict:
    return {"summary": summary, "value": value}


def _coordinate(axis: str, bounds: tuple[float, float], where: str) -> dict:
    return {"type": ["number", "string"],
            "description": f"{where} {axis}, NYC service area {bounds[0]} to {bounds[1]}; the point must also lie in "
                           f"the serving model's area ({AREA_PATH})",
            "minimum": bounds[0], "maximum": bounds[1], "example": EXAMPLE_RIDE[f"{where}_{axis}"]}


def _ride_properties() -> dict:
    return {
        "pickup_datetime": {"type": "string", "description": DATETIME_HELP, "example": EXAMPLE},
        "pickup_longitude": _coordinate("longitude", LONGITUDE_RANGE, "pickup"),
        "pickup_latitude": _coordinate("latitude", LATITUDE_RANGE, "pickup"),
        "dropoff_longitude": _coordinate("longitude", LONGITUDE_RANGE, "dropoff"),
        "dropoff_latitude": _coordinate("latitude", LATITUDE_RANGE, "dropoff"),
        "passenger_count": {"type": ["integer", "string"],
                            "description": f"whole number {PASSENGER_RANGE[0]}-{PASSENGER_RANGE[1]}",
                            "minimum": PASSENGER_RANGE[0], "maximum": PASSENGER_RANGE[1], "example": 1},
    }


def _model_version(required: bool) -> dict:
    """The X-Model-Version response header: on every answer from an instance that has loaded its model."""
    when = "" if required else "; present once the instance has loaded its model (not before: 503)"
    return {MODEL_VERSION_HEADER: {
        "description": f"the version of the model that answered (model.json's model_version, as /health shows it){when}",
        "required": required, "schema": {"type": "string", "example": EXAMPLE_VERSION}}}


def _json(schema: dict, examples: dict | None = None) -> dict:
    return {"application/json": {"schema": schema, **({"examples": examples} if examples else {})}}


ERROR_EXAMPLES = {
    400: {"error": "invalid ride fields", "details": {"pickup_latitude": 'not a number: "abc"'}},
    "outside": {"error": "invalid ride fields", "details": {
        "pickup": f"latitude 40.3, longitude -73.3 is outside the area this model has rides from: it cannot price it "
                  f"(the area: {AREA_PATH})"}},
    404: {"error": "no such endpoint: /v1/models/my model:predict", "details": {"path": "see /docs for the API"}},
    413: {"error": f"a body of 9,000,000 bytes is over the limit of {MAX_BODY_BYTES:,} bytes: one request takes at "
                   f"most {MAX_ROWS:,} rides",
          "details": {"body": f"at most {MAX_BODY_BYTES:,} bytes; split the rides into requests of at most "
                              f"{MAX_ROWS:,}"}},
    414: {"error": "query string too long", "details": {"query_string": "20,000 bytes, at most 16,384"}},
    503: {"error": "model unavailable, retry shortly", "details": {"model": "model file not found at the configured "
                                                                            "MODEL_URI"}},
}


def _errors(*statuses: int) -> dict:
    meaning = {400: f"invalid input: the details name each field and reason (also: a pickup or dropoff outside the "
                    f"model's service area, more than {MAX_FIELDS} fields, a key given twice, a control character, a "
                    "body that could not be read, an unknown key beside instances or in parameters / "
                    "userDefinedContext, ranges or explain settings that disagree); a batch lists its first "
                    f"{MAX_REPORTED_ERRORS} errors and counts every refused row in refused_rows",
               404: "no such endpoint: a model name other than letters, digits, '.', '_' and '-'",
               413: f"body over {MAX_BODY_BYTES:,} bytes, more than {MAX_ROWS:,} rides, or more JSON objects or "
                    "values than that many rides need: split the batch (the answer comes before the body is read, "
                    "and the client may finish sending it)",
               414: f"query string over {MAX_QUERY_BYTES:,} bytes",
               503: "model unavailable; retry after the Retry-After seconds"}
    retry = {"Retry-After": {"description": "seconds until the model is retried", "schema": {"type": "integer"}}}
    examples = {s: {"error": _example(meaning[s].split(":")[0], ERROR_EXAMPLES[s])} for s in statuses}
    if 400 in examples:
        examples[400]["outside the service area"] = _example("a pickup in the Atlantic", ERROR_EXAMPLES["outside"])
    return {str(s): {"description": meaning[s], "content": _json(_ref("Error"), examples[s]),
                     "headers": retry if s == 503 else _model_version(required=False)}
            for s in statuses}


def _query_parameters() -> list[dict]:
    aliases = {canonical: alias for alias, canonical in ALIASES.items()}
    rides = [{"name": name, "in": "query", "required": False,
              "description": f"{_ride_properties()[name]['description']}"
                             + (f" (alias: {aliases[name]})" if name in aliases else ""),
              "schema": {"type": "string"}, "example": str(EXAMPLE_RIDE[name])} for name in INPUT_COLUMNS]
    return [*rides, {"name": RANGE_FIELD, "in": "query", "required": False, "description": RANGE_HELP,
                     "schema": {"type": "string"}, "example": "80"},
            {"name": EXPLAIN_FIELD, "in": "query", "required": False, "description": EXPLAIN_HELP,
             "schema": {"type": "string"}, "example": "1"}]


def _priced() -> dict:
    """One ride's answer: the fare, or the fare with its range, its breakdown or both."""
    return {"oneOf": [{"type": "number"}, _ref("FareWithRange"), _ref("FareExplained")]}


FARE_ANSWERS = {"fare": _example("the fare, in US dollars", {"fare": EXAMPLE_FARE}),
                "fare with range": _example("with range=80", {"fare": EXAMPLE_FARE, "range": EXAMPLE_RANGE}),
                "fare with breakdown": _example("with explain=1", {"fare": EXAMPLE_FARE,
                                                                   "breakdown": EXAMPLE_BREAKDOWN})}
POST_EXAMPLES = {
    "one ride": _example("One ride (what gcloud functions call --data sends)", EXAMPLE_RIDE),
    "one ride with a range": _example("One ride and its 80% fare range", {**EXAMPLE_RIDE, RANGE_FIELD: 80}),
    "one ride with its breakdown": _example("One ride and why it costs what it does",
                                            {**EXAMPLE_RIDE, EXPLAIN_FIELD: True}),
    "instances": _example("A batch, Vertex AI / KServe v1 style (up to 10,000 rides, order kept)",
                          {"instances": [EXAMPLE_RIDE, AIRPORT_RIDE]}),
    "instances with ranges": _example("A batch with an 80% range for each ride",
                                      {"instances": [EXAMPLE_RIDE, AIRPORT_RIDE], "parameters": {RANGE_FIELD: 80}}),
    "bigquery": _example("A BigQuery remote-function call: one array of the six fields per row",
                         {"requestId": "124ab1c", "caller": "//bigquery.googleapis.com/projects/p/jobs/j",
                          "sessionUser": "someone@example.com", "userDefinedContext": {},
                          "calls": [as_call(EXAMPLE_RIDE), as_call(AIRPORT_RIDE)]}),
}
POST_ANSWERS = {
    **FARE_ANSWERS,
    "predictions": _example("for instances", {"predictions": [EXAMPLE_FARE, AIRPORT_FARE]}),
    "replies": _example("for BigQuery calls", {"replies": [EXAMPLE_FARE, AIRPORT_FARE]}),
}


def _one_fare() -> dict:
    """One ride's answer object: the fare alone, with its range, or with its breakdown (and maybe its range)."""
    return {"oneOf": [_ref("Fare"), _ref("FareWithRange"), _ref("FareExplained")]}


@cache
def openapi_spec() -> dict:
    """The whole document (built once)."""
    priced = _model_version(required=True)
    fare = {"200": {"description": "the predicted fare in US dollars (and its range and breakdown, when asked for)",
                    "content": _json(_one_fare(), FARE_ANSWERS),
                    "headers": priced}}
    post_body = {"required": True, "content": {
        **_json({"oneOf": [_ref("Ride"), _ref("Instances"), _ref("BigQueryCalls")]}, POST_EXAMPLES),
        FORM_TYPE: {"schema": _ref("Ride"), "examples": {"form": _example(
            "One ride as an HTML form posts it", urlencode(EXAMPLE_RIDE))}}}}
    post_responses = {"200": {"description": "a fare, predictions or replies, matching the request's shape",
                              "content": _json({"oneOf": [*_one_fare()["oneOf"], _ref("Predictions"),
                                                          _ref("Replies")]}, POST_ANSWERS),
                              "headers": priced},
                      **_errors(400, 413, 414, 503)}
    predict_get = {"summary": "Predict one fare from a query string", "parameters": _query_parameters(),
                   "responses": {**fare, **_errors(400, 414, 503)}}
    predict_post = {"summary": "Predict from JSON or a form: one ride, Vertex/KServe instances, or BigQuery calls",
                    "requestBody": post_body, "responses": post_responses}
    greeting = {"greeting": _example("without parameters", {"greeting": "Hello"}), **FARE_ANSWERS}
    return {
        "openapi": "3.1.0",
        "info": {"title": "taxifare", "version": __version__,
                 "description": "What will this New York taxi ride cost? Fares from a model trained on real NYC rides."},
        "paths": {
            "/": {"get": {**predict_get, "summary": 'With no parameters: {"greeting": "Hello"}; with ride fields: a fare',
                          "responses": {"200": {"description": "greeting or fare", "content": _json(
                              {"oneOf": [_ref("Greeting"), *_one_fare()["oneOf"]]}, greeting),
                              "headers": _model_version(required=False)},
                              **_errors(400, 414, 503)}},
                  "post": predict_post},
            "/predict": {"get": predict_get, "post": predict_post},
            "/v1/models/{model}:predict": {"post": {
                "summary": "KServe v1: the same predictions under a model path", "parameters": [KSERVE_MODEL],
                "requestBody": {"required": True, "content": _json(_ref("Instances"), {
                    key: POST_EXAMPLES[key] for key in ("instances", "instances with ranges")})},
                "responses": {"200": {"description": "one prediction per instance, in order",
                                      "content": _json(_ref("Predictions"), {"predictions": POST_ANSWERS["predictions"]}),
                                      "headers": priced},
                              **_errors(400, 404, 413, 414, 503)}}},
            "/health": {"get": {"summary": "Ready to serve?", "responses": {
                "200": {"description": "model loaded", "content": _json(_ref("Health"), {"ok": _example(
                    "loaded", {"status": "ok", "model_version": EXAMPLE_VERSION, "model_sha256": "19c3e72d..."})}),
                        "headers": priced},
                "503": {"description": "model not loadable yet", "content": _json(_ref("Health"), {"down": _example(
                    "not loaded", {"status": "unavailable", "reason": "model is still loading"})})}}}},
            "/model": {"get": {"summary": "The serving model's metadata (model.json)", "responses": {
                "200": {"description": "metadata: version, data (sources, cleaning, first and last pickup time), "
                                       "features, metrics, importance (the mean absolute dollars each breakdown "
                                       "group adds to the held-out rides' fares: what matters most overall), "
                                       "range_coverages (and range_uncalibrated: coverages too few calibration "
                                       "rides could promise), service_area, long_trips",
                        "content": _json({"type": "object"}), "headers": priced},
                **_errors(503)}}},
            AREA_PATH: {"get": {"summary": "Where the serving model prices rides (GeoJSON)", "responses": {
                "200": {"description": "a GeoJSON Feature (RFC 7946): a MultiPolygon of the cells the training rides "
                                       "reach, widened and joined with the five boroughs, the three airports and the "
                                       "bootcamp's box; a pickup or dropoff outside it is refused with a 400",
                        "content": {"application/geo+json": {"schema": {"type": "object"}}}, "headers": priced},
                "404": {"description": "a model without a service area (trained before it existed)",
                        "content": _json(_ref("Error")), "headers": priced},
                **_errors(503)}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}}}},
            "/docs": {"get": {"summary": "This page: the reference, a fare form and a map", "responses": {
                "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": {
            "Ride": {"type": "object", "properties": {**_ride_properties(), RANGE_FIELD: RANGE_SCHEMA,
                                                      EXPLAIN_FIELD: EXPLAIN_SCHEMA, PARAMETERS: _ref("Parameters")},
                     "required": list(INPUT_COLUMNS),
                     "description": "Other fields are ignored (the bootcamp's key), except a misspelt option: 400"},
            "Parameters": {"type": "object", "properties": {RANGE_FIELD: RANGE_SCHEMA, EXPLAIN_FIELD: EXPLAIN_SCHEMA},
                           "additionalProperties": False},
            "Instances": {"type": "object", "required": ["instances"], "additionalProperties": False, "properties": {
                "instances": {"type": "array", "minItems": 1, "maxItems": MAX_ROWS, "items": _ref("Ride")},
                "parameters": _ref("Parameters"), RANGE_FIELD: RANGE_SCHEMA, EXPLAIN_FIELD: EXPLAIN_SCHEMA}},
            "BigQueryCalls": {"type": "object", "required": ["calls"], "properties": {
                "requestId": {"type": "string"},
                "calls": {"type": "array", "minItems": 1, "maxItems": MAX_ROWS, "items": {
                    "type": "array", "minItems": 6, "maxItems": 6, "description": "[" + ", ".join(INPUT_COLUMNS) + "]"}},
                "userDefinedContext": {"type": "object", "additionalProperties": False, "properties": {RANGE_FIELD: {
                    **RANGE_SCHEMA, "type": "string", "example": "80",
                    "description": "set by the remote function's user_defined_context (deploy.sh: "
                                   "predict_fare_range)"}, EXPLAIN_FIELD: {
                    **EXPLAIN_SCHEMA, "type": "string", "example": "true",
                    "description": "set by the remote function's user_defined_context (deploy.sh: "
                                   "predict_fare_explain)"}}}},
                "description": "Keys other than calls and userDefinedContext are Google's and left alone"},
            "Fare": {"type": "object", "required": ["fare"], "additionalProperties": False,
                     "properties": {"fare": {"type": "number"}}},
            "FareRange": {"type": "object", "required": ["coverage", "low", "high"], "properties": {
                "coverage": {"type": "integer", "description": "percent of real fares the range is calibrated to hold"},
                "low": {"type": "number"}, "high": {"type": "number"}}},
            "FareWithRange": {"type": "object", "required": ["fare", "range"], "additionalProperties": False,
                              "properties": {"fare": {"type": "number"}, "range": _ref("FareRange")}},
            "Breakdown": {"type": "object", "required": list(PARTS), "additionalProperties": False,
                          "description": BREAKDOWN_HELP, "properties": {part: {"type": "number"} for part in PARTS}},
            "FareExplained": {"type": "object", "required": ["fare", "breakdown"], "additionalProperties": False,
                              "description": "the fare with its breakdown (explain), and its range when asked for",
                              "properties": {"fare": {"type": "number"}, "range": _ref("FareRange"),
                                             "breakdown": _ref("Breakdown")}},
            "Predictions": {"type": "object", "required": ["predictions"],
                            "properties": {"predictions": {"type": "array", "items": _priced()}}},
            "Replies": {"type": "object", "required": ["replies"],
                        "properties": {"replies": {"type": "array", "items": _priced()}}},
            "Greeting": {"type": "object", "required": ["greeting"], "properties": {"greeting": {"const": "Hello"}}},
            "Health": {"type": "object", "required": ["status"], "properties": {
                "status": {"enum": ["ok", "unavailable"]}, "model_version": {"type": "string"},
                "model_sha256": {"type": "string"}, "reason": {"type": "string"}}},
            "Error": {"type": "object", "properties": {
                "error": {"type": "string"}, "details": {"type": "object", "additionalProperties": {"type": "string"}},
                "refused_rows": {"type": "integer", "minimum": 1, "description": (
                    f"a batch refused row by row: how many rows were refused in all (details lists the first "
                    f"{MAX_REPORTED_ERRORS} errors; the error message says so too)")},
                "errorMessage": {"type": "string", "description": "BigQuery remote-function callers get this instead"}}},
        }},
    }
