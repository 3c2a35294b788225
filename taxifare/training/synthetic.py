"""Synthetic NYC rides priced by the Taxi and Limousine Commission's published fare rules.

Used where the real sample is absent (a user's laptop) and to make sets of any size for scale
tests and benchmarks. Rides are realistic in shape, not in detail: Manhattan-heavy pickups,
airport trips, log-normal trip lengths, traffic that slows at rush hour, and the meter:

- $2.50 initial charge; $0.40 per 1/5 mile or per 2 minutes slow (before 2012-09-04), $0.50 after;
- $0.50 night surcharge 8pm-6am, $1.00 weekday peak surcharge 4pm-8pm, $0.50 MTA tax (from 2009-11);
- JFK <-> Manhattan flat fare: $45, then $52 from 2012-09-04; tolls on some airport trips.

A small share of rows carry the real data's defects (zero coordinates, no passengers, negative
fares) so the cleaning rules get exercised at every scale; the others all pass them.
"""

import numpy as np
import pandas as pd

from taxifare.model import geometry
from taxifare.model.schema import (
    CSV_COLUMNS,
    DROPOFF_LATITUDE,
    DROPOFF_LONGITUDE,
    FARE,
    KEY,
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    PASSENGER_COUNT,
    PICKUP_DATETIME,
    PICKUP_LATITUDE,
    PICKUP_LONGITUDE,
    RATE_CHANGE_DATE,
    START_FARE,
    TIMEZONE,
    UTC_SUFFIX,
)
from taxifare.training.data import KAGGLE_DATETIME_FORMAT

SOURCE_NAME = "synthetic"
PERIOD = ("2009-01-01", "2015-07-01")
RATE_CHANGE = pd.Timestamp(RATE_CHANGE_DATE, tz=TIMEZONE)
MTA_TAX_START = pd.Timestamp("2009-11-01", tz=TIMEZONE)
KM_PER_MILE = 1.609344
AREAS = {
    # name: (share of pickups, (lon, lat) centre, spread in degrees)
    "midtown": (0.45, geometry.LANDMARKS["midtown"], 0.012),
    "downtown": (0.20, (-74.005, 40.720), 0.012),
    "uptown": (0.15, (-73.960, 40.790), 0.015),
    "brooklyn": (0.08, (-73.960, 40.680), 0.025),
    "queens": (0.04, (-73.880, 40.740), 0.030),
    "jfk": (0.05, geometry.LANDMARKS["jfk"], 0.004),
    "lga": (0.03, geometry.LANDMARKS["lga"], 0.003),
}
PASSENGERS = ((1, 0.70), (2, 0.15), (3, 0.04), (4, 0.02), (5, 0.06), (6, 0.03))
DEFECT_RATE = 0.01


def _points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names = list(AREAS)
    area = rng.choice(len(names), size=n, p=[AREAS[name][0] for name in names])
    centres = np.array([AREAS[name][1] for name in names])
    spread = np.array([AREAS[name][2] for name in names])
    lon = centres[area, 0] + rng.normal(0, spread[area])
    lat = centres[area, 1] + rng.normal(0, spread[area])
    return lon, lat, area == names.index("jfk")


def _pickup_times(rng: np.random.Generator, n: int) -> pd.DatetimeIndex:
    start, end = (pd.Timestamp(t, tz="UTC").value // 10**9 for t in PERIOD)
    return pd.to_datetime(rng.integers(start, end, size=n), unit="s", utc=True)


def generate_rides(n: int, seed: int = 0, defect_rate: float = DEFECT_RATE) -> pd.DataFrame:
    """n rides in the Kaggle schema (times as "... UTC" strings), fares from the meter rules."""
    rng = np.random.default_rng(seed)
    times = _pickup_times(rng, n)
    local = times.tz_convert(TIMEZONE)
    lon1, lat1, from_jfk = _points(rng, n)
    to_jfk = ~from_jfk & (rng.random(n) < 0.04)
    trip_km = np.clip(rng.lognormal(np.log(2.2), 0.75, n), 0.3, 40)
    heading = rng.uniform(0, 2 * np.pi, n)
    lon2 = lon1 + trip_km * np.sin(heading) / (111.32 * np.cos(np.radians(lat1)))
    lat2 = lat1 + trip_km * np.cos(heading) / 111.32
    to_manhattan = rng.normal(0, 0.01, (n, 2)) + geometry.LANDMARKS["midtown"]
    lon2 = np.where(from_jfk, to_manhattan[:, 0], np.where(to_jfk, geometry.LANDMARKS["jfk"][0], lon2))
    lat2 = np.where(from_jfk, to_manhattan[:, 1], np.where(to_jfk, geometry.LANDMARKS["jfk"][1], lat2))
    lon2, lat2 = np.clip(lon2, *LONGITUDE_RANGE), np.clip(lat2, *LATITUDE_RANGE)  # long trips end inside the box

    hour = local.hour.to_numpy()
    weekday = local.day_of_week.to_numpy() < 5
    after = np.asarray(local >= RATE_CHANGE)
    road_miles = geometry.street_grid_km(lon1, lat1, lon2, lat2) * rng.uniform(1.0, 1.25, n) / KM_PER_MILE
    rush = weekday & (((hour >= 7) & (hour < 10)) | ((hour >= 16) & (hour < 20)))
    slow_minutes = road_miles * np.where(rush, 2.5, 1.0) * rng.gamma(2.0, 0.6, n)
    unit = np.where(after, 0.50, 0.40)
    meter = START_FARE + unit * (np.ceil(road_miles * 5) + np.floor(slow_minutes / 2))
    flat = np.where(after, 52.0, 45.0)
    fare = np.where(from_jfk | to_jfk, flat + np.where(rng.random(n) < 0.5, 5.33, 0.0), meter)
    fare += np.where((hour >= 20) | (hour < 6), 0.50, 0.0)
    fare += np.where(weekday & (hour >= 16) & (hour < 20), 1.00, 0.0)
    fare += np.where(local >= MTA_TAX_START, 0.50, 0.0)
    passengers = rng.choice([p for p, _ in PASSENGERS], size=n, p=[w for _, w in PASSENGERS])

    rides = pd.DataFrame({
        FARE: np.round(fare, 2),
        PICKUP_DATETIME: times.strftime(KAGGLE_DATETIME_FORMAT),
        PICKUP_LONGITUDE: lon1, PICKUP_LATITUDE: lat1,
        DROPOFF_LONGITUDE: lon2, DROPOFF_LATITUDE: lat2,
        PASSENGER_COUNT: passengers,
    })
    _add_defects(rides, rng, defect_rate)
    rides[KEY] = rides[PICKUP_DATETIME].str.removesuffix(UTC_SUFFIX) + "." + pd.RangeIndex(n).astype(str)
    return rides[list(CSV_COLUMNS)]


def _add_defects(rides: pd.DataFrame, rng: np.random.Generator, rate: float) -> None:
    """Spoil a `rate` share of rows the way the real data is spoiled."""
    defective = np.flatnonzero(rng.random(len(rides)) < rate)
    kinds = rng.integers(0, 3, len(defective))
    rides.loc[defective[kinds == 0], [PICKUP_LONGITUDE, PICKUP_LATITUDE]] = 0.0
    rides.loc[defective[kinds == 1], PASSENGER_COUNT] = 0
    rides.loc[defective[kinds == 2], FARE] = -rides.loc[defective[kinds == 2], FARE]
