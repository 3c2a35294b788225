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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import MultiDict

from taxifare.model.schema import INPUT_COLUMNS
from taxifare.serving.hints import closest
from taxifare.serving.quoting import quoted
from taxifare.serving.validation import (
    EXPLAIN_FIELD,
    KNOWN_FIELDS,
    MAX_REPORTED_ERRORS,
    PARAMETERS,
    RANGE_FIELD,
    RIDE_OPTIONS,
    RefusedRows,
)

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
    """Records to price (field -> raw value), the response shape, the fare range asked for (if any), and
    whether each fare's breakdown was asked for."""

    shape: Shape
    records: list[dict]
    coverage: int | None = None
    explain: bool = False

    @property
    def row_label(self) -> str | None:
        """How batch errors name a row ("instances[3]..."); None for a single ride."""
        return {Shape.INSTANCES: "instances", Shape.BIGQUERY: "calls"}.get(self.shape)


CONTEXT = "userDefinedContext"
"""Options of a BigQuery remote function (its user_defined_context)."""
OPTIONS = (RANGE_FIELD, EXPLAIN_FIELD)
"""The request options: what `parameters` and `userDefinedContext` may hold, and a ride or a batch may carry."""
BATCH_KEYS = ("instances", PARAMETERS, *OPTIONS)
"""The keys of a batch envelope; anything else in it is refused, not ignored."""
BIGQUERY_KEYS = ("calls", CONTEXT)
"""The keys of a BigQuery envelope we read; Google builds that body and may add others, which are left alone."""
ENVELOPES = {"instances": '{"instances": [ride, ...]}', "calls": '{"calls": [[six values], ...]}'}
EXPLAIN_VALUES = {"true": True, "1": True, "false": False, "0": False}
"""How an explain setting may be written (any case; JSON true and false too)."""
Given = list[tuple[str, str, object]]
"""Options as a request gives them: (option, the place errors name, the value as sent), in the order read."""


def query_place(option: str) -> str:
    """How errors name an option given in the URL's query string beside a body ("?range")."""
    return f"?{option}"


def option_home(option: str, shape: Shape) -> str:
    """Where an option goes in a request of this shape, as errors say it."""
    return {Shape.SINGLE: f"{option} (or {PARAMETERS}.{option})", Shape.INSTANCES: f"{PARAMETERS}.{option}",
            Shape.BIGQUERY: f"{CONTEXT}.{option}"}[shape]


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


def explain_of(value: object, shape: Shape = Shape.SINGLE, place: str = EXPLAIN_FIELD) -> bool | None:
    """Whether a request asks for breakdowns: true or false (1 or 0; JSON or text), or None (absent, empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower() in EXPLAIN_VALUES:
        return EXPLAIN_VALUES[value.strip().lower()]
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise RequestError(400, "invalid explain setting", {place: f"true or false (or 1 or 0); got {quoted(value)}"},
                       shape)


@dataclass(frozen=True)
class Option:
    """How a request option's value is read (None: not given) and what errors call it ("a request has one range")."""

    read: Callable[[object, Shape, str], object]
    noun: str


OPTION_READERS = {RANGE_FIELD: Option(coverage_of, "range"), EXPLAIN_FIELD: Option(explain_of, "explain setting")}


def agreed_options(given: Given, shape: Shape) -> dict[str, object]:
    """The one value of each option a request gives, wherever it gave it; a 400 naming both places when two disagree."""
    chosen: dict[str, tuple[str, object]] = {}
    for option, place, value in given:
        reader = OPTION_READERS[option]
        meant = reader.read(value, shape, place)
        if meant is None:
            continue
        if option not in chosen:
            chosen[option] = place, meant
        elif meant != chosen[option][1]:
            first_place, first = chosen[option]
            raise RequestError(400, f"conflicting {reader.noun}s", {place: (
                f"{json.dumps(meant)}, but {first_place} is {json.dumps(first)}: a request has one {reader.noun}; "
                f"give it once, in {option_home(option, shape)}")}, shape)
    return {option: meant for option, (_, meant) in chosen.items()}


def ride_request(shape: Shape, records: list[dict], options: dict[str, object]) -> RideRequest:
    """The request of these records with the options agreed on (none: the fare alone)."""
    return RideRequest(shape, records, options.get(RANGE_FIELD), options.get(EXPLAIN_FIELD, False))


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


def options_in(holder: object, where: str, shape: Shape) -> Given:
    """The options of an options object (`parameters`, `userDefinedContext`); a 400 for anything else in it."""
    if holder is None:
        return []
    if not isinstance(holder, dict):
        raise RequestError(400, f"{where} must be a JSON object",
                           {where: f'got a JSON {json_type(holder)}; expected e.g. {{"{RANGE_FIELD}": 80}}'}, shape)
    _refuse_repeated(holder, OPTIONS, f"{where}.", shape)
    _refuse_unknown(holder, OPTIONS, f"{where}.", shape)
    return [(option, f"{where}.{option}", holder[option]) for option in OPTIONS if option in holder]


def taken_options(fields: dict, where: str = "") -> Given:
    """Take the options out of a ride's fields or a batch envelope (`range`, `explain`), as given."""
    return [(option, f"{where}{option}", fields.pop(option)) for option in OPTIONS if option in fields]


def ride_options(ride: dict, where: str, shape: Shape) -> Given:
    """Take a JSON ride's options out of it (`range`, `explain`, `parameters`), as given."""
    parameters = options_in(ride.pop(PARAMETERS, None), f"{where}{PARAMETERS}", shape)
    return [*taken_options(ride, where), *parameters]


def fields_from_form(form: MultiDict, in_query: Given | None = None) -> RideRequest:
    """One ride from a query string or form (a werkzeug MultiDict); repeated fields are refused.

    `in_query`: options given in the URL's query string beside a form body.
    """
    repeated = {name: f"given {len(values)} times" for name, values in form.lists() if len(values) > 1}
    if repeated:
        raise RequestError(400, "repeated fields", repeated)
    fields = form.to_dict()
    given = [*(in_query or ()), *taken_options(fields)]
    return ride_request(Shape.SINGLE, [fields], agreed_options(given, Shape.SINGLE))


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


def query_options(request: Request) -> Given:
    """Options given in the query string of a request whose rides are in its body (`POST /predict?range=80`)."""
    if not request.query_string:
        return []
    query, given = bounded_query(request), []
    for option in OPTIONS:
        values = query.getlist(option)
        if len(values) > 1:
            raise RequestError(400, "repeated fields", {query_place(option): f"given {len(values)} times"})
        if values:
            given.append((option, query_place(option), values[0]))
    return given


def fields_from_form_body(body: bytearray, in_query: Given) -> RideRequest:
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


def rides_from_json(document: object, in_query: Given | None = None) -> RideRequest:
    """Dispatch a parsed JSON body on its shape; `in_query`: options given in the URL's query string."""
    if not isinstance(document, dict):
        raise RequestError(400, f"expected {EXPECTED_BODY}", {"body": f"got a JSON {json_type(document)}"})
    in_query = in_query or []
    if "calls" in document:
        return _bigquery_calls(document, in_query)
    if "instances" in document:
        return _instances(document, in_query)
    return _single_ride(document, in_query)


def _bigquery_calls(document: dict, in_query: Given) -> RideRequest:
    """A BigQuery remote-function batch: six values a row, the options in userDefinedContext."""
    shape = Shape.BIGQUERY
    _refuse_repeated(document, BIGQUERY_KEYS, "", shape)
    parameters = document.get(PARAMETERS)
    misplaced = {place: option for option in OPTIONS for place, given in (
        (option, option in document), (f"{PARAMETERS}.{option}", isinstance(parameters, dict) and option in parameters))
        if given}
    if misplaced:  # a hand-built call, not Google's: say where the option goes rather than ignore it
        nouns = dict.fromkeys(OPTION_READERS[option].noun for option in misplaced.values())
        raise RequestError(400, f"{' and '.join(nouns)} in the wrong place", {place: (
            f"BigQuery calls take the {OPTION_READERS[option].noun} in {CONTEXT}.{option} (the remote function's "
            "user_defined_context)") for place, option in misplaced.items()}, shape)
    options = agreed_options([*in_query, *options_in(document.get(CONTEXT), CONTEXT, shape)], shape)
    calls = _batch(document["calls"], "calls", shape)
    malformed = RefusedRows()
    for index, call in enumerate(calls):
        if not isinstance(call, list) or len(call) != len(INPUT_COLUMNS):
            malformed.add({f"calls[{index}]": f"expected an array of {len(INPUT_COLUMNS)} values "
                                              f"({', '.join(INPUT_COLUMNS)})"})
    if malformed.count:
        raise RequestError(400, "malformed calls", malformed.details, shape, malformed.count)
    return ride_request(shape, [dict(zip(INPUT_COLUMNS, call, strict=True)) for call in calls], options)


def _instances(document: dict, in_query: Given) -> RideRequest:
    """A Vertex AI / KServe batch; one value of each option for all, in parameters, beside instances or in them."""
    shape = Shape.INSTANCES
    _refuse_repeated(document, BATCH_KEYS, "", shape)
    _refuse_unknown(document, BATCH_KEYS, "", shape)
    instances = _batch(document["instances"], "instances", shape)
    given = [*in_query, *taken_options(document), *options_in(document.get(PARAMETERS), PARAMETERS, shape)]
    malformed = RefusedRows()
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            malformed.add({f"instances[{index}]": "expected a JSON object of ride fields"})
        elif not instance.keys().isdisjoint(RIDE_OPTIONS):
            given += ride_options(instance, f"instances[{index}].", shape)
    if malformed.count:
        raise RequestError(400, "malformed instances", malformed.details, shape, malformed.count)
    return ride_request(shape, instances, agreed_options(given, shape))


def _single_ride(document: dict, in_query: Given) -> RideRequest:
    """One ride as a JSON object; a body with no ride field but a misspelt envelope gets one clear error."""
    if document.keys().isdisjoint(KNOWN_FIELDS):
        for key in document:
            envelope = closest(key, tuple(ENVELOPES))
            if envelope:
                raise RequestError(400, f"unknown key {quoted(key)}: did you mean {envelope}?",
                                   {key: f"did you mean {envelope}? A batch is {ENVELOPES[envelope]}"})
    given = [*in_query, *ride_options(document, "", Shape.SINGLE)]  # the parsed body is ours
    return ride_request(Shape.SINGLE, [document], agreed_options(given, Shape.SINGLE))


def parse_ride_request(request: Request) -> RideRequest:
    """The rides in a GET query string, or a POST's JSON / form body (or query string if bodiless)."""
    if request.method in ("GET", "HEAD"):
        return fields_from_query(request)
    body = read_body(request)
    if not body.strip():  # whatever its Content-Type says (curl -d '' sends a form's)
        if request.query_string:
            return fields_from_query(request)
        raise RequestError(400, f"expected {EXPECTED_BODY}", {"body": "empty"})
    if request.mimetype == FORM_TYPE and not body.lstrip().startswith((b"{", b"[")):
        return fields_from_form_body(body, query_options(request))  # JSON sent as a form (curl -d) is read as JSON
    in_query = query_options(request)
    return rides_from_json(parse_json(body), in_query)
