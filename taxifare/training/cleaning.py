"""Explicit, counted cleaning rules for raw Kaggle rides.

Each rule names a defect found in the real data, says why such a ride cannot be learned from,
and drops the rows that have it. Rules run in order and a row is counted under the first rule
it breaks, so the counts add up to the rows removed. One defect is repaired instead of dropped:
points whose latitude and longitude were swapped.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from taxifare.model.features import trip_km
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


@dataclass(frozen=True)
class Rule:
    """A defect: its name, why it disqualifies a ride, and a mask of the rows that have it."""

    name: str
    reason: str
    broken: Callable[[pd.DataFrame], pd.Series]


def _between(values: pd.Series, bounds: tuple[float, float]) -> pd.Series:
    return values.between(*bounds)


def _at_placeholder(rides: pd.DataFrame) -> pd.Series:
    at = pd.Series(False, index=rides.index)
    for lon, lat in POINTS:
        at |= (rides[lon] == PLACEHOLDER_POINT[0]) & (rides[lat] == PLACEHOLDER_POINT[1])
    return at


def _below_the_meter(rides: pd.DataFrame) -> pd.Series:
    length = trip_km(rides)
    return rides[FARE] < FARE_RANGE[0] + METER_MIN_DOLLARS_PER_KM * np.maximum(length - METER_SLACK_KM, 0.0)


def _outside_area(rides: pd.DataFrame) -> pd.Series:
    inside = pd.Series(True, index=rides.index)
    for lon, lat in POINTS:
        inside &= _between(rides[lon], LONGITUDE_RANGE) & _between(rides[lat], LATITUDE_RANGE)
    return ~inside


RULES = (
    Rule("missing_values", "a fare, time, coordinate or passenger count is empty or unparseable",
         lambda r: r[[FARE, *INPUT_COLUMNS]].isna().any(axis=1)),
    Rule("fare_out_of_range", f"fare outside ${FARE_RANGE[0]:.2f}-${FARE_RANGE[1]:.0f}: refunds, test entries, typos",
         lambda r: ~_between(r[FARE], FARE_RANGE)),
    Rule("zero_coordinates", "a coordinate is exactly 0: the meter had no GPS fix",
         lambda r: (r[list(COORDINATE_COLUMNS)] == 0).any(axis=1)),
    Rule("placeholder_coordinates", f"a point at {PLACEHOLDER_POINT[1]}, {PLACEHOLDER_POINT[0]} (Connecticut): a fix "
         "meters logged without a real one", _at_placeholder),
    Rule("outside_service_area", f"a point outside latitude {LATITUDE_RANGE} / longitude {LONGITUDE_RANGE}",
         _outside_area),
    Rule("passenger_count_out_of_range", f"passengers not a whole number from {PASSENGER_RANGE[0]} to {PASSENGER_RANGE[1]}",
         lambda r: ~_between(r[PASSENGER_COUNT], PASSENGER_RANGE) | (r[PASSENGER_COUNT] % 1 != 0)),
    Rule("fare_below_the_meter", f"fare under ${FARE_RANGE[0]:.2f} + ${METER_MIN_DOLLARS_PER_KM}/km of the straight "
         f"line beyond its first {METER_SLACK_KM:g} km, which no meter ever charged: a wrong fare or a wrong GPS fix",
         _below_the_meter),
)


@dataclass
class CleaningResult:
    """The valid rides and, per rule, how many rows it removed (or repaired)."""

    rides: pd.DataFrame
    counts: dict[str, int]
    rows_in: int


def repair_swapped_coordinates(rides: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Swap back points whose latitude is a NYC longitude and longitude a NYC latitude."""
    rides = rides.copy()
    repaired = pd.Series(False, index=rides.index)
    for lon, lat in POINTS:
        swapped = _between(rides[lon], LATITUDE_RANGE) & _between(rides[lat], LONGITUDE_RANGE)
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
        broken = rule.broken(rides).to_numpy() & keep
        counts[rule.name] = int(broken.sum())
        keep &= ~broken
    clean = rides[keep].reset_index(drop=True)
    clean[PASSENGER_COUNT] = clean[PASSENGER_COUNT].astype(np.int64)
    return CleaningResult(rides=clean, counts=counts, rows_in=len(rides))
