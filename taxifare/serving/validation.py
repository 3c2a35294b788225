"""Turn untrusted ride fields into model input columns, or say exactly what is wrong.

Input is a list of records (field name -> raw value: a query-string str, or a JSON value). The
output is a dict of numpy columns the model reads directly. Every rejection names the field and
the reason; a batch reports at most MAX_REPORTED_ERRORS of them, each prefixed with its row.
"""

import difflib
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
from taxifare.serving.quoting import quoted
from taxifare.serving.ride_time import RideTimeError, parse_pickup_datetime, parse_pickup_datetimes

ALIASES = {"lon1": PICKUP_LONGITUDE, "lat1": PICKUP_LATITUDE, "lon2": DROPOFF_LONGITUDE,
           "lat2": DROPOFF_LATITUDE, "passcount": PASSENGER_COUNT}
"""Short names from the bootcamp's notebooks."""

RANGES = {PICKUP_LONGITUDE: LONGITUDE_RANGE, PICKUP_LATITUDE: LATITUDE_RANGE,
          DROPOFF_LONGITUDE: LONGITUDE_RANGE, DROPOFF_LATITUDE: LATITUDE_RANGE}
AREA_NAMES = {LONGITUDE_RANGE: "longitude", LATITUDE_RANGE: "latitude"}
MAX_REPORTED_ERRORS = 20
AREA_PATH = "/model/area"
"""Where callers can see the serving model's service area (GeoJSON)."""
ENDS = (("pickup", "from"), ("dropoff", "to"))
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""A NUL or another control character: parsers such as datetime.fromisoformat ignore some of them."""
Record = dict[str, object]


class InvalidRides(ValueError):
    """Field errors, keyed "field" (one ride) or "instances[i].field" (a batch)."""

    def __init__(self, details: dict[str, str]):
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in details.items()))
        self.details = details


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
        raise ValueError(f"outside the NYC service area ({AREA_NAMES[RANGES[name]]} {low} to {high}): {number:g}")
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
            errors.setdefault(name, f"given twice (as {quoted(name)} and an alias)")
        fields[name] = value
    return fields, errors


KNOWN_FIELDS = (*INPUT_COLUMNS, *ALIASES)


def _did_you_mean(missing: str, fields: Record) -> str:
    """A hint when the ride has an unknown field that looks like the missing one ("pickup_lat")."""
    for given in fields:
        if given not in KNOWN_FIELDS and (missing.startswith(given) or difflib.get_close_matches(given, [missing],
                                                                                                  cutoff=0.75)):
            return f" (you sent {quoted(given)}: did you mean {missing}?)"
    return ""


def validate_records(records: Sequence[Record], row_label: str | None = None) -> dict[str, np.ndarray]:
    """Model columns for valid records; InvalidRides naming each bad field otherwise.

    `row_label` ("instances", "calls") prefixes batch errors with the row: "instances[3].passenger_count".
    """
    columns = _valid_batch_columns(records) if len(records) > 1 else None
    return columns if columns is not None else _check_each_record(records, row_label)


def _within(values: np.ndarray, bounds: tuple[float, float]) -> bool:
    return bool(((values >= bounds[0]) & (values <= bounds[1])).all())  # NaN fails


def _valid_batch_columns(records: Sequence[Record]) -> dict[str, np.ndarray] | None:
    """Vectorised validation of a clean batch: exactly the six fields, JSON numbers, plain times.

    Returns None as soon as anything is unusual; the per-record checks then find and name it.
    """
    if not all(type(record) is dict and len(record) == len(INPUT_COLUMNS) for record in records):
        return None
    try:
        raw = {name: [record[name] for record in records] for name in INPUT_COLUMNS}
    except KeyError:
        return None
    seconds = parse_pickup_datetimes(raw[PICKUP_DATETIME])
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
    """Field by field, collecting every reason (up to MAX_REPORTED_ERRORS)."""
    columns = {name: [] for name in INPUT_COLUMNS}
    errors: dict[str, str] = {}
    for index, record in enumerate(records):
        prefix = f"{row_label}[{index}]." if row_label else ""
        fields, row_errors = canonical_fields(record)
        for name in INPUT_COLUMNS:
            if name in row_errors:
                continue
            if name not in fields:
                row_errors[name] = "missing" + _did_you_mean(name, fields)
                continue
            try:
                columns[name].append(CHECKS[name](fields[name]))
            except ValueError as error:
                row_errors[name] = str(error)
        for name, reason in row_errors.items():
            if len(errors) < MAX_REPORTED_ERRORS:
                errors[prefix + name] = reason
        if row_errors and len(errors) >= MAX_REPORTED_ERRORS:
            break
    if errors:
        raise InvalidRides(errors)
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
    if area is None:
        return
    inside = area.ends_inside(columns)
    if inside.all():
        return
    errors: dict[str, str] = {}
    for row, end in zip(*np.nonzero(~inside.T), strict=True):  # row by row, pickup before dropoff
        if len(errors) == MAX_REPORTED_ERRORS:
            break
        name, preposition = ENDS[end]
        lon, lat = (columns[column][row] for column in COORDINATE_COLUMNS[2 * end:2 * end + 2])
        prefix = f"{row_label}[{row}]." if row_label else ""
        errors[prefix + name] = (f"latitude {lat:g}, longitude {lon:g} is outside the area this model has rides "
                                 f"{preposition}: it cannot price it (the area: {AREA_PATH})")
    raise InvalidRides(errors)
