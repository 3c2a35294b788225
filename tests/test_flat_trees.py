"""The flat-array tree evaluator returns scikit-learn's predictions, to 1e-9, on every shared ride."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from taxifare.artifacts import MODEL_FILE, load_pipeline
from taxifare.flat_trees import FlatTrees
from taxifare.predictor import FLAT_TREES_MAX_ROWS, FarePredictor


@pytest.fixture(scope="module")
def predictor(trained_model) -> FarePredictor:
    out, _ = trained_model
    return FarePredictor(load_pipeline((out / MODEL_FILE).read_bytes()))


def test_flat_trees_equal_sklearn_on_all_shared_rides(predictor, raw_rides):
    # every row that has numbers, valid or not: out-of-area and zero coordinates included
    rides = raw_rides.dropna().drop(columns="fare_amount")
    X = predictor.features.transform(rides)
    expected = predictor.regressor.predict(X)
    got = np.concatenate([predictor.trees.predict(chunk) for chunk in np.array_split(X, 40)])
    assert len(got) == len(raw_rides.dropna()) > 20_000 - 10
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_small_and_large_batches_agree(predictor, valid_rides):
    rides = valid_rides.drop(columns="fare_amount")
    whole = predictor.predict(rides.iloc[: FLAT_TREES_MAX_ROWS * 4])
    pieces = np.concatenate([predictor.predict(rides.iloc[i : i + 8]) for i in range(0, FLAT_TREES_MAX_ROWS * 4, 8)])
    np.testing.assert_allclose(pieces, whole, rtol=0, atol=1e-9)


def test_missing_values_follow_the_learned_direction():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    X[rng.random(X.shape) < 0.2] = np.nan
    y = np.nan_to_num(X[:, 0], nan=3.0) + np.nan_to_num(X[:, 1], nan=-2.0)
    regressor = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(X, y)
    np.testing.assert_allclose(FlatTrees(regressor).predict(X), regressor.predict(X), rtol=0, atol=1e-9)


def test_non_identity_links_are_refused():
    X = np.random.default_rng(0).random((200, 3))
    regressor = HistGradientBoostingRegressor(max_iter=3, loss="poisson").fit(X, X[:, 0] + 1)
    with pytest.raises(ValueError, match="identity-link"):
        FlatTrees(regressor)


def test_categorical_models_are_refused():
    X = np.column_stack([np.arange(100) % 4, np.arange(100)]).astype(float)
    regressor = HistGradientBoostingRegressor(max_iter=3, categorical_features=[0]).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="categorical"):
        FlatTrees(regressor)
