"""FareModel: the compiled, numpy-only fare model that model.joblib holds and the function serves.

Training fits a scikit-learn pipeline and compiles it into this (taxifare.training.compile): the
feature map's parameters and the flattened trees, nothing else, so serving needs numpy alone and
loading it runs no foreign code (taxifare.model.loading).

A model prices each ride with the ensemble of the segment the ride falls in: rides are routed on
one feature against sorted edges (trips under 100 m to their own model). With no edges, one
ensemble prices every ride. No fare is below the meter's start fare, and a ride longer than the
training rides is never cheaper than the same line's fare at the reach plus a rate per km
(LongTrips). A model may also carry a fare range: two quantile ensembles widened by margins calibrated for a few coverages (conformal prediction), never
below the start fare, and always around the fare itself.

`explain` breaks each fare down exactly (taxifare.model.breakdown): what the ensemble that priced the
ride starts from, plus each feature's contribution (path-dependent TreeSHAP, taxifare.model.tree_shap).
A fare the long-trip floor set is the floor's: the cut ride's breakdown, plus the per-km part as the
ride's length's (the distance group); a fare the start fare set adds what lifts it to $2.50 there too.
"""

from dataclasses import dataclass

import numpy as np

from taxifare.model.breakdown import FareExplanation
from taxifare.model.checks import require_array, require_indices
from taxifare.model.features import DISTANCE, RideFeatureMap
from taxifare.model.long_trips import LongTrips
from taxifare.model.schema import START_FARE
from taxifare.model.service_area import ServiceArea
from taxifare.model.sorted_lookup import position_right
from taxifare.model.tree_shap import leaf_paths
from taxifare.model.trees import TreeEnsemble

FORMAT_VERSION = 4
"""Bumped whenever the fields below change meaning: a server refuses files of another version."""
RANGE_COVERAGES = (50, 80, 90, 95)
"""The coverages (percent) training calibrates a fare range for unless told otherwise (/openapi.json says so)."""


def range_around(low: np.ndarray, high: np.ndarray, fares: np.ndarray, margin: float,
                 min_fare: float) -> tuple[np.ndarray, np.ndarray]:
    """Quantile predictions widened by a conformal margin, never below `min_fare`, always around the fare.

    Both adjustments only widen the calibrated interval for real fares (all at least the start
    fare), so its coverage still holds. The fitted regressor and the compiled model share it.
    """
    return np.minimum(np.maximum(low - margin, min_fare), fares), np.maximum(high + margin, fares)


@dataclass(frozen=True, eq=False)
class FareRange:
    """Where a ride's real fare should fall: [low - margin, high + margin] for the margin of a coverage.

    margins: coverage in percent (80: 80% of real fares inside) -> dollars added on both sides.
    min_fare: no range goes below it (the meter's start fare).
    """

    low: TreeEnsemble
    high: TreeEnsemble
    margins: dict[int, float]
    min_fare: float

    def bounds(self, X: np.ndarray, fares: np.ndarray, coverage: int) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) for each row of the feature matrix; KeyError for a coverage not calibrated."""
        return range_around(self.low.predict(X), self.high.predict(X), fares, self.margins[coverage], self.min_fare)

    def check(self, n_features: int) -> None:
        for ensemble in (self.low, self.high):
            if not isinstance(ensemble, TreeEnsemble):
                raise ValueError("a fare range needs two TreeEnsembles")
            ensemble.check(n_features)
        if not (isinstance(self.margins, dict) and self.margins and all(
                isinstance(c, int) and 0 < c < 100 and isinstance(m, float) and np.isfinite(m)
                for c, m in self.margins.items())):
            raise ValueError("range margins must map coverages (1-99) to finite dollars")
        if not isinstance(self.min_fare, float):
            raise ValueError("min_fare must be a float")


@dataclass(frozen=True, eq=False)
class FareModel:
    """Fares in US dollars for raw rides (a pandas DataFrame or a dict of column arrays).

    features: computes the feature matrix from the six input columns.
    segment_names, fares: one tree ensemble per segment, in order.
    route_feature, route_edges: a ride whose feature `route_feature` is x goes to segment
        searchsorted(route_edges, x, side="right"); len(route_edges) == len(fares) - 1.
    fare_range: the calibrated range, if the model offers one.
    long_trips: the floor under rides longer than the training rides, if any.
    service_area: where the training rides went: the function prices no ride from or to outside it.
    """

    features: RideFeatureMap
    segment_names: tuple[str, ...]
    fares: tuple[TreeEnsemble, ...]
    route_feature: int
    route_edges: np.ndarray
    fare_range: FareRange | None = None
    long_trips: LongTrips | None = None
    service_area: ServiceArea | None = None
    format_version: int = FORMAT_VERSION

    @classmethod
    def single(cls, features: RideFeatureMap, fare: TreeEnsemble,
               service_area: ServiceArea | None = None) -> "FareModel":
        """One ensemble for every ride, no range."""
        return cls(features, ("all rides",), (fare,), 0, np.empty(0), service_area=service_area)

    @property
    def range_coverages(self) -> tuple[int, ...]:
        """The coverages (percent) a range can be asked for; none without a fare range."""
        return tuple(sorted(self.fare_range.margins)) if self.fare_range is not None else ()

    def feature_names(self) -> tuple[str, ...]:
        return self.features.names()

    def predict(self, rides: object) -> np.ndarray:
        """The fare of each ride, in input order."""
        X = self.features.compute(rides)
        return self._floored(rides, X, self.fares_of(X))

    def predict_range(self, rides: object, coverage: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fares, low, high): each ride's fare and a range meant to hold `coverage` percent of real fares.

        ValueError when the model has no range for that coverage.
        """
        if coverage not in self.range_coverages:
            raise ValueError(f"no {coverage}% range: this model has {list(self.range_coverages) or 'none'}")
        X = self.features.compute(rides)
        fares = self._floored(rides, X, self.fares_of(X))
        return (fares, *self.fare_range.bounds(X, fares, coverage))

    def explain(self, rides: object) -> FareExplanation:
        """Each ride's fare (as `predict` gives it), what its ensemble starts from, and each feature's contribution."""
        X = self.features.compute(rides)
        trees = self.fares_of(X)
        fares = self._floored(rides, X, trees)
        base, contributions = self._contributions(X)
        started = np.maximum(trees, START_FARE)
        floored = fares != started  # the long-trip floor set these fares: explain the floor
        if floored.any():
            cut = self.features.compute(self.long_trips.cut(rides, X, floored))
            base[floored], contributions[floored] = self._contributions(cut)
            contributions[floored, self.long_trips.column] += self.long_trips.beyond(X[floored])
        lifted = ~floored & (started != trees)  # the start fare set these: what the meter adds to so short a ride
        contributions[lifted, self.features.groups().index(DISTANCE)] += START_FARE - trees[lifted]
        return FareExplanation(fares, base, contributions, self.features.groups())

    def _contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(base, contributions) of rows of the feature matrix, each by its segment's ensemble (exact TreeSHAP)."""
        segment = self.segments_of(X)
        base, contributions = np.empty(len(X)), np.empty(X.shape)
        for index, ensemble in enumerate(self.fares):
            chosen = segment == index
            if chosen.any():
                paths = leaf_paths(ensemble)
                base[chosen], contributions[chosen] = paths.expected, paths.contributions(X[chosen])
        return base, contributions

    def _floored(self, rides: object, X: np.ndarray, fares: np.ndarray) -> np.ndarray:
        """The trees' fares raised to the start fare, and to the long-trip floor for rides past its reach."""
        fares = np.maximum(fares, START_FARE)
        if self.long_trips is None:
            return fares
        return self.long_trips.floored(rides, X, fares, lambda cut: self.fares_of(self.features.compute(cut)))

    def fares_of(self, X: np.ndarray) -> np.ndarray:
        """Fares for rows of the feature matrix, each by its segment's ensemble (before the long-trip floor)."""
        if len(self.fares) == 1:
            return self.fares[0].predict(X)
        segment = self.segments_of(X)
        if len(X) == 1:  # one ride, the common request: no bincount, which lets go of the GIL
            return self.fares[int(segment[0])].predict(X)
        counts = np.bincount(segment, minlength=len(self.fares))
        busiest = int(np.argmax(counts))
        fares = self.fares[busiest].predict(X)  # the whole matrix: no copy of most of it
        for index, ensemble in enumerate(self.fares):
            chosen = segment == index
            if index != busiest and counts[index]:
                fares[chosen] = ensemble.predict(X[chosen])
        return fares

    def segments_of(self, X: np.ndarray) -> np.ndarray:
        """Index of the segment that prices each row of the feature matrix."""
        if not len(self.route_edges):
            return np.zeros(len(X), dtype=np.intp)
        return position_right(self.route_edges, X[:, self.route_feature])

    def check(self) -> None:
        """Raise ValueError unless every part has the structure predict relies on."""
        if not isinstance(self.features, RideFeatureMap):
            raise ValueError("features must be a RideFeatureMap")
        self.features.check()
        n_features = len(self.features.names())
        if not (isinstance(self.fares, tuple) and self.fares and all(isinstance(e, TreeEnsemble) for e in self.fares)):
            raise ValueError("fares must be a non-empty tuple of TreeEnsemble")
        for ensemble in self.fares:
            ensemble.check(n_features)
        if not (isinstance(self.segment_names, tuple) and len(self.segment_names) == len(self.fares)):
            raise ValueError("segment_names must name each fare ensemble")
        edges = require_array(self.route_edges, "route_edges", np.float64, 1)
        if len(edges) != len(self.fares) - 1 or np.any(np.diff(edges) <= 0):
            raise ValueError("route_edges must be sorted, one fewer than the segments")
        if not isinstance(self.route_feature, int):
            raise ValueError("route_feature must be an int")
        require_indices(np.array([self.route_feature]), "route_feature", n_features)
        if self.fare_range is not None:
            if not isinstance(self.fare_range, FareRange):
                raise ValueError("fare_range must be a FareRange")
            self.fare_range.check(n_features)
        if self.long_trips is not None:
            if not isinstance(self.long_trips, LongTrips):
                raise ValueError("long_trips must be a LongTrips")
            self.long_trips.check(n_features)
        if self.service_area is not None:
            if not isinstance(self.service_area, ServiceArea):
                raise ValueError("service_area must be a ServiceArea")
            self.service_area.check()
