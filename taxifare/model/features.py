"""Ride features in numpy: distances, directions and New York local time.

`RideFeatureMap` holds everything the features need (the time zone's UTC-offset table, the
landmarks) as plain arrays, and `compute` turns rides into the model's feature matrix. It reads
the six input columns by name from anything indexable by column name: a pandas DataFrame (a
notebook, batch scoring) or a dict of numpy arrays (the request path, where building a DataFrame
alone would cost half the latency budget). Training wraps it in a scikit-learn transformer
(taxifare.training.transformers), so the maths lives here only.
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
)

RATE_CHANGE_LOCAL_SECONDS = np.datetime64(RATE_CHANGE_DATE, "s").astype(np.int64)
SECONDS_PER_YEAR = 365.2425 * 86_400
EPOCH_2009 = 1_230_768_000
UTC_SUFFIX = " UTC"
TIME_FEATURES = ("year", "month", "weekday", "hour", "years_since_2009", "after_rate_change")
GEOMETRY_FEATURES = ("haversine_km", "manhattan_km", "bearing_deg")


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
        instants, offsets = local_time.utc_offset_table(timezone)
        names = tuple(landmarks)
        return cls(instants, offsets, names, np.array([landmarks[name] for name in names], dtype=np.float64))

    def names(self) -> tuple[str, ...]:
        """Names of the columns `compute` returns, in order."""
        landmark = [f"{end}_to_{name}_km" for end in ("pickup", "dropoff") for name in self.landmark_names]
        return (*INPUT_COLUMNS[1:], *GEOMETRY_FEATURES, *landmark, *TIME_FEATURES)

    def compute(self, rides: object) -> np.ndarray:
        """Features of each ride as a float64 array of shape (n_rides, len(names()))."""
        lon1, lat1, lon2, lat2, passengers = (
            np.asarray(rides[name], dtype=np.float64)
            for name in (PICKUP_LONGITUDE, PICKUP_LATITUDE, DROPOFF_LONGITUDE, DROPOFF_LATITUDE, PASSENGER_COUNT)
        )
        n = len(lon1)
        east, north = geometry.trip_offsets_km(lon1, lat1, lon2, lat2)
        to_landmarks = geometry.haversine_km(
            np.concatenate([lon1, lon2])[:, None], np.concatenate([lat1, lat2])[:, None],
            self.landmark_points[:, 0], self.landmark_points[:, 1],
        )
        utc = utc_seconds(rides[PICKUP_DATETIME])
        local = local_time.to_local_seconds(utc, self.offset_instants, self.offsets)
        clock = local_time.civil_time(local)
        return np.array([
            lon1, lat1, lon2, lat2, passengers,
            geometry.haversine_km(lon1, lat1, lon2, lat2), geometry.manhattan_km(east, north),
            geometry.bearing_deg(east, north),
            *to_landmarks[:n].T, *to_landmarks[n:].T,
            clock.year, clock.month, clock.weekday, clock.seconds_of_day / 3600,
            (utc - EPOCH_2009) / SECONDS_PER_YEAR, local >= RATE_CHANGE_LOCAL_SECONDS,
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

