"""Train -> compile -> save -> load -> predict on the real rides; the model beats both baselines."""

import io
import json

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn

from taxifare.model import loading
from taxifare.model.loading import METADATA_FILE, MODEL_FILE, sha256_hex
from taxifare.training.artifacts import PIPELINE_FILE, ModelVersionError, load_pipeline, load_predictor
from taxifare.training.cleaning import CleaningResult
from taxifare.training.train import MODEL_NAME, train_and_save

TRIPS_BETTER_THAN_THE_LINE = 0.8
"""On real trips the model's RMSE is at most this share of the distance-only line's. One 20% split is a noisy
judge: the same recipe measured 2.9 to 3.6 on the trips of different splits (and its all-rides RMSE is decided by
the few $100+ fares under 100 m a split draws); scripts/benchmark_model.py's cross-validation measures accuracy."""


@pytest.fixture(scope="module")
def model(trained_model):
    out, _ = trained_model
    return loading.loads((out / MODEL_FILE).read_bytes())


def test_model_beats_both_baselines_and_the_target(trained_model):
    _, result = trained_model
    model = result.scores[MODEL_NAME]
    assert model.rmse < result.scores["distance-only linear"].rmse < result.scores["mean fare"].rmse
    assert model.mae < result.scores["distance-only linear"].mae
    assert model.rmse_trips <= TRIPS_BETTER_THAN_THE_LINE * result.scores["distance-only linear"].rmse_trips


def test_metadata_describes_both_files_under_one_version(trained_model):
    out, result = trained_model
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert set(metadata) == {"model_version", "created_at", "data", "service_area", "long_trips", "features", "recipe",
                             "metrics", "importance", "baselines", "range_coverages", "range_uncalibrated", "fare_bounds",
                             "fit_seconds", "libraries", "size_bytes", "sha256", "pipeline"}
    assert metadata["sha256"] == sha256_hex((out / MODEL_FILE).read_bytes())
    assert metadata["pipeline"] == {"file": PIPELINE_FILE, "size_bytes": (out / PIPELINE_FILE).stat().st_size,
                                    "sha256": sha256_hex((out / PIPELINE_FILE).read_bytes())}
    assert metadata["model_version"].endswith(metadata["sha256"][:8])
    assert metadata["data"]["rows_read"] == 20_476
    assert metadata["data"]["rows_fit"] == metadata["data"]["rows_valid"] > metadata["data"]["rows_held_out"]
    assert metadata["data"]["cleaning"]["zero_coordinates"] == 196
    assert metadata["range_coverages"] == [50, 80, 90, 95] and metadata["range_uncalibrated"] == {}
    assert set(metadata["libraries"]) >= {"python", "scikit-learn", "numpy", "pandas", "joblib"}
    assert metadata["metrics"]["fares"][MODEL_NAME]["rmse"] == pytest.approx(result.scores[MODEL_NAME].rmse, abs=1e-4)
    assert "held-out" in metadata["metrics"]["evaluation"]
    assert {"trip_km", "grid_km", "midpoint_frame_45", "crosses_hudson", "hour"} <= set(metadata["features"])
    assert (out / MODEL_FILE).stat().st_size <= 8_000_000


def test_metadata_says_which_dates_the_model_learned_from(trained_model, valid_rides):
    _, result = trained_model
    times = result.metadata["data"]["pickup_times"]
    assert (times["first"], times["last"]) == ("2009-01-01T02:51:52Z", "2015-06-30T22:42:39Z")
    assert valid_rides["pickup_datetime"].min() == pd.Timestamp(times["first"])
    assert valid_rides["pickup_datetime"].max() == pd.Timestamp(times["last"])
    assert "last months" in times["note"]


def test_saved_model_loads_and_predicts_plausible_fares(model, valid_rides):
    fares = model.predict(valid_rides.drop(columns="fare_amount"))
    assert fares.shape == (len(valid_rides),)
    assert np.all(np.isfinite(fares))
    assert 5 < np.median(fares) < 15


def test_a_notebook_user_can_joblib_load_the_model_and_predict_a_dataframe(trained_model, valid_rides):
    out, _ = trained_model
    rides = valid_rides.drop(columns="fare_amount").iloc[:100]
    expected = load_pipeline((out / PIPELINE_FILE).read_bytes()).predict(rides)
    np.testing.assert_allclose(joblib.load(out / MODEL_FILE).predict(rides), expected, rtol=0, atol=1e-9)


def test_longer_rides_and_later_years_cost_more(model):
    rides = pd.DataFrame({
        "pickup_datetime": pd.to_datetime(["2011-06-01 15:00", "2011-06-01 15:00", "2014-06-01 15:00"], utc=True),
        "pickup_longitude": [-73.9855] * 3, "pickup_latitude": [40.7580] * 3,
        "dropoff_longitude": [-73.9700, -73.7781, -73.7781], "dropoff_latitude": [40.7700, 40.6413, 40.6413],
        "passenger_count": [1, 1, 1],
    })
    short, airport_2011, airport_2014 = model.predict(rides)
    assert short < 15 < airport_2011 < airport_2014


def test_evaluation_reads_either_file(trained_model, valid_rides):
    out, _ = trained_model
    rides = valid_rides.drop(columns="fare_amount").iloc[:50]
    compiled, pipeline = (load_predictor((out / name).read_bytes()) for name in (MODEL_FILE, PIPELINE_FILE))
    np.testing.assert_allclose(compiled.predict(rides), pipeline.predict(rides), rtol=0, atol=1e-9)
    with pytest.raises(loading.ModelFileError, match="neither a taxifare model.joblib nor a pipeline.joblib") as refused:
        load_predictor(b"key,fare_amount\n1,2\n")
    # the cause is joblib's failure (the last reading tried); its context, why it is no model.joblib, and that one's cause
    joblib_error = refused.value.__cause__
    assert joblib_error is not None and not isinstance(joblib_error, loading.ModelFileError)
    assert isinstance(joblib_error.__context__, loading.ModelFileError)
    assert joblib_error.__context__.__cause__ is not None


def test_a_pipeline_from_another_scikit_learn_version_is_refused(trained_model):
    out, _ = trained_model
    pipeline = load_pipeline((out / PIPELINE_FILE).read_bytes())
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    other = "".join("9" if c.isdigit() else c for c in sklearn.__version__)  # same length: pickle framing stays valid
    pickled = buffer.getvalue().replace(sklearn.__version__.encode(), other.encode())
    expected = f"trained with scikit-learn {other}, this environment runs {sklearn.__version__}"
    with pytest.raises(ModelVersionError, match=expected):
        load_pipeline(pickled)


def test_a_model_trained_on_few_rides_says_which_ranges_it_cannot_promise(valid_rides, tmp_path):
    rides = valid_rides.head(60)  # the refit holds out 15 rides to calibrate: the 95% range needs 19
    metadata = train_and_save(CleaningResult(rides, {}, len(rides)), tmp_path).metadata
    assert metadata["range_coverages"] == [50, 80, 90]
    assert metadata["range_uncalibrated"] == {"95": {"calibration_rides_needed": 19}}
    model = loading.loads((tmp_path / MODEL_FILE).read_bytes())
    assert model.range_coverages == (50, 80, 90)
    with pytest.raises(ValueError, match=r"no 95% range: this model has \[50, 80, 90\]"):
        model.predict_range(rides.head(1), 95)
