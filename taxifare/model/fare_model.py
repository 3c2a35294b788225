"""FareModel: the compiled, numpy-only fare model that model.joblib holds and the function serves.

Training fits a scikit-learn pipeline and compiles it into this (taxifare.training.compile): the
feature map's parameters and the flattened trees, nothing else, so serving needs numpy alone and
loading it runs no foreign code (taxifare.model.loading).

A model prices each ride with the ensemble of the segment the ride falls in: rides are routed on
one feature against sorted edges (say, trips under 100 m to their own model). With no edges,
one ensemble prices every ride.
"""

from dataclasses import dataclass

import numpy as np

from taxifare.model.checks import require_array, require_indices
from taxifare.model.features import RideFeatureMap
from taxifare.model.trees import TreeEnsemble

FORMAT_VERSION = 1
"""Bumped whenever the fields below change meaning: a server refuses files of another version."""


@dataclass(frozen=True, eq=False)
class FareModel:
    """Fares in US dollars for raw rides (a pandas DataFrame or a dict of column arrays).

    features: computes the feature matrix from the six input columns.
    segment_names, fares: one tree ensemble per segment, in order.
    route_feature, route_edges: a ride whose feature `route_feature` is x goes to segment
        searchsorted(route_edges, x, side="right"); len(route_edges) == len(fares) - 1.
    """

    features: RideFeatureMap
    segment_names: tuple[str, ...]
    fares: tuple[TreeEnsemble, ...]
    route_feature: int
    route_edges: np.ndarray
    format_version: int = FORMAT_VERSION

    @classmethod
    def single(cls, features: RideFeatureMap, fare: TreeEnsemble) -> "FareModel":
        """One ensemble for every ride."""
        return cls(features, ("all rides",), (fare,), 0, np.empty(0))

    def feature_names(self) -> tuple[str, ...]:
        return self.features.names()

    def predict(self, rides: object) -> np.ndarray:
        """The fare of each ride, in input order."""
        X = self.features.compute(rides)
        if len(self.fares) == 1:
            return self.fares[0].predict(X)
        segment = self.segments_of(X)
        fares = np.empty(len(X))
        for index, ensemble in enumerate(self.fares):
            chosen = segment == index
            if chosen.any():
                fares[chosen] = ensemble.predict(X[chosen])
        return fares

    def segments_of(self, X: np.ndarray) -> np.ndarray:
        """Index of the segment that prices each row of the feature matrix."""
        if not len(self.route_edges):
            return np.zeros(len(X), dtype=np.intp)
        return np.searchsorted(self.route_edges, X[:, self.route_feature], side="right")

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
