"""Read a flask request into ride records and the shape the caller wants back.

Shapes: one ride from a query string, a form or a JSON object -> {"fare": x}; a Vertex AI /
KServe v1 batch {"instances": [...]} -> {"predictions": [...]}; a BigQuery remote-function batch
{"calls": [[...], ...]} -> {"replies": [...]}. Size limits are enforced before any parsing.
"""

import enum
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import MultiDict

from taxifare.model.schema import INPUT_COLUMNS

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_ROWS = 10_000
FORM_TYPE = "application/x-www-form-urlencoded"
EXPECTED_BODY = 'a JSON object: the six ride fields, {"instances": [rides]} or {"calls": [[six values]]}'


class Shape(enum.Enum):
    """What the caller sent, hence what it expects back."""

    SINGLE = "fare"
    INSTANCES = "predictions"
    BIGQUERY = "replies"


class RequestError(Exception):
    """A request we refuse: HTTP status, a message and per-field details for the caller."""

    def __init__(self, status: int, message: str, details: dict[str, str] | None = None, shape: Shape = Shape.SINGLE):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}
        self.shape = shape


@dataclass
class RideRequest:
    """Records to price (field -> raw value) and the response shape."""

    shape: Shape
    records: list[dict]

    @property
    def row_label(self) -> str | None:
        """How batch errors name a row ("instances[3]..."); None for a single ride."""
        return {Shape.INSTANCES: "instances", Shape.BIGQUERY: "calls"}.get(self.shape)


def fields_from_form(form: MultiDict) -> RideRequest:
    """One ride from a query string or form (a werkzeug MultiDict); repeated fields are refused."""
    repeated = {name: f"given {len(values)} times" for name, values in form.lists() if len(values) > 1}
    if repeated:
        raise RequestError(400, "repeated fields", repeated)
    return RideRequest(Shape.SINGLE, [form.to_dict()])


def json_type(value: object) -> str:
    """JSON's name for a parsed value's type, for messages callers understand."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def read_body(request: Request) -> bytes:
    """The raw body, refusing more than MAX_BODY_BYTES whether or not Content-Length says so."""
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise RequestError(413, f"body of {declared:,} bytes is over the {MAX_BODY_BYTES:,}-byte limit",
                           {"body": f"at most {MAX_BODY_BYTES:,} bytes"})
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise RequestError(413, f"body is over the {MAX_BODY_BYTES:,}-byte limit", {"body": f"at most {MAX_BODY_BYTES:,} bytes"})
    return body


def parse_json(body: bytes) -> object:
    """JSON, or a 400 saying why not."""
    try:
        return json.loads(body)
    except RecursionError:
        raise RequestError(400, "body is not usable JSON", {"body": "nested too deeply"}) from None
    except ValueError as error:
        raise RequestError(400, "body is not JSON", {"body": f"not JSON: {str(error)[:80]}"}) from None


def _batch(items: object, name: str, shape: Shape) -> list:
    if not isinstance(items, list):
        raise RequestError(400, f"{name} must be a JSON array", {name: f"got a JSON {json_type(items)}"}, shape)
    if not items:
        raise RequestError(400, f"{name} is empty: send at least one ride", {name: "empty"}, shape)
    if len(items) > MAX_ROWS:
        raise RequestError(413, f"{len(items):,} {name} is over the cap of {MAX_ROWS:,} per request; split the batch",
                           {name: f"at most {MAX_ROWS:,}"}, shape)
    return items


def rides_from_json(document: object) -> RideRequest:
    """Dispatch a parsed JSON body on its shape."""
    if not isinstance(document, dict):
        raise RequestError(400, f"expected {EXPECTED_BODY}", {"body": f"got a JSON {json_type(document)}"})
    if "calls" in document:
        calls = _batch(document["calls"], "calls", Shape.BIGQUERY)
        bad = {f"calls[{i}]": f"expected an array of {len(INPUT_COLUMNS)} values ({', '.join(INPUT_COLUMNS)})"
               for i, call in enumerate(calls) if not isinstance(call, list) or len(call) != len(INPUT_COLUMNS)}
        if bad:
            raise RequestError(400, "malformed calls", dict(list(bad.items())[:20]), Shape.BIGQUERY)
        return RideRequest(Shape.BIGQUERY, [dict(zip(INPUT_COLUMNS, call)) for call in calls])
    if "instances" in document:
        instances = _batch(document["instances"], "instances", Shape.INSTANCES)
        bad = {f"instances[{i}]": "expected a JSON object of ride fields"
               for i, instance in enumerate(instances) if not isinstance(instance, dict)}
        if bad:
            raise RequestError(400, "malformed instances", dict(list(bad.items())[:20]), Shape.INSTANCES)
        return RideRequest(Shape.INSTANCES, instances)
    return RideRequest(Shape.SINGLE, [document])


def parse_ride_request(request: Request) -> RideRequest:
    """The rides in a GET query string, or a POST's JSON / form body (or query string if bodiless)."""
    if request.method in ("GET", "HEAD"):
        return fields_from_form(request.args)
    body = read_body(request)
    if request.mimetype == FORM_TYPE:
        return fields_from_form(MultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
    if not body.strip():
        if request.args:
            return fields_from_form(request.args)
        raise RequestError(400, f"expected {EXPECTED_BODY}", {"body": "empty"})
    return rides_from_json(parse_json(body))
