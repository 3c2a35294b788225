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
from taxifare.serving.hints import closest
from taxifare.serving.quoting import quoted
from taxifare.serving.validation import KNOWN_FIELDS, MAX_REPORTED_ERRORS, PARAMETERS, RANGE_FIELD, RefusedRows

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
BODY_READ_KEY = "taxifare.body_read"
"""Set in the WSGI environ once the body has been read to its end: nothing of it is left on the connection."""
FORM_TYPE = "application/x-www-form-urlencoded"
EXPECTED_BODY = 'a JSON object: the six ride fields, {"instances": [rides]} or {"calls": [[six values]]}'


class Shape(enum.Enum):
    """What the caller sent, hence what it expects back."""

    SINGLE = "fare"
    INSTANCES = "predictions"
    BIGQUERY = "replies"


class RequestError(Exception):
    """A request we refuse: HTTP status, a message and per-field details for the caller.

    `refused_rows`: for a batch refused row by row, how many rows were refused in all (the details
    list the first MAX_REPORTED_ERRORS errors).
    """

    def __init__(self, status: int, message: str, details: dict[str, str] | None = None, shape: Shape = Shape.SINGLE,
                 refused_rows: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}
        self.shape = shape
        self.refused_rows = refused_rows


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


CONTEXT = "userDefinedContext"
"""Options of a BigQuery remote function (its user_defined_context)."""
OPTIONS = (RANGE_FIELD,)
"""What `parameters` and `userDefinedContext` may hold."""
BATCH_KEYS = ("instances", PARAMETERS, RANGE_FIELD)
"""The keys of a batch envelope; anything else in it is refused, not ignored."""
BIGQUERY_KEYS = ("calls", CONTEXT)
"""The keys of a BigQuery envelope we read; Google builds that body and may add others, which are left alone."""
ENVELOPES = {"instances": '{"instances": [ride, ...]}', "calls": '{"calls": [[six values], ...]}'}
QUERY_RANGE = "?range"
"""How errors name a range given in the URL's query string beside a body."""
RANGE_PLACES = {Shape.SINGLE: f"{RANGE_FIELD} (or {PARAMETERS}.{RANGE_FIELD})",
                Shape.INSTANCES: f"{PARAMETERS}.{RANGE_FIELD}", Shape.BIGQUERY: f"{CONTEXT}.{RANGE_FIELD}"}
"""Where each shape's range goes, as errors say it."""


def coverage_of(value: object, shape: Shape = Shape.SINGLE, place: str = RANGE_FIELD) -> int | None:
    """The range coverage a request asks for: a whole number of percent from 1 to 99, or None (absent, empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdecimal():  # not isdigit(): "²" is a digit int() refuses
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 100:
        raise RequestError(400, "invalid range", {place: f"a coverage in percent, such as 80; got {quoted(value)}"},
                           shape)
    return value


def agreed_coverage(places: list[tuple[str, object]], shape: Shape) -> int | None:
    """The one range a request asks for, wherever it was given; a 400 naming both places when two disagree."""
    chosen: tuple[str, int] | None = None
    for place, value in places:
        coverage = coverage_of(value, shape, place)
        if coverage is None:
            continue
        if chosen is None:
            chosen = place, coverage
        elif coverage != chosen[1]:
            raise RequestError(400, "conflicting ranges", {place: (
                f"{coverage}, but {chosen[0]} is {chosen[1]}: a request has one range; give it once, in "
                f"{RANGE_PLACES[shape]}")}, shape)
    return chosen[1] if chosen else None


def _refuse_repeated(document: dict, keys: tuple[str, ...], where: str, shape: Shape) -> None:
    repeated = {key: count for key, count in getattr(document, "repeated", {}).items() if key in keys}
    if repeated:
        raise RequestError(400, "repeated fields", {f"{where}{key}": f"given {count} times"
                                                    for key, count in repeated.items()}, shape)


def _refuse_unknown(document: dict, allowed: tuple[str, ...], where: str, shape: Shape) -> None:
    """A key nobody reads is a mistake the caller should hear about: named, with the likely one."""
    unknown = [key for key in document if key not in allowed]
    if unknown:
        holder = where.rstrip(".") or "a batch"
        details = {}
        for key in unknown[:MAX_REPORTED_ERRORS]:
            meant = closest(key, allowed)
            hint = f" (did you mean {meant}?)" if meant else ""
            details[f"{where}{key}"] = f"unknown{hint}: {holder} takes only {', '.join(allowed)}"
        raise RequestError(400, f"unknown keys in {where.rstrip('.') or 'the batch'}", details, shape)


def options_in(holder: object, where: str, shape: Shape) -> object:
    """The range value of an options object (`parameters`, `userDefinedContext`); a 400 for anything else in it."""
    if holder is None:
        return None
    if not isinstance(holder, dict):
        raise RequestError(400, f"{where} must be a JSON object",
                           {where: f'got a JSON {json_type(holder)}; expected e.g. {{"{RANGE_FIELD}": 80}}'}, shape)
    _refuse_repeated(holder, OPTIONS, f"{where}.", shape)
    _refuse_unknown(holder, OPTIONS, f"{where}.", shape)
    return holder.get(RANGE_FIELD)


def ride_options(ride: dict, where: str, shape: Shape) -> list[tuple[str, object]]:
    """Take a JSON ride's options out of it (`range`, `parameters`): the (place, value) of each range given."""
    parameters = options_in(ride.pop(PARAMETERS, None), f"{where}{PARAMETERS}", shape)
    return [(f"{where}{RANGE_FIELD}", ride.pop(RANGE_FIELD, None)), (f"{where}{PARAMETERS}.{RANGE_FIELD}", parameters)]


def fields_from_form(form: MultiDict, in_query: str | None = None) -> RideRequest:
    """One ride from a query string or form (a werkzeug MultiDict); repeated fields are refused.

    `in_query`: a range given in the URL's query string beside a form body.
    """
    repeated = {name: f"given {len(values)} times" for name, values in form.lists() if len(values) > 1}
    if repeated:
        raise RequestError(400, "repeated fields", repeated)
    fields = form.to_dict()
    coverage = fields.pop(RANGE_FIELD, None)
    if in_query is not None:
        coverage = agreed_coverage([(QUERY_RANGE, in_query), (RANGE_FIELD, coverage)], Shape.SINGLE)
    return RideRequest(Shape.SINGLE, [fields], coverage_of(coverage))


def json_type(value: object) -> str:
    """JSON's name for a parsed value's type, for messages callers understand."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def too_large(what: str, limit: str) -> RequestError:
    """413 naming the limit and how many rides fit, so the caller knows how to split the request."""
    return RequestError(413, f"{what} is over the limit of {limit}: one request takes at most {MAX_ROWS:,} rides",
                        {"body": f"at most {limit}; split the rides into requests of at most {MAX_ROWS:,}"})


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
    request.environ[BODY_READ_KEY] = True
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


def finish_body(request: Request) -> bool:
    """Leave nothing of the body for anyone else to read; True if the client may still be sending it.

    functions-framework reads whatever body the handler left, after every response: a 256 MiB
    upload in full, or it waits for bytes a client declared and never sends. An empty stream
    stops that. A body left unread (refused early, or never wanted: a 404, a 405) is then the
    connection's to discard: see lingering_close.py.
    """
    request.stream = io.BytesIO()
    environ = request.environ
    return BODY_READ_KEY not in environ and (
        environ.get("CONTENT_LENGTH", "0") not in ("", "0") or "HTTP_TRANSFER_ENCODING" in environ)


def _check_field_count(raw: bytes | bytearray, where: str) -> None:
    fields = raw.count(b"&") + 1
    if fields > MAX_FIELDS:
        raise RequestError(400, f"too many fields in the {where}", {where.replace(" ", "_"): f"{fields:,} fields, "
                           f"at most {MAX_FIELDS} (a ride has {len(INPUT_COLUMNS)})"})


def bounded_query(request: Request) -> MultiDict:
    """The query string's fields, bounded before werkzeug parses them."""
    query = request.query_string
    if len(query) > MAX_QUERY_BYTES:
        raise RequestError(414, "query string too long", {"query_string": f"{len(query):,} bytes, at most "
                           f"{MAX_QUERY_BYTES:,}"})
    _check_field_count(query, "query string")
    return request.args


def fields_from_query(request: Request) -> RideRequest:
    """One ride from the query string."""
    return fields_from_form(bounded_query(request))


def query_range(request: Request) -> str | None:
    """A range given in the query string of a request whose rides are in its body (`POST /predict?range=80`)."""
    if not request.query_string:
        return None
    values = bounded_query(request).getlist(RANGE_FIELD)
    if len(values) > 1:
        raise RequestError(400, "repeated fields", {QUERY_RANGE: f"given {len(values)} times"})
    return values[0] if values else None


def fields_from_form_body(body: bytearray, in_query: str | None) -> RideRequest:
    """One ride from an application/x-www-form-urlencoded body."""
    _check_field_count(body, "form")
    return fields_from_form(MultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)), in_query)


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
        raise too_large(f"a body of {containers:,} JSON objects and arrays", f"{MAX_JSON_CONTAINERS:,} (one per ride)")
    values = body.count(b",") + 1
    if values > MAX_JSON_VALUES:
        raise too_large(f"a body of {values:,} JSON values", f"{MAX_JSON_VALUES:,}")
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


def rides_from_json(document: object, in_query: str | None = None) -> RideRequest:
    """Dispatch a parsed JSON body on its shape; `in_query`: a range given in the URL's query string."""
    if not isinstance(document, dict):
        raise RequestError(400, f"expected {EXPECTED_BODY}", {"body": f"got a JSON {json_type(document)}"})
    if "calls" in document:
        return _bigquery_calls(document, in_query)
    if "instances" in document:
        return _instances(document, in_query)
    return _single_ride(document, in_query)


def _bigquery_calls(document: dict, in_query: str | None) -> RideRequest:
    """A BigQuery remote-function batch: six values a row, the range in userDefinedContext."""
    shape = Shape.BIGQUERY
    _refuse_repeated(document, BIGQUERY_KEYS, "", shape)
    parameters = document.get(PARAMETERS)
    misplaced = [place for place, given in ((RANGE_FIELD, RANGE_FIELD in document), (f"{PARAMETERS}.{RANGE_FIELD}",
                 isinstance(parameters, dict) and RANGE_FIELD in parameters)) if given]
    if misplaced:  # a hand-built call, not Google's: say where the range goes rather than ignore it
        raise RequestError(400, "range in the wrong place", {place: (
            f"BigQuery calls take the range in {CONTEXT}.{RANGE_FIELD} (the remote function's user_defined_context)")
            for place in misplaced}, shape)
    coverage = agreed_coverage([(QUERY_RANGE, in_query),
                                (f"{CONTEXT}.{RANGE_FIELD}", options_in(document.get(CONTEXT), CONTEXT, shape))], shape)
    calls = _batch(document["calls"], "calls", shape)
    malformed = RefusedRows()
    for index, call in enumerate(calls):
        if not isinstance(call, list) or len(call) != len(INPUT_COLUMNS):
            malformed.add({f"calls[{index}]": f"expected an array of {len(INPUT_COLUMNS)} values "
                                              f"({', '.join(INPUT_COLUMNS)})"})
    if malformed.count:
        raise RequestError(400, "malformed calls", malformed.details, shape, malformed.count)
    return RideRequest(shape, [dict(zip(INPUT_COLUMNS, call, strict=True)) for call in calls], coverage)


def _instances(document: dict, in_query: str | None) -> RideRequest:
    """A Vertex AI / KServe batch; one range for all, in parameters, beside instances or in the instances."""
    shape = Shape.INSTANCES
    _refuse_repeated(document, BATCH_KEYS, "", shape)
    _refuse_unknown(document, BATCH_KEYS, "", shape)
    instances = _batch(document["instances"], "instances", shape)
    places = [(QUERY_RANGE, in_query), (RANGE_FIELD, document.get(RANGE_FIELD)),
              (f"{PARAMETERS}.{RANGE_FIELD}", options_in(document.get(PARAMETERS), PARAMETERS, shape))]
    malformed = RefusedRows()
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            malformed.add({f"instances[{index}]": "expected a JSON object of ride fields"})
        elif RANGE_FIELD in instance or PARAMETERS in instance:
            places += ride_options(instance, f"instances[{index}].", shape)
    if malformed.count:
        raise RequestError(400, "malformed instances", malformed.details, shape, malformed.count)
    return RideRequest(shape, instances, agreed_coverage(places, shape))


def _single_ride(document: dict, in_query: str | None) -> RideRequest:
    """One ride as a JSON object; a body with no ride field but a misspelt envelope gets one clear error."""
    if document.keys().isdisjoint(KNOWN_FIELDS):
        for key in document:
            envelope = closest(key, tuple(ENVELOPES))
            if envelope:
                raise RequestError(400, f"unknown key {quoted(key)}: did you mean {envelope}?",
                                   {key: f"did you mean {envelope}? A batch is {ENVELOPES[envelope]}"})
    places = [(QUERY_RANGE, in_query), *ride_options(document, "", Shape.SINGLE)]  # the parsed body is ours
    return RideRequest(Shape.SINGLE, [document], agreed_coverage(places, Shape.SINGLE))


def parse_ride_request(request: Request) -> RideRequest:
    """The rides in a GET query string, or a POST's JSON / form body (or query string if bodiless)."""
    if request.method in ("GET", "HEAD"):
        return fields_from_query(request)
    body = read_body(request)
    if request.mimetype == FORM_TYPE and not body.lstrip().startswith((b"{", b"[")):
        return fields_from_form_body(body, query_range(request))  # JSON sent as a form (curl -d) is read as JSON
    if not body.strip():
        if request.query_string:
            return fields_from_query(request)
        raise RequestError(400, f"expected {EXPECTED_BODY}", {"body": "empty"})
    in_query = query_range(request)
    return rides_from_json(parse_json(body), in_query)
