"""Explicit, counted cleaning rules for raw Kaggle rides.

Each rule names a defect found in the real data, says why such a ride cannot be learned from,
and drops the rows that have it. Rules run in order and a row is counted under the first rule
it breaks, so the counts add up to the rows removed. One defect is repaired instead of dropped:
points whose latitude and longitude were swapped.

Each rule's condition is written once, as small declarative predicates that compile both to a
pandas mask (clean_rides, for CSV sources) and to GoogleSQL (sql_repaired_columns and
sql_broken_rule, for BigQuery sources, counted by count_marked): the two paths cannot drift apart.
"""

import functools
import operator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from taxifare.model import geometry
from taxifare.model.schema import (
    COORDINATE_COLUMNS,
    DROPOFF_LATITUDE,
    DROPOFF_LONGITUDE,
    FARE,
    INPUT_COLUMNS,
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    PASSENGER_COUNT,
    PASSENGER_RANGE,
    PICKUP_DATETIME,
    PICKUP_LATITUDE,
    PICKUP_LONGITUDE,
)

FARE_RANGE = (2.5, 500.0)
"""$2.50 was the meter's initial charge (2009-2015); nothing legitimate costs more than $500."""
METER_MIN_DOLLARS_PER_KM = 1.243
"""The lowest rate the meter charged in the data: $0.40 per 1/5 mile (until 2012-09-04), per km. A cab drives
at least the straight line, so no metered ride costs less than the start fare plus this for each km of it."""
METER_SLACK_KM = 1.0
"""Kilometres of the straight line left uncharged by that bound: a GPS fix can be a block off."""

PLACEHOLDER_POINT = (-73.137393, 41.366138)
"""(longitude, latitude) that 2009-2010 meters logged when they had no real fix: a spot in Connecticut,
100 km from Manhattan, given to 15 of the shared rides (fares $2.50 to $50, mostly Manhattan trips)."""

SWAPPED_COORDINATES = "swapped_coordinates_repaired"
POINTS = ((PICKUP_LONGITUDE, PICKUP_LATITUDE), (DROPOFF_LONGITUDE, DROPOFF_LATITUDE))
NOT_NUMERIC = {PICKUP_DATETIME}
"""Columns that can be missing but not NaN (every other column of a ride is a float)."""


class Predicate:
    """A condition on a ride's columns, compiled both to a pandas mask and to a GoogleSQL expression.

    One definition serves the CSV path (pandas) and the BigQuery path (a CASE marking each row), so the two can
    never clean differently. A missing value (NaN, NaT, NULL) makes `Outside` and `NotWhole` true and
    `Equals` and `Inside` false, in pandas and in SQL alike.
    """

    def mask(self, rides: pd.DataFrame) -> pd.Series:
        raise NotImplementedError

    def sql(self) -> str:
        raise NotImplementedError


def _literal(value: float) -> str:
    """A float as GoogleSQL reads it back to the same float64 (repr round-trips)."""
    return repr(float(value))


@dataclass(frozen=True)
class Missing(Predicate):
    """Any of the columns is empty or unparseable (NaN, NaT, NULL)."""

    columns: tuple[str, ...]

    def mask(self, rides: pd.DataFrame) -> pd.Series:
        return rides[list(self.columns)].isna().any(axis=1)

    def sql(self) -> str:
        return "(" + " OR ".join(f"{c} IS NULL" if c in NOT_NUMERIC else f"{c} IS NULL OR IS_NAN({c})"
                                 for c in self.columns) + ")"


@dataclass(frozen=True)
class Inside(Predicate):
    """low <= column <= high."""

    column: str
    bounds: tuple[float, float]

    def mask(self, rides: pd.DataFrame) -> pd.Series:
        return rides[self.column].between(*self.bounds)

    def sql(self) -> str:
        low, high = self.bounds
        return f"COALESCE({self.column} BETWEEN {_literal(low)} AND {_literal(high)}, FALSE)"


@dataclass(frozen=True)
class Outside(Predicate):
    """Not low <= column <= high (a missing value is outside)."""

    column: str
    bounds: tuple[float, float]

    def mask(self, rides: pd.DataFrame) -> pd.Series:
        return ~Inside(self.column, self.bounds).mask(rides)

    def sql(self) -> str:
        return f"NOT {Inside(self.column, self.bounds).sql()}"


@dataclass(frozen=True)
class Equals(Predicate):
    """column == value, exactly."""

    column: str
    value: float

    def mask(self, rides: pd.DataFrame) -> pd.Series:
        return rides[self.column] == self.value

    def sql(self) -> str:
        return f"COALESCE({self.column} = {_literal(self.value)}, FALSE)"


@dataclass(frozen=True)
class NotWhole(Predicate):
    """The column has a fractional part (a missing value is not whole)."""

    column: str

    def mask(self, rides: pd.DataFrame) -> pd.Series:
        return rides[self.column] % 1 != 0

    def sql(self) -> str:
        return f"COALESCE({self.column} != TRUNC({self.column}), TRUE)"


@dataclass(frozen=True)
class _Combination(Predicate):
    parts: tuple[Predicate, ...]
    _operator = None
    _keyword = ""

    def mask(self, rides: pd.DataFrame) -> pd.Series:
        return functools.reduce(self._operator, [part.mask(rides) for part in self.parts])

    def sql(self) -> str:
        return "(" + f" {self._keyword} ".join(part.sql() for part in self.parts) + ")"


@dataclass(frozen=True)
class FareUnder(Predicate):
    """The fare is under `start` plus `per_km` for each km of the straight line beyond `slack_km`.

    The line's length is measured on the model's flat map (taxifare.model.geometry), in both languages.
    """

    start: float
    per_km: float
    slack_km: float

    def mask(self, rides: pd.DataFrame) -> pd.Series:
        east = (rides[DROPOFF_LONGITUDE] - rides[PICKUP_LONGITUDE]) * geometry.KM_PER_DEGREE_LONGITUDE
        north = (rides[DROPOFF_LATITUDE] - rides[PICKUP_LATITUDE]) * geometry.KM_PER_DEGREE_LATITUDE
        beyond = np.maximum(np.hypot(east, north) - self.slack_km, 0.0)
        return rides[FARE] < self.start + self.per_km * beyond

    def sql(self) -> str:
        east = f"({DROPOFF_LONGITUDE} - {PICKUP_LONGITUDE}) * {_literal(geometry.KM_PER_DEGREE_LONGITUDE)}"
        north = f"({DROPOFF_LATITUDE} - {PICKUP_LATITUDE}) * {_literal(geometry.KM_PER_DEGREE_LATITUDE)}"
        beyond = f"GREATEST(SQRT(POW({east}, 2) + POW({north}, 2)) - {_literal(self.slack_km)}, 0)"
        return f"COALESCE({FARE} < {_literal(self.start)} + {_literal(self.per_km)} * {beyond}, FALSE)"


class AnyOf(_Combination):
    """At least one of the parts holds."""

    _operator, _keyword = staticmethod(operator.or_), "OR"


class AllOf(_Combination):
    """Every part holds."""

    _operator, _keyword = staticmethod(operator.and_), "AND"


@dataclass(frozen=True)
class Rule:
    """A defect: its name, why it disqualifies a ride, and the condition of the rows that have it."""

    name: str
    reason: str
    broken: Predicate


RULES = (
    Rule("missing_values", "a fare, time, coordinate or passenger count is empty or unparseable",
         Missing((FARE, *INPUT_COLUMNS))),
    Rule("fare_out_of_range", f"fare outside ${FARE_RANGE[0]:.2f}-${FARE_RANGE[1]:.0f}: refunds, test entries, typos",
         Outside(FARE, FARE_RANGE)),
    Rule("zero_coordinates", "a coordinate is exactly 0: the meter had no GPS fix",
         AnyOf(tuple(Equals(column, 0.0) for column in COORDINATE_COLUMNS))),
    Rule("placeholder_coordinates", f"a point at {PLACEHOLDER_POINT[1]}, {PLACEHOLDER_POINT[0]} (Connecticut): a fix "
         "meters logged without a real one",
         AnyOf(tuple(AllOf((Equals(lon, PLACEHOLDER_POINT[0]), Equals(lat, PLACEHOLDER_POINT[1])))
                     for lon, lat in POINTS))),
    Rule("outside_service_area", f"a point outside latitude {LATITUDE_RANGE} / longitude {LONGITUDE_RANGE}",
         AnyOf(tuple(part for lon, lat in POINTS
                     for part in (Outside(lon, LONGITUDE_RANGE), Outside(lat, LATITUDE_RANGE))))),
    Rule("passenger_count_out_of_range", f"passengers not a whole number from {PASSENGER_RANGE[0]} to {PASSENGER_RANGE[1]}",
         AnyOf((Outside(PASSENGER_COUNT, PASSENGER_RANGE), NotWhole(PASSENGER_COUNT)))),
    Rule("fare_below_the_meter", f"fare under ${FARE_RANGE[0]:.2f} + ${METER_MIN_DOLLARS_PER_KM}/km of the straight "
         f"line beyond its first {METER_SLACK_KM:g} km, which no meter ever charged: a wrong fare or a wrong GPS fix",
         FareUnder(FARE_RANGE[0], METER_MIN_DOLLARS_PER_KM, METER_SLACK_KM)),
)

SWAPPED = {(lon, lat): AllOf((Inside(lon, LATITUDE_RANGE), Inside(lat, LONGITUDE_RANGE))) for lon, lat in POINTS}
"""A point whose longitude is a NYC latitude and latitude a NYC longitude: repaired by swapping back."""


@dataclass
class CleaningResult:
    """The valid rides, per rule how many rows it removed (or repaired), and the rows read from each source."""

    rides: pd.DataFrame
    counts: dict[str, int]
    rows_in: int
    rows_by_source: dict[str, int] = field(default_factory=dict)


def empty_counts() -> dict[str, int]:
    """Every count at zero, in the order clean_rides reports them."""
    return {SWAPPED_COORDINATES: 0, **{rule.name: 0 for rule in RULES}}


def combine(parts: list[CleaningResult]) -> CleaningResult:
    """One result from the results of several chunks or sources: rides stacked, counts added."""
    counts, rows_by_source = empty_counts(), {}
    for part in parts:
        for name, count in part.counts.items():
            counts[name] += count
        for source, rows in part.rows_by_source.items():
            rows_by_source[source] = rows_by_source.get(source, 0) + rows
    frames = [part.rides for part in parts if len(part.rides)]
    rides = pd.concat(frames, ignore_index=True) if frames else parts[0].rides if parts else pd.DataFrame()
    return CleaningResult(rides=rides, counts=counts, rows_in=sum(part.rows_in for part in parts),
                          rows_by_source=rows_by_source)


def repair_swapped_coordinates(rides: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Swap back points whose latitude is a NYC longitude and longitude a NYC latitude."""
    rides = rides.copy()
    repaired = pd.Series(False, index=rides.index)
    for (lon, lat), condition in SWAPPED.items():
        swapped = condition.mask(rides)
        longitudes, latitudes = rides[lon].to_numpy(), rides[lat].to_numpy()
        rides[lon], rides[lat] = np.where(swapped, latitudes, longitudes), np.where(swapped, longitudes, latitudes)
        repaired |= swapped
    return rides, int(repaired.sum())


def clean_rides(rides: pd.DataFrame) -> CleaningResult:
    """Repair swapped points, then drop rows by the rules in order, counting each rule's rows."""
    rides, repaired = repair_swapped_coordinates(rides)
    counts = {SWAPPED_COORDINATES: repaired}
    keep = np.ones(len(rides), dtype=bool)
    for rule in RULES:
        broken = rule.broken.mask(rides).to_numpy() & keep
        counts[rule.name] = int(broken.sum())
        keep &= ~broken
    clean = rides[keep].reset_index(drop=True)
    clean[PASSENGER_COUNT] = clean[PASSENGER_COUNT].astype(np.int64)
    return CleaningResult(rides=clean, counts=counts, rows_in=len(rides))


BROKEN_RULE = "broken_rule"
REPAIRED = "repaired"


def sql_repaired_columns() -> list[str]:
    """SELECT expressions that repair swapped points in SQL (as repair_swapped_coordinates does) and flag them."""
    columns = []
    for (lon, lat), condition in SWAPPED.items():
        columns += [f"IF({condition.sql()}, {lat}, {lon}) AS {lon}", f"IF({condition.sql()}, {lon}, {lat}) AS {lat}"]
    return columns + [f"({' OR '.join(condition.sql() for condition in SWAPPED.values())}) AS {REPAIRED}"]


def sql_broken_rule() -> str:
    """A SELECT expression naming the first rule a (repaired) row breaks, NULL for a valid ride."""
    cases = " ".join(f"WHEN {rule.broken.sql()} THEN '{rule.name}'" for rule in RULES)
    return f"CASE {cases} ELSE NULL END AS {BROKEN_RULE}"


def count_marked(rides: pd.DataFrame, source: str) -> CleaningResult:
    """Rides that SQL repaired and marked (sql_repaired_columns, sql_broken_rule): drop and count as clean_rides does."""
    broken = rides[BROKEN_RULE]
    counts = empty_counts()
    counts[SWAPPED_COORDINATES] = int(rides[REPAIRED].fillna(False).astype(bool).sum())
    for name, count in broken.value_counts().items():
        counts[name] = int(count)
    clean = rides[broken.isna().to_numpy()].drop(columns=[BROKEN_RULE, REPAIRED]).reset_index(drop=True)
    clean[PASSENGER_COUNT] = clean[PASSENGER_COUNT].astype(np.int64)
    return CleaningResult(rides=clean, counts=counts, rows_in=len(rides), rows_by_source={source: len(rides)})
