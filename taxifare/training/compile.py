"""Compile a fitted scikit-learn fare pipeline into the numpy-only FareModel that is served.

The compiled model gives the pipeline's fares and ranges (to 1e-9, tests/test_compiled_model.py)
without scikit-learn: the feature map is taken as is; each HistGradientBoostingRegressor's trees
are copied into flat arrays (taxifare.model.trees), with the training rows through each node (what
the fare breakdowns weigh by, taxifare.model.tree_shap), and a bag becomes one ensemble of all its
members' trees, each weighted 1/n.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from taxifare.model.fare_model import FareModel, FareRange
from taxifare.model.schema import START_FARE
from taxifare.model.service_area import ServiceArea
from taxifare.model.trees import TreeEnsemble, TreeNodes
from taxifare.training.ensemble import FareRegressor


def compile_pipeline(pipeline: Pipeline, service_area: ServiceArea | None = None) -> FareModel:
    """The FareModel of a fitted RideFeatures -> FareRegressor (or a single boosted-tree model) pipeline.

    `service_area`, learned from the same rides (taxifare.training.area_from_rides), rides along.
    """
    features, regressor = pipeline.named_steps["features"].map_, pipeline.named_steps["regressor"]
    if not isinstance(regressor, FareRegressor):
        return FareModel.single(features, compile_regressor(regressor), service_area)
    fare_range = compile_range(regressor)
    shrinkage = regressor.short_shrinkage
    short = compile_bag(regressor.short_members_, 1 - shrinkage)
    short = dataclasses.replace(short, baseline=short.baseline + shrinkage * regressor.short_mean_fare_)
    return FareModel(features, ("rides under the short-trip length", "trips"), (short, compile_bag(regressor.trip_members_)),
                     regressor.distance_column, np.array([float(regressor.short_trip_km)]), fare_range, regressor.long_trips_,
                     service_area)


def compile_range(regressor: FareRegressor) -> FareRange | None:
    """The regressor's calibrated range; None when it has none, or no coverage its held-out rides can promise."""
    if not getattr(regressor, "range_margins_", None):
        return None
    return FareRange(compile_regressor(regressor.range_low_), compile_regressor(regressor.range_high_),
                     {coverage: float(margin) for coverage, margin in regressor.range_margins_.items()}, START_FARE)


def compile_bag(members: Sequence[HistGradientBoostingRegressor], weight: float = 1.0) -> TreeEnsemble:
    """One ensemble predicting `weight` times the members' mean."""
    return TreeEnsemble.combine([(compile_regressor(member), weight / len(members)) for member in members])


def compile_regressor(regressor: HistGradientBoostingRegressor) -> TreeEnsemble:
    """The trees and baseline of a fitted regressor with an identity link and numeric splits."""
    if type(regressor._loss.link).__name__ != "IdentityLink":
        raise ValueError(f"only identity-link losses can be compiled, not {regressor.loss!r}")
    nodes = [predictors[0].nodes for predictors in regressor._predictors]
    if any(tree["is_categorical"].any() for tree in nodes):
        raise ValueError("categorical splits cannot be compiled")
    trees = [
        TreeNodes(feature=tree["feature_idx"], threshold=tree["num_threshold"], left=tree["left"], right=tree["right"],
                  is_leaf=tree["is_leaf"].astype(bool), missing_left=tree["missing_go_to_left"].astype(bool),
                  value=tree["value"], cover=tree["count"].astype(np.float64), depth=int(tree["depth"].max()))
        for tree in nodes
    ]
    return TreeEnsemble.from_trees(trees, baseline=float(np.ravel(regressor._baseline_prediction)[0]))
