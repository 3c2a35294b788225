"""Rides longer than the training rides: never cheaper than the same line's fare at the reach, plus a rate per km.

Trees cannot extrapolate: past the longest trips they learned from, their fare stops growing, and
where few rides went (New Jersey past Newark Airport, the box's far corners) it can even fall as a
ride gets longer. So a ride longer than the reach (a length all but the longest 0.5% of training
trips stay under) gets at least the fare of the same ride cut at the reach, on its own line from
its pickup, plus a rate for each km beyond (the median fare per km of the longest tenth of the
training trips). Shorter rides are the trees' alone; most rides never reach this code.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from taxifare.model.schema import (
    DROPOFF_LATITUDE,
    DROPOFF_LONGITUDE,
    INPUT_COLUMNS,
    PICKUP_LATITUDE,
    PICKUP_LONGITUDE,
)

Pricer = Callable[[dict[str, object]], np.ndarray]
"""Fares of rides given as numpy columns, before this floor (the trees' and their segments' own)."""


@dataclass(frozen=True, eq=False)
class LongTrips:
    """The floor under rides longer than `reach_km`.

    column: the feature holding each ride's straight-line length in km.
    reach_km: rides longer than this are floored.
    rate: dollars per km beyond the reach.
    """

    column: int
    reach_km: float
    rate: float

    def floored(self, rides: object, X: np.ndarray, fares: np.ndarray, price: Pricer) -> np.ndarray:
        """`fares`, raised where a ride past the reach costs less than its floor (`price` prices the cut rides)."""
        long = X[:, self.column] > self.reach_km
        if not long.any():  # one comparison for the common ride
            return fares
        floor = price(self.cut(rides, X, long)) + self.beyond(X[long])
        fares = fares.copy()
        fares[long] = np.maximum(fares[long], floor)
        return fares

    def cut(self, rides: object, X: np.ndarray, rows: np.ndarray) -> dict[str, object]:
        """The `rows` (a mask) of `rides`, each past the reach (X: their features), cut at the reach on their own line."""
        return cut_rides(rides, rows, self.reach_km / X[rows, self.column])

    def beyond(self, X: np.ndarray) -> np.ndarray:
        """The per-km part of the floor of rides past the reach (X their features): the rate for each km beyond."""
        return self.rate * (X[:, self.column] - self.reach_km)

    def check(self, n_features: int) -> None:
        if not isinstance(self.column, int) or not 0 <= self.column < n_features:
            raise ValueError("long_trips.column must be a feature index")
        if not all(isinstance(n, float) and np.isfinite(n) and n >= 0 for n in (self.reach_km, self.rate)):
            raise ValueError("long_trips' reach and rate must be finite, non-negative floats")


def cut_rides(rides: object, rows: np.ndarray, scale: np.ndarray) -> dict[str, object]:
    """The `rows` of `rides` (DataFrame or dict of columns), each dropoff moved towards its pickup to `scale`.

    Longitude and latitude scale together: the model's flat map is affine in them, so the cut ride
    runs along the same line, `scale` times as long. Times stay as given (a pandas column stays one).
    """
    columns = {name: _take(rides[name], rows) for name in INPUT_COLUMNS}
    for start, end in ((PICKUP_LONGITUDE, DROPOFF_LONGITUDE), (PICKUP_LATITUDE, DROPOFF_LATITUDE)):
        pickup, dropoff = np.asarray(columns[start], dtype=np.float64), np.asarray(columns[end], dtype=np.float64)
        columns[end] = pickup + (dropoff - pickup) * scale
    return columns


def _take(values: object, rows: np.ndarray) -> object:
    """The selected rows of a column: a numpy array or pandas Series keeps its type, a list becomes an array."""
    return values[rows] if hasattr(values, "shape") else np.asarray(values)[rows]
