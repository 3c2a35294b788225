"""Read a flask request into ride records and the shape the caller wants back.

Shapes: one ride from a query string, a form or a JSON object -> {"fare": x}; a Vertex AI /
KServe v1 batch {"instances": [...]} -> {"predictions": [...]}; a BigQuery remote-function batch
{"calls": [[...], ...]} -> {"replies": [...]}.

Every limit acts before work grows with the input: the body is read once, in chunks, up to
MAX_BODY_BYTES; fields, JSON objects and JSON values are counted in the raw bytes before anything
is parsed, so a body at the cap can never turn into millions of Python objects or seconds of CPU.
"""

import enum
import io
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import MultiDict

from taxifare.model.schema import INPUT_COLUMNS
from taxifare.serving.quoting import quoted

MAX_ROWS = 10_000
MAX_BODY_BYTES = 3 * 1024 * 1024
"""The largest batch with room to spare: 10,000 rides are about 2 MB of JSON (2.7 MB pretty-printed)."""
MAX_FIELDS = 64
"""Per query string or form: a ride has six fields; older clients add a few (the bootcamp's `key`)."""
MAX_QUERY_BYTES = 16 * 1024
MAX_JSON_CONTAINERS = MAX_ROWS + 64
"""JSON objects and arrays per body: one per ride, plus the envelope."""
MAX_JSON_VALUES = 12 * MAX_ROWS
"""JSON values per body (counted as commas): six fields a ride, with room for extra ones."""
BODY_READ_TIMEOUT_SECONDS = 10.0
"""A body that stalls longer than this between two reads is refused (400): it would hold a thread."""
READ_CHUNK_BYTES = 64 * 1024
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
    """Records to price (field -> raw value), the response shape, and the fare range asked for (if any)."""

    shape: Shape
    records: list[dict]
    coverage: int | None = None

    @property
    def row_label(self) -> str | None:
        """How batch errors name a row ("instances[3]..."); None for a single ride."""
        return {Shape.INSTANCES: "instances", Shape.BIGQUERY: "calls"}.get(self.shape)


RANGE_FIELD = "range"
"""Opt-in: the coverage, in percent, of the fare range to add to the answer ("range=80")."""


def coverage_of(value: object, shape: Shape = Shape.SINGLE) -> int | None:
    """The range coverage a request asks for: a whole number of percent from 1 to 99, or None (absent, empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdecimal():  # not isdigit(): "²" is a digit int() refuses
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 100:
        raise RequestError(400, "invalid range", {RANGE_FIELD: f"a coverage in percent, such as 80; got {quoted(value)}"},
                           shape)
    return value


def coverage_in(holder: object, shape: Shape) -> int | None:
    """The range asked for in a batch's side object (`parameters`, `userDefinedContext`), if it is one."""
    return coverage_of(holder.get(RANGE_FIELD) if isinstance(holder, dict) else None, shape)


def fields_from_form(form: MultiDict) -> RideRequest:
    """One ride from a query string or form (a werkzeug MultiDict); repeated fields are refused."""
    repeated = {name: f"given {len(values)} times" for name, values in form.lists() if len(values) > 1}
    if repeated:
        raise RequestError(400, "repeated fields", repeated)
    fields = form.to_dict()
    return RideRequest(Shape.SINGLE, [fields], coverage_of(fields.pop(RANGE_FIELD, None)))


def json_type(value: object) -> str:
    """JSON's name for a parsed value's type, for messages callers understand."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def too_large(what: str, limit: str) -> RequestError:
    """413 naming the limit, so the caller knows how to split the request."""
    return RequestError(413, f"{what} is over the limit of {limit}", {"body": f"at most {limit}"})


def read_body(request: Request) -> bytearray:
    """The raw body, read once and in chunks, refusing more than MAX_BODY_BYTES whatever Content-Length says.

    A declared length is read into one buffer of that size (a body is held once, not copied while
    it grows). A body that cannot be read (a malformed chunk, an upload cut short, a client that
    stalls) is the client's doing: 400, never a 500.
    """
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise too_large(f"a body of {declared:,} bytes", f"{MAX_BODY_BYTES:,} bytes")
    chunks, size = [], 0
    try:
        with _read_timeout(request, BODY_READ_TIMEOUT_SECONDS):
            while chunk := request.stream.read(READ_CHUNK_BYTES):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise too_large("the body", f"{MAX_BODY_BYTES:,} bytes")
    except RequestError:
        raise
    except Exception as error:  # socket errors, werkzeug's ClientDisconnected, gunicorn's InvalidChunkSize, NoMoreData
        reason = f"not received within {BODY_READ_TIMEOUT_SECONDS:g} s" if isinstance(error, TimeoutError) \
            else f"transfer failed ({type(error).__name__})"
        raise RequestError(400, "the request body could not be read", {"body": reason}) from None
    if declared is not None and size < declared:
        raise RequestError(400, "the request body could not be read",
                           {"body": f"transfer failed: the upload ended after {size:,} of {declared:,} bytes"})
    body = bytearray(size)
    position = 0
    while chunks:  # move the chunks into one buffer, letting each go as soon as it is copied
        chunk = chunks.pop(0)
        body[position:position + len(chunk)] = chunk
        position += len(chunk)
    return body


@contextmanager
def _read_timeout(request: Request, seconds: float) -> Iterator[None]:
    """Bound each read of the body on gunicorn's socket (other servers: unbounded)."""
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        yield
        return
    previous = sock.gettimeout()
    sock.settimeout(seconds)
    try:
        yield
    finally:
        sock.settimeout(previous)


def finish_body(request: Request) -> None:
    """Leave nothing of the body for anyone else to read.

    functions-framework reads whatever body the handler left, after every response: a 256 MiB
    upload in full, or it waits for bytes a client declared and never sends. An empty stream
    stops that; gunicorn then discards at most 64 KiB of leftovers or closes the connection.
    """
    request.stream = io.BytesIO()


def _check_field_count(raw: bytes | bytearray, where: str) -> None:
    fields = raw.count(b"&") + 1
    if fields > MAX_FIELDS:
        raise RequestError(400, f"too many fields in the {where}", {where.replace(" ", "_"): f"{fields:,} fields, "
                           f"at most {MAX_FIELDS} (a ride has {len(INPUT_COLUMNS)})"})


def fields_from_query(request: Request) -> RideRequest:
    """One ride from the query string, bounded before werkzeug parses it."""
    query = request.query_string
    if len(query) > MAX_QUERY_BYTES:
        raise RequestError(414, "query string too long", {"query_string": f"{len(query):,} bytes, at most "
                           f"{MAX_QUERY_BYTES:,}"})
    _check_field_count(query, "query string")
    return fields_from_form(request.args)


def fields_from_form_body(body: bytearray) -> RideRequest:
    """One ride from an application/x-www-form-urlencoded body."""
    _check_field_count(body, "form")
    return fields_from_form(MultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))


class JSONObject(dict):
    """A parsed JSON object whose keys repeated: Python's json keeps the last value silently."""

    repeated: dict[str, int]


def _json_object(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    repeated = JSONObject(obj)
    repeated.repeated = {key: count for key, count in Counter(key for key, _ in pairs).items() if count > 1}
    return repeated


def parse_json(body: bytearray) -> object:
    """JSON, or a 400/413 saying why not; objects and values are counted in the bytes first.

    The raw bytes are released (cleared) once decoded, so a body is held once at any moment.
    """
    containers = body.count(b"{") + body.count(b"[")
    if containers > MAX_JSON_CONTAINERS:
        raise too_large(f"a body of {containers:,} JSON objects and arrays",
                        f"{MAX_JSON_CONTAINERS:,} (one per ride, {MAX_ROWS:,} rides)")
    values = body.count(b",") + 1
    if values > MAX_JSON_VALUES:
        raise too_large(f"a body of {values:,} JSON values", f"{MAX_JSON_VALUES:,} ({MAX_ROWS:,} rides)")
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        body.clear()
        return json.loads(text, object_pairs_hook=_json_object)
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
    envelope = {"calls", "instances"} & set(getattr(document, "repeated", {}))
    if envelope:
        raise RequestError(400, "repeated fields",
                           {name: f"given {document.repeated[name]} times" for name in envelope})
    if "calls" in document:
        coverage = coverage_in(document.get("userDefinedContext"), Shape.BIGQUERY)
        calls = _batch(document["calls"], "calls", Shape.BIGQUERY)
        bad = {f"calls[{i}]": f"expected an array of {len(INPUT_COLUMNS)} values ({', '.join(INPUT_COLUMNS)})"
               for i, call in enumerate(calls) if not isinstance(call, list) or len(call) != len(INPUT_COLUMNS)}
        if bad:
            raise RequestError(400, "malformed calls", dict(list(bad.items())[:20]), Shape.BIGQUERY)
        return RideRequest(Shape.BIGQUERY, [dict(zip(INPUT_COLUMNS, call, strict=True)) for call in calls], coverage)
    if "instances" in document:
        coverage = coverage_in(document.get("parameters"), Shape.INSTANCES)
        instances = _batch(document["instances"], "instances", Shape.INSTANCES)
        bad = {f"instances[{i}]": "expected a JSON object of ride fields"
               for i, instance in enumerate(instances) if not isinstance(instance, dict)}
        if bad:
            raise RequestError(400, "malformed instances", dict(list(bad.items())[:20]), Shape.INSTANCES)
        return RideRequest(Shape.INSTANCES, instances, coverage)
    coverage = coverage_of(document.pop(RANGE_FIELD, None))  # the parsed body is ours to change
    return RideRequest(Shape.SINGLE, [document], coverage)


def parse_ride_request(request: Request) -> RideRequest:
    """The rides in a GET query string, or a POST's JSON / form body (or query string if bodiless)."""
    if request.method in ("GET", "HEAD"):
        return fields_from_query(request)
    body = read_body(request)
    if request.mimetype == FORM_TYPE and not body.lstrip().startswith((b"{", b"[")):
        return fields_from_form_body(body)  # a "form" that is JSON (curl -d without a Content-Type) is read as JSON
    if not body.strip():
        if request.args:
            return fields_from_query(request)
        raise RequestError(400, f"expected {EXPECTED_BODY}", {"body": "empty"})
    return rides_from_json(parse_json(body))
