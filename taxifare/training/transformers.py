"""RideFeatures: the numpy feature map (taxifare.model.features) as a scikit-learn transformer.

A thin wrapper so pipelines, cross-validation and get_feature_names_out work as scikit-learn
users expect; the maths lives in RideFeatureMap, which the compiled model serves unchanged.
"""

from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from taxifare.model.features import RideFeatureMap
from taxifare.model.schema import INPUT_COLUMNS, TIMEZONE


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
        """Build the feature map (the zone's offset table); nothing is learned from the rides themselves."""
        self.map_ = RideFeatureMap.build(self.timezone, self.landmarks)
        self.n_features_in_ = len(INPUT_COLUMNS)
        self.feature_names_in_ = np.array(INPUT_COLUMNS, dtype=object)
        return self

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the columns `transform` returns, in order."""
        check_is_fitted(self, "map_")
        return np.array(self.map_.names(), dtype=object)

    def transform(self, X: object) -> np.ndarray:
        """Features of each ride as a float64 array of shape (n_rides, n_features)."""
        check_is_fitted(self, "map_")
        return self.map_.compute(X)
