"""Ride features in numpy: where the ride goes, how a cab gets there, and when.

`RideFeatureMap` holds the only learned-at-build-time part (the riders' time zone as a UTC-offset
table) and `compute` turns rides into the model's feature matrix, reading the six input columns by
name from a pandas DataFrame (a notebook, batch scoring) or a dict of numpy arrays (the request
path). Training wraps it in a scikit-learn transformer (taxifare.training.transformers), so the
maths lives here only and training and serving can never disagree.

Both ends of a ride are projected once onto a flat kilometre grid around Midtown (exact enough
within the city) and rotated into a few frames; every distance, crossing and flag is read off
that one array, so a single ride costs a few dozen numpy calls.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from taxifare.model import geometry, local_time
from taxifare.model.checks import require_array
from taxifare.model.schema import (
    DROPOFF_LATITUDE,
    DROPOFF_LONGITUDE,
    INPUT_COLUMNS,
    PASSENGER_COUNT,
    PICKUP_DATETIME,
    PICKUP_LATITUDE,
    PICKUP_LONGITUDE,
    RATE_CHANGE_DATE,
    TIMEZONE,
    UTC_SUFFIX,
)

RATE_CHANGE_LOCAL_SECONDS = np.datetime64(RATE_CHANGE_DATE, "s").astype(np.int64)
SECONDS_PER_YEAR = 365.2425 * 86_400
EPOCH_2009 = 1_230_768_000
FRAME_ANGLES_DEG = (0.0, 90.0, geometry.MANHATTAN_GRID_ROTATION_DEG, geometry.MANHATTAN_GRID_ROTATION_DEG + 90.0,
                    15.0, 30.0, 45.0, 60.0, 75.0, 105.0, 120.0, 135.0, 150.0, 165.0)
"""Compass bearings of the frames' axes: north, east, along Manhattan's avenues and streets, then every 15
degrees. Trees split one feature at a time; points seen along many axes let them draw oblique borders
(rivers, boroughs), which cross-validation rewarded (scripts/compare_recipes.py)."""
FRAME_AXES = geometry.axes(FRAME_ANGLES_DEG)
FRAMED_POINTS = ("pickup", "dropoff", "midpoint")
NORTH, EAST, AVENUES, STREETS = 0, 1, 2, 3
MANHATTAN_BOX_KM = ((-7.5, 14.0), (-2.4, 2.2))
"""Manhattan as a rectangle in the avenues/streets frame around Midtown, from the Battery to Inwood
(New Jersey's waterfront, which the rectangle's corner reaches, is taken out)."""
NEW_JERSEY = (-74.025, 40.64)
"""West of this longitude and north of this latitude: Jersey City, Hoboken, Newark (not Staten Island)."""

DISTANCE, ROUTE, PICKUP_PLACE, DROPOFF_PLACE = "distance", "route", "pickup place", "dropoff place"
TIME_OF_DAY, DAY_OF_WEEK, DATE, PASSENGERS = "time of day", "day of week", "date", "passengers"
GROUPS = (DISTANCE, ROUTE, PICKUP_PLACE, DROPOFF_PLACE, TIME_OF_DAY, DAY_OF_WEEK, DATE, PASSENGERS)
"""What a rider calls the features, in the order a fare's breakdown lists them: how far; which way (the
direction, where the ride's middle lies, a river or Manhattan's edge crossed); where it starts and where it
ends (the point, its borough, its distance to each airport and to Midtown); the hour, the weekday, the date
(the year, the season and the 2012 rate change: fare rules change over the years); the passengers."""
PLACE_GROUPS = {"pickup": PICKUP_PLACE, "dropoff": DROPOFF_PLACE, "midpoint": ROUTE}
TIME_FEATURES = (("year", DATE), ("month", DATE), ("weekday", DAY_OF_WEEK), ("hour", TIME_OF_DAY),
                 ("years_since_2009", DATE), ("after_rate_change", DATE))
TRIP_FEATURES = (("trip_km", DISTANCE), ("grid_km", DISTANCE), ("grid_ratio", ROUTE), ("bearing_deg", ROUTE))
"""grid_ratio (street-grid over straight distance) says how the ride runs across the grid, not how far."""
PLACE_FEATURES = ("in_manhattan", "in_new_jersey")
CROSSING_FEATURES = (("crosses_hudson", ROUTE), ("leaves_manhattan", ROUTE))


def utc_seconds(values: object) -> np.ndarray:
    """UTC epoch seconds of a pickup-time column.

    Datetime columns (numpy datetime64, pandas naive or zone-aware) convert directly; strings
    must be UTC in the Kaggle format ("2013-07-06 21:18:00 UTC", the suffix optional) or ISO
    8601 without an offset. Naive means UTC, the data's convention: interpreting a rider's
    local clock is the request parser's job, not the model's.
    """
    if getattr(getattr(values, "dtype", None), "kind", None) == "M":
        if isinstance(values, np.ndarray):
            return values.astype("datetime64[s]").astype(np.int64)
        return np.asarray(values.to_numpy(dtype="datetime64[s]")).astype(np.int64)  # pandas, zone-aware or not
    texts = [str(text).removesuffix(UTC_SUFFIX) for text in np.asarray(values, dtype=object).ravel()]
    try:
        return np.array(texts, dtype="datetime64[s]").astype(np.int64)
    except ValueError as error:
        raise ValueError(f"{PICKUP_DATETIME}: expected UTC times like '2013-07-06 21:18:00 UTC' ({error})") from None


@dataclass(frozen=True, eq=False)
class RideFeatureMap:
    """Turns raw rides (pickup time, two points, passengers) into the model's feature matrix.

    offset_instants, offsets: the riders' time zone as a UTC-offset table (local_time.utc_offset_table).
    landmark_names, landmark_points: (longitude, latitude) of places whose distance matters.
    """

    offset_instants: np.ndarray
    offsets: np.ndarray
    landmark_names: tuple[str, ...]
    landmark_points: np.ndarray

    @classmethod
    def build(cls, timezone: str = TIMEZONE,
              landmarks: Mapping[str, tuple[float, float]] | None = None) -> "RideFeatureMap":
        """The map for a time zone and landmarks (default: New York, its airports and Midtown)."""
        landmarks = geometry.LANDMARKS if landmarks is None else landmarks
        instants, offsets = local_time.shared_offset_table(timezone)
        names = tuple(landmarks)
        return cls(instants, offsets, names, np.array([landmarks[name] for name in names], dtype=np.float64))

    def columns(self) -> tuple[tuple[str, str], ...]:
        """(name, group) of each column `compute` returns, in order: a column is named with its group (GROUPS)."""
        ends = ("pickup", "dropoff")
        points = [(name, PLACE_GROUPS[name.split("_")[0]]) for name in INPUT_COLUMNS[1:5]]
        frames = [(f"{point}_frame_{angle:g}", PLACE_GROUPS[point])
                  for point in FRAMED_POINTS for angle in FRAME_ANGLES_DEG[4:]]
        landmarks = [(f"{end}_to_{name}_km", PLACE_GROUPS[end]) for end in ends for name in self.landmark_names]
        places = [(f"{end}_{place}", PLACE_GROUPS[end]) for end in ends for place in PLACE_FEATURES]
        return (*points, (PASSENGER_COUNT, PASSENGERS), *TRIP_FEATURES, *frames, *landmarks, *places,
                *CROSSING_FEATURES, *TIME_FEATURES)

    @property
    def offset_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(offset_instants, offsets): the riders' zone as local_time's conversions take it."""
        return self.offset_instants, self.offsets

    def names(self) -> tuple[str, ...]:
        """Names of the columns `compute` returns, in order."""
        return tuple(name for name, _ in self.columns())

    def groups(self) -> tuple[str, ...]:
        """The group (GROUPS) of each column `compute` returns, in order: what its contribution to a fare is part of."""
        return tuple(group for _, group in self.columns())

    def compute(self, rides: object) -> np.ndarray:
        """Features of each ride as a float64 array of shape (n_rides, len(names()))."""
        lon, lat, x, y = _ends(rides)
        trip = _trip_km(x, y)
        x, y = np.concatenate([x, (x[:1] + x[1:]) / 2]), np.concatenate([y, (y[:1] + y[1:]) / 2])  # + the midpoint
        frames = geometry.rotate(x, y, FRAME_AXES)  # (3, n, angles): pickup, dropoff, midpoint
        moves = frames[1] - frames[0]
        grid = np.abs(moves[:, AVENUES]) + np.abs(moves[:, STREETS])
        landmark_x, landmark_y = geometry.grid_km(self.landmark_points[:, 0], self.landmark_points[:, 1])
        to_landmarks = np.hypot(x[:2, :, None] - landmark_x, y[:2, :, None] - landmark_y)  # (2, n, landmarks)
        (along_low, along_high), (across_low, across_high) = MANHATTAN_BOX_KM
        new_jersey = (lon < NEW_JERSEY[0]) & (lat > NEW_JERSEY[1])
        ends = frames[:2]
        manhattan = ((ends[..., AVENUES] >= along_low) & (ends[..., AVENUES] <= along_high)
                     & (ends[..., STREETS] >= across_low) & (ends[..., STREETS] <= across_high) & ~new_jersey)

        utc = utc_seconds(rides[PICKUP_DATETIME])
        local = local_time.to_local_seconds(utc, self.offset_instants, self.offsets)
        clock = local_time.civil_time(local)
        return np.array([
            lon[0], lat[0], lon[1], lat[1], np.asarray(rides[PASSENGER_COUNT], dtype=np.float64),
            trip, grid, grid / (trip + 0.05), np.degrees(np.arctan2(moves[:, EAST], moves[:, NORTH])),
            *frames[0, :, 4:].T, *frames[1, :, 4:].T, *frames[2, :, 4:].T, *to_landmarks[0].T, *to_landmarks[1].T,
            manhattan[0], new_jersey[0], manhattan[1], new_jersey[1],
            new_jersey[0] != new_jersey[1], manhattan[0] != manhattan[1],
            clock.year, clock.month, clock.weekday, clock.seconds_of_day / 3600, (utc - EPOCH_2009) / SECONDS_PER_YEAR,
            local >= RATE_CHANGE_LOCAL_SECONDS,
        ], dtype=np.float64).T  # built feature-major: the trees' level walk reads it column by column

    def check(self) -> None:
        """Raise ValueError unless the arrays have the shapes and types `compute` relies on."""
        require_array(self.offset_instants, "offset_instants", np.int64, 1)
        require_array(self.offsets, "offsets", np.int64, 1)
        require_array(self.landmark_points, "landmark_points", np.float64, 2)
        if len(self.offsets) != len(self.offset_instants) or not len(self.offsets):
            raise ValueError("offset table: instants and offsets differ in length")
        if not (isinstance(self.landmark_names, tuple) and all(isinstance(n, str) for n in self.landmark_names)):
            raise ValueError("landmark_names must be a tuple of strings")
        if self.landmark_points.shape != (len(self.landmark_names), 2):
            raise ValueError("landmark_points must hold one (longitude, latitude) per landmark")


def trip_km(rides: object) -> np.ndarray:
    """Each ride's straight-line length in km (its `trip_km` feature), without computing the others."""
    return _trip_km(*_ends(rides)[2:])


def _ends(rides: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Longitude, latitude and flat-map km (x east, y north) of both ends: arrays of shape (2, n_rides)."""
    lon = np.array([rides[PICKUP_LONGITUDE], rides[DROPOFF_LONGITUDE]], dtype=np.float64)
    lat = np.array([rides[PICKUP_LATITUDE], rides[DROPOFF_LATITUDE]], dtype=np.float64)
    return lon, lat, *geometry.grid_km(lon, lat)


def _trip_km(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.hypot(x[1] - x[0], y[1] - y[0])
