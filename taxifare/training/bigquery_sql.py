"""The GoogleSQL that selects, samples, repairs and marks rides inside BigQuery.

Two table shapes are understood, each as BigQuery types it:
- the Kaggle schema (`key, fare_amount, pickup_datetime, ...`), as in the bootcamp's tables;
- the NYC TLC yellow-trip tables (2009-2016), whose `fare_amount` leaves out the tolls that the
  Kaggle fare includes (fare = fare_amount + tolls_amount), with `pickup_datetime` a TIMESTAMP or a
  DATETIME and coordinates FLOAT64 or NUMERIC. The 2017-on tables give taxi-zone ids instead of
  coordinates: refused, since the model prices points.

The query normalises either shape to the Kaggle columns, keeps the time window, draws a
deterministic sample from a hash of each row's identity (its `key`, else a canonical string of the
columns it reads; never RAND(): the same seed selects the same rides whatever order the table
returns them in), caps the rows (the first by that hash), then repairs and marks rows
with the cleaning rules compiled from their one definition in cleaning.py.
"""

import re
from dataclasses import dataclass

from taxifare.model.schema import (
    COORDINATE_COLUMNS,
    FARE,
    KEY,
    PASSENGER_COUNT,
    PICKUP_DATETIME,
)
from taxifare.training.cleaning import BROKEN_RULE, REPAIRED, sql_broken_rule, sql_repaired_columns
from taxifare.training.data import Selection

TOLLS = "tolls_amount"
ZONE_COLUMNS = ("pickup_location_id", "dropoff_location_id")
NUMBER_TYPES = {"FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC", "INTEGER", "INT64"}
TIME_EXPRESSIONS = {
    "TIMESTAMP": "{}",
    "DATETIME": "TIMESTAMP({})",  # the TIMESTAMP years' wall-clock convention (the Kaggle files' "UTC")
    "STRING": "SAFE_CAST({} AS TIMESTAMP)",  # "2013-03-27 03:35:00 UTC" and ISO forms; others become NULL
}
SAMPLE_RESOLUTION = 1_000_000_000
"""A row is sampled when |hash mod 1e9| < sample x 1e9."""
OUTPUT_COLUMNS = (KEY, FARE, PICKUP_DATETIME, *COORDINATE_COLUMNS, PASSENGER_COUNT, REPAIRED, BROKEN_RULE)
TABLE_ID = re.compile(r"^(?:[a-z][a-z0-9.-]*:)?[A-Za-z0-9_-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_$-]+$")
"""project.dataset.table (a domain-scoped project as example.com:project)."""


class SourceShapeError(ValueError):
    """The table or query does not give rides in a shape we can read."""


@dataclass(frozen=True)
class Shape:
    """A table layout: the columns it needs and its fare."""

    name: str
    columns: tuple[str, ...]
    fare: str


KAGGLE = Shape("the Kaggle schema", (FARE, PICKUP_DATETIME, *COORDINATE_COLUMNS, PASSENGER_COUNT), FARE)
TLC = Shape("an NYC TLC yellow-trip table (fare = fare_amount + tolls_amount)",
            (FARE, TOLLS, PICKUP_DATETIME, *COORDINATE_COLUMNS, PASSENGER_COUNT), f"{FARE} + {TOLLS}")
SHAPES = (KAGGLE, TLC)


def detect_shape(source: str, column_types: dict[str, str]) -> Shape:
    """The shape of a table or query result from its column types; SourceShapeError naming what is missing.

    A `key` column marks the Kaggle schema (its fare includes tolls); without one, a `tolls_amount`
    column marks a TLC table; the bootcamp's tables are the Kaggle schema without a key.
    """
    columns = {name.lower(): kind for name, kind in column_types.items()}
    for shape in (TLC, KAGGLE) if TOLLS in columns and KEY not in columns else (KAGGLE, TLC):
        if all(name in columns for name in shape.columns):
            _check_types(source, shape, columns)
            return shape
    if any(name in columns for name in ZONE_COLUMNS) and not any(name in columns for name in COORDINATE_COLUMNS):
        raise SourceShapeError(
            f"{source}: its trips carry taxi-zone ids ({', '.join(ZONE_COLUMNS)}), not coordinates, like the TLC "
            "tables from 2017 on; the model prices points: use tlc_yellow_trips_2009 ... _2016, which have "
            "pickup and dropoff longitude/latitude")
    missing = {shape: [name for name in shape.columns if name not in columns] for shape in SHAPES}
    closest = min(SHAPES, key=lambda shape: len(missing[shape]))
    raise SourceShapeError(f"{source}: missing the column(s) {', '.join(missing[closest])} of {closest.name} "
                           f"({', '.join(closest.columns)})")


def _check_types(source: str, shape: Shape, columns: dict[str, str]) -> None:
    wrong = [f"{name} is {columns[name]}" for name in shape.columns
             if name != PICKUP_DATETIME and columns[name] not in NUMBER_TYPES]
    if columns[PICKUP_DATETIME] not in TIME_EXPRESSIONS:
        wrong.append(f"{PICKUP_DATETIME} is {columns[PICKUP_DATETIME]}")
    if wrong:
        raise SourceShapeError(f"{source}: {'; '.join(wrong)}: expected numbers, and a TIMESTAMP, DATETIME or STRING "
                               f"{PICKUP_DATETIME}")


def table_sql(table: str) -> str:
    """`SELECT * FROM` a checked table id (a table id cannot be a query parameter)."""
    if not TABLE_ID.match(table):
        raise ValueError(f"bq://{table}: not a table id: give bq://PROJECT.DATASET.TABLE")
    return f"SELECT * FROM `{table}`"


def rides_query(source_sql: str, shape: Shape, column_types: dict[str, str], selection: Selection,
                limit: int | None) -> tuple[str, dict[str, object]]:
    """The query and its parameters: the selected rows, repaired, each marked with the first rule it breaks."""
    types = {name.lower(): kind for name, kind in column_types.items()}
    identity = (f"CAST({KEY} AS STRING)" if KEY in types else f"TO_JSON_STRING(STRUCT({', '.join(shape.columns)}))")
    key = f"CAST({KEY} AS STRING)" if KEY in types else "CAST(NULL AS STRING)"
    numbers = [f"CAST({name} AS FLOAT64) AS {name}" for name in (*COORDINATE_COLUMNS, PASSENGER_COUNT)]
    time = TIME_EXPRESSIONS[types[PICKUP_DATETIME]].format(PICKUP_DATETIME)
    params: dict[str, object] = {}
    where = []
    if selection.since is not None:
        where.append(f"{PICKUP_DATETIME} >= @since")
        params["since"] = selection.since
    if selection.until is not None:
        where.append(f"{PICKUP_DATETIME} < @until")
        params["until"] = selection.until
    sampled = selection.sample is not None and selection.sample < 1
    if sampled:
        where.append(f"ABS(MOD(draw, {SAMPLE_RESOLUTION})) < @threshold")
        params["threshold"] = round(selection.sample * SAMPLE_RESOLUTION)
    draw = ""
    if sampled or limit is not None:
        draw = f",\n    FARM_FINGERPRINT(CONCAT(@seed, ':', {identity})) AS draw"
        params["seed"] = str(selection.seed)
    order = ""
    if limit is not None:
        order = "\n  ORDER BY draw, row_identity\n  LIMIT @limit"
        params["limit"] = limit
    sql = f"""WITH source AS (
  {source_sql}
), rides AS (
  SELECT {identity} AS row_identity, {key} AS {KEY}, CAST({shape.fare} AS FLOAT64) AS {FARE},
    {time} AS {PICKUP_DATETIME}, {', '.join(numbers)}{draw}
  FROM source
), selected AS (
  SELECT * FROM rides
  {('WHERE ' + ' AND '.join(where)) if where else ''}{order}
), repaired AS (
  SELECT {KEY}, {FARE}, {PICKUP_DATETIME}, {', '.join(sql_repaired_columns())}, {PASSENGER_COUNT}
  FROM selected
)
SELECT *, {sql_broken_rule()}
FROM repaired"""
    return sql, params
