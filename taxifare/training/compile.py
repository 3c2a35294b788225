"""Compile a fitted scikit-learn fare pipeline into the numpy-only FareModel that is served.

The compiled model gives the pipeline's fares (to 1e-9, tests/test_compiled_model.py) without
scikit-learn: the feature map is taken as is, each HistGradientBoostingRegressor's trees are
copied into flat arrays (taxifare.model.trees).
"""

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from taxifare.model.fare_model import FareModel
from taxifare.model.trees import TreeEnsemble, TreeNodes


def compile_pipeline(pipeline: Pipeline) -> FareModel:
    """The FareModel of a fitted RideFeatures -> HistGradientBoostingRegressor pipeline."""
    return FareModel.single(pipeline.named_steps["features"].map_, compile_regressor(pipeline.named_steps["regressor"]))


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
                  value=tree["value"], depth=int(tree["depth"].max()))
        for tree in nodes
    ]
    return TreeEnsemble.from_trees(trees, baseline=float(np.ravel(regressor._baseline_prediction)[0]))
