"""Ride features as a scikit-learn transformer: distances, directions and New York local time.

The transformer reads the six input columns by name from anything indexable by column name: a
pandas DataFrame (training, batch scoring) or a dict of numpy arrays (the request path, where
building a DataFrame alone would cost half our latency budget). Everything is vectorised numpy.
"""

from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from taxifare import geo, local_time
from taxifare.schema import (
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
TIME_FEATURES = ("year", "month", "weekday", "hour", "years_since_2009", "after_rate_change")
GEOMETRY_FEATURES = ("haversine_km", "manhattan_km", "bearing_deg")
EPOCH_2009 = 1_230_768_000


def utc_seconds(values: object) -> np.ndarray:
    """UTC epoch seconds of a datetime column.

    Timezone-aware pandas datetimes are converted from their zone; everything without a zone
    (numpy datetime64, naive pandas datetimes, strings) is UTC, the Kaggle data's convention.
    Interpreting a rider's local clock is the request parser's job, not the model's.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values.astype("datetime64[s]").astype(np.int64)
    if getattr(getattr(values, "dtype", None), "tz", None) is None:
        import pandas as pd  # only for strings: keeps pandas out of the server's startup

        values = pd.to_datetime(values, utc=True, format="mixed")
    return np.asarray(values.to_numpy(dtype="datetime64[s]")).astype(np.int64)


class RideFeatures(TransformerMixin, BaseEstimator):
    """Turn raw rides (pickup time, two points, passengers) into model features.

    Parameters
    ----------
    timezone : IANA zone of the riders' clocks; hour, weekday and month are local there.
    landmarks : name -> (longitude, latitude); distances from pickup and dropoff to each.
    """

    def __init__(self, timezone: str = TIMEZONE, landmarks: Mapping[str, tuple[float, float]] | None = None):
        self.timezone = timezone
        self.landmarks = landmarks

    def fit(self, X: object, y: object = None) -> "RideFeatures":
        """Learn the time zone's offset table; nothing is learned from the rides themselves."""
        self.offset_instants_, self.offsets_ = local_time.utc_offset_table(self.timezone)
        landmarks = geo.LANDMARKS if self.landmarks is None else self.landmarks
        self.landmark_names_ = tuple(landmarks)
        self.landmark_points_ = np.array([landmarks[name] for name in self.landmark_names_], dtype=float)
        self.n_features_in_ = len(INPUT_COLUMNS)
        self.feature_names_in_ = np.array(INPUT_COLUMNS, dtype=object)
        return self

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the columns `transform` returns, in order."""
        check_is_fitted(self, "landmark_names_")
        landmark = [f"{end}_to_{name}_km" for end in ("pickup", "dropoff") for name in self.landmark_names_]
        names = [*INPUT_COLUMNS[1:], *GEOMETRY_FEATURES, *landmark, *TIME_FEATURES]
        return np.array(names, dtype=object)

    def transform(self, X: object) -> np.ndarray:
        """Features of each ride as a float64 array of shape (n_rides, n_features)."""
        check_is_fitted(self, "landmark_names_")
        return self.compute(X)

    def compute(self, X: object) -> np.ndarray:
        """`transform` without scikit-learn's per-call checks (~10% of a one-ride prediction).

        For FarePredictor, which only ever holds a fitted pipeline; everyone else calls transform.
        """
        lon1, lat1, lon2, lat2, passengers = (
            np.asarray(X[name], dtype=np.float64)
            for name in (PICKUP_LONGITUDE, PICKUP_LATITUDE, DROPOFF_LONGITUDE, DROPOFF_LATITUDE, PASSENGER_COUNT)
        )
        n = len(lon1)
        east, north = geo.trip_offsets_km(lon1, lat1, lon2, lat2)
        to_landmarks = geo.haversine_km(
            np.concatenate([lon1, lon2])[:, None], np.concatenate([lat1, lat2])[:, None],
            self.landmark_points_[:, 0], self.landmark_points_[:, 1],
        )
        utc = utc_seconds(X[PICKUP_DATETIME])
        local = local_time.to_local_seconds(utc, self.offset_instants_, self.offsets_)
        clock = local_time.civil_time(local)
        return np.column_stack([
            lon1, lat1, lon2, lat2, passengers,
            geo.haversine_km(lon1, lat1, lon2, lat2), geo.manhattan_km(east, north), geo.bearing_deg(east, north),
            to_landmarks[:n], to_landmarks[n:],
            clock.year, clock.month, clock.weekday, clock.seconds_of_day / 3600,
            (utc - EPOCH_2009) / SECONDS_PER_YEAR, local >= RATE_CHANGE_LOCAL_SECONDS,
        ]).astype(np.float64, copy=False)
