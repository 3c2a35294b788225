"""Turn untrusted ride fields into model input columns, or say exactly what is wrong.

Input is a list of records (field name -> raw value: a query-string str, or a JSON value). The
output is a dict of numpy columns the model reads directly. Every rejection names the field and
the reason; a batch lists the first MAX_REPORTED_ERRORS of them, each prefixed with its row, and
counts every refused row. Hints (a likely field name, swapped coordinates) are worded only for the
rows listed: a clean ride pays nothing for them.
"""

import math
import re
from collections.abc import Sequence

import numpy as np

from taxifare.model.schema import (
    COORDINATE_COLUMNS,
    DROPOFF_LATITUDE,
    DROPOFF_LONGITUDE,
    INPUT_COLUMNS,
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    PASSENGER_COUNT,
    PASSENGER_RANGE,
    PICKUP_DATETIME,
    PICKUP_LATITUDE,
    PICKUP_LONGITUDE,
)
from taxifare.model.service_area import ServiceArea
from taxifare.serving.hints import REFUSAL_CUTOFF, closest
from taxifare.serving.quoting import quoted
from taxifare.serving.ride_time import OffsetTable, RideTimeError, parse_pickup_datetime, parse_pickup_datetimes

ALIASES = {"lon1": PICKUP_LONGITUDE, "lat1": PICKUP_LATITUDE, "lon2": DROPOFF_LONGITUDE,
           "lat2": DROPOFF_LATITUDE, "passcount": PASSENGER_COUNT}
"""Short names from the bootcamp's notebooks."""

RANGES = {PICKUP_LONGITUDE: LONGITUDE_RANGE, PICKUP_LATITUDE: LATITUDE_RANGE,
          DROPOFF_LONGITUDE: LONGITUDE_RANGE, DROPOFF_LATITUDE: LATITUDE_RANGE}
AREA_NAMES = {LONGITUDE_RANGE: "longitude", LATITUDE_RANGE: "latitude"}
MAX_REPORTED_ERRORS = 20
"""Errors listed in one answer: enough to fix a pattern, few enough to read; the count of refused rows is exact."""
AREA_PATH = "/model/area"
"""Where callers can see the serving model's service area (GeoJSON)."""
ENDS = (("pickup", "from"), ("dropoff", "to"))
RANGE_FIELD = "range"
"""Opt-in: the coverage, in percent, of the fare range to add to the answer ("range=80")."""
EXPLAIN_FIELD = "explain"
"""Opt-in: each fare's breakdown, what the model starts from and what each group of features adds ("explain=1")."""
PARAMETERS = "parameters"
"""Options beside a batch's instances (Vertex AI's name), or beside a JSON ride's fields."""
RIDE_OPTIONS = (RANGE_FIELD, EXPLAIN_FIELD, PARAMETERS)
"""What a ride may carry beside its fields (request_parsing takes them out before validation). An unknown
field close to one ("rnage") is a misspelt option and refused: ignoring it would price without the option."""
OUTSIDE = "outside the NYC service area"
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""A NUL or another control character: parsers such as datetime.fromisoformat ignore some of them."""
Record = dict[str, object]


class InvalidRides(ValueError):
    """Rides refused: the errors listed, keyed "field" (one ride) or "instances[i].field" (a batch), and
    how many rows were refused in all (more than the listed errors show once MAX_REPORTED_ERRORS is reached)."""

    def __init__(self, details: dict[str, str], refused_rows: int):
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in details.items()))
        self.details = details
        self.refused_rows = refused_rows


class RefusedRows:
    """Errors collected row by row: the first MAX_REPORTED_ERRORS are listed, every refused row is counted."""

    def __init__(self) -> None:
        self.details: dict[str, str] = {}
        self.count = 0

    @property
    def listing(self) -> bool:
        """Whether the next refused row's errors are listed (so worth wording, hints included)."""
        return len(self.details) < MAX_REPORTED_ERRORS

    def add(self, errors: dict[str, str]) -> None:
        """One refused row's errors, keyed with the row."""
        self.count += 1
        for key, reason in errors.items():
            if not self.listing:
                break
            self.details[key] = reason

    def raise_if_any(self) -> None:
        if self.count:
            raise InvalidRides(self.details, self.count)


def _refuse_control_characters(text: str) -> None:
    found = CONTROL_CHARACTER.search(text)
    if found:
        raise ValueError(f"contains the control character U+{ord(found.group()):04X}")


def _number(value: object) -> float:
    """A finite float from a JSON number or a numeric string; ValueError says why not."""
    if isinstance(value, str):
        _refuse_control_characters(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (isinstance(value, str) and "_" in value):
        raise ValueError(f"not a number: {quoted(value)}")  # "_": Python's float() takes "4_0.7", people don't
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: a JSON integer beyond float range
        raise ValueError(f"not a number: {quoted(value)}") from None
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {quoted(value)}")
    return number


def check_coordinate(name: str, value: object) -> float:
    """A coordinate inside the NYC service area."""
    number = _number(value)
    low, high = RANGES[name]
    if not low <= number <= high:
        raise ValueError(f"{OUTSIDE} ({AREA_NAMES[RANGES[name]]} {low} to {high}): {number:g}")
    return number


def check_passenger_count(value: object) -> int:
    """A whole number of passengers a yellow cab can carry."""
    number = _number(value)
    low, high = PASSENGER_RANGE
    if number != int(number) or not low <= number <= high:
        raise ValueError(f"not a whole number from {low} to {high}: {quoted(value)}")
    return int(number)


def check_pickup_datetime(value: object) -> int:
    """UTC epoch seconds of a pickup time string."""
    if not isinstance(value, str):
        raise ValueError(f"not a date and time string: {quoted(value)}")
    _refuse_control_characters(value)
    try:
        return parse_pickup_datetime(value)
    except RideTimeError as error:
        raise ValueError(str(error)) from None


CHECKS = {PICKUP_DATETIME: check_pickup_datetime, PASSENGER_COUNT: check_passenger_count,
          **{name: (lambda value, name=name: check_coordinate(name, value)) for name in RANGES}}


def canonical_fields(record: Record) -> tuple[Record, dict[str, str]]:
    """Map aliases to canonical names; a field given twice (repeated in JSON, or under both names) is an error."""
    fields = {}
    errors = {ALIASES.get(key, key): f"given {count} times" for key, count in getattr(record, "repeated", {}).items()}
    for key, value in record.items():
        name = ALIASES.get(key, key)
        if name in fields:
            first = next(sent for sent in record if ALIASES.get(sent, sent) == name)
            errors.setdefault(name, f"given twice (as {quoted(first)} and {quoted(key)})")
        fields[name] = value
    return fields, errors


KNOWN_FIELDS = (*INPUT_COLUMNS, *ALIASES)
POINTS = {"pickup": (PICKUP_LATITUDE, PICKUP_LONGITUDE), "dropoff": (DROPOFF_LATITUDE, DROPOFF_LONGITUDE)}


def misspelt_option(key: str) -> str | None:
    """The option an unknown ride field misspells ("rnage" -> range), if it is that close to one."""
    return closest(key, RIDE_OPTIONS, REFUSAL_CUTOFF) if key not in CHECKS and key not in RIDE_OPTIONS else None


def _inside(value: object, bounds: tuple[float, float]) -> bool:
    try:
        return bounds[0] <= _number(value) <= bounds[1]
    except ValueError:
        return False


def with_hints(errors: dict[str, str], fields: Record) -> dict[str, str]:
    """A refused ride's errors with what the caller most likely meant.

    - an unknown field that misspells an option: "rnage": "unknown field: did you mean range?";
    - a missing field, when an unknown field looks like it: "missing (you sent "passengers": did you
      mean passenger_count?)"; aliases count ("lng1" -> lon1);
    - a point whose latitude and longitude are both outside the service area but inside it swapped:
      one error saying so, instead of one per coordinate.
    """
    hinted = dict(errors)
    for given in fields:
        if given in CHECKS:
            continue
        option = misspelt_option(given)
        if option:
            hinted[given] = f"unknown field: did you mean {option}?"
            continue
        meant = closest(given, KNOWN_FIELDS)
        name = ALIASES.get(meant, meant)
        if meant and hinted.get(name) == "missing":
            hinted[name] = f"missing (you sent {quoted(given)}: did you mean {meant}?)"
    for point, (latitude, longitude) in POINTS.items():
        outside = all(hinted.get(name, "").startswith(OUTSIDE) for name in (latitude, longitude))
        if outside and _inside(fields[latitude], LONGITUDE_RANGE) and _inside(fields[longitude], LATITUDE_RANGE):
            del hinted[longitude]
            lat, lon = _number(fields[latitude]), _number(fields[longitude])
            hinted[latitude] = (f"{point} latitude and longitude look swapped ({lat} is a longitude, {lon} a "
                                f"latitude): send {latitude}={lon}, {longitude}={lat}")
    return hinted


def validate_records(records: Sequence[Record], row_label: str | None = None,
                     new_york: OffsetTable | None = None) -> dict[str, np.ndarray]:
    """Model columns for valid records; InvalidRides naming each bad field otherwise.

    `row_label` ("instances", "calls") prefixes batch errors with the row: "instances[3].passenger_count".
    `new_york`: the serving model's offset table, which converts a batch's naive times in one pass
    (without it they are parsed one by one, with the same result).
    """
    columns = _valid_batch_columns(records, new_york) if len(records) > 1 else None
    return columns if columns is not None else _check_each_record(records, row_label)


def _within(values: np.ndarray, bounds: tuple[float, float]) -> bool:
    return bool(((values >= bounds[0]) & (values <= bounds[1])).all())  # NaN fails


def _valid_batch_columns(records: Sequence[Record], new_york: OffsetTable | None) -> dict[str, np.ndarray] | None:
    """Vectorised validation of a clean batch: exactly the six fields, JSON numbers, plain times.

    Returns None as soon as anything is unusual; the per-record checks then find and name it.
    """
    if not all(type(record) is dict and len(record) == len(INPUT_COLUMNS) for record in records):
        return None
    try:
        raw = {name: [record[name] for record in records] for name in INPUT_COLUMNS}
    except KeyError:
        return None
    seconds = parse_pickup_datetimes(raw[PICKUP_DATETIME], new_york)
    numeric = (*RANGES, PASSENGER_COUNT)
    if seconds is None or not all(type(v) is float or type(v) is int for name in numeric for v in raw[name]):
        return None
    try:
        columns = {name: np.array(raw[name], dtype=np.float64) for name in numeric}
    except OverflowError:  # a JSON integer beyond float range
        return None
    passengers = columns[PASSENGER_COUNT]
    if not all(_within(columns[name], RANGES[name]) for name in RANGES) or not _within(passengers, PASSENGER_RANGE) \
            or not (passengers == np.floor(passengers)).all():
        return None
    return {PICKUP_DATETIME: seconds.astype("datetime64[s]"), **{name: columns[name] for name in RANGES},
            PASSENGER_COUNT: passengers.astype(np.int64)}


def _check_each_record(records: Sequence[Record], row_label: str | None) -> dict[str, np.ndarray]:
    """Field by field, every row: the first MAX_REPORTED_ERRORS reasons listed, every refused row counted."""
    columns = {name: [] for name in INPUT_COLUMNS}
    refused = RefusedRows()
    for index, record in enumerate(records):
        fields, row_errors = canonical_fields(record)
        for name in INPUT_COLUMNS:
            if name in row_errors:
                continue
            if name not in fields:
                row_errors[name] = "missing"
                continue
            try:
                columns[name].append(CHECKS[name](fields[name]))
            except ValueError as error:
                row_errors[name] = str(error)
        if row_errors or (len(fields) > len(INPUT_COLUMNS) and any(map(misspelt_option, fields))):
            if refused.listing:
                row_errors = with_hints(row_errors, fields)
            prefix = f"{row_label}[{index}]." if row_label else ""
            refused.add({prefix + name: reason for name, reason in row_errors.items()})
    refused.raise_if_any()
    return {
        PICKUP_DATETIME: np.array(columns[PICKUP_DATETIME], dtype="datetime64[s]"),
        **{name: np.array(columns[name], dtype=np.float64) for name in RANGES},
        PASSENGER_COUNT: np.array(columns[PASSENGER_COUNT], dtype=np.int64),
    }


def check_service_area(area: ServiceArea | None, columns: dict[str, np.ndarray], row_label: str | None = None) -> None:
    """InvalidRides naming each pickup or dropoff outside the area the model has rides from.

    Validation already keeps every point inside the service box; this is the model's own, finer
    answer: trees would price a ride from open water or another state with a confident fare.
    """
    if area is None or area.all_inside(columns):
        return
    outside = ~area.ends_inside(columns)
    refused = RefusedRows()
    for row in np.flatnonzero(outside.any(axis=0)):  # row by row, pickup before dropoff
        prefix = f"{row_label}[{row}]." if row_label else ""
        refused.add({prefix + name: _outside_area(columns, row, end, preposition)
                     for end, (name, preposition) in enumerate(ENDS) if outside[end, row] and refused.listing})
    refused.raise_if_any()


def _outside_area(columns: dict[str, np.ndarray], row: int, end: int, preposition: str) -> str:
    lon, lat = (columns[column][row] for column in COORDINATE_COLUMNS[2 * end:2 * end + 2])
    return (f"latitude {lat:g}, longitude {lon:g} is outside the area this model has rides {preposition}: it cannot "
            f"price it (the area: {AREA_PATH})")
