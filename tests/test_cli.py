"""The command line, end to end, in a subprocess as a user runs it."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from taxifare.training.cli import DATA_DIR_ENV
from tests.conftest import REPO


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taxifare", *args], cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=300, env={**os.environ, **(env or {})})


def test_train_then_evaluate(shared_csvs, tmp_path):
    trained = run("train", "--data", shared_csvs[0], "--data", shared_csvs[1], "--sample", "0.5", "--out", str(tmp_path))
    assert trained.returncode == 0, trained.stderr
    assert "mean fare" in trained.stdout and "distance-only linear" in trained.stdout
    assert "taxifare pipeline" in trained.stdout
    assert "fitting on" in trained.stderr and "refitting on all" in trained.stderr  # progress on long steps
    metadata = json.loads((tmp_path / "model.json").read_text())
    assert list(metadata["data"]["rows_by_source"]) == ["train_10k.csv", "extra_10k.csv"]  # names, not paths

    evaluated = run("evaluate", "--model", str(tmp_path / "model.joblib"), "--data", shared_csvs[1])
    assert evaluated.returncode == 0, evaluated.stderr
    assert "valid rides" in evaluated.stdout and "RMSE" in evaluated.stdout


def test_without_data_it_trains_on_the_shared_rides(shared_csvs, tmp_path):
    result = run("train", "--out", str(tmp_path), "--limit", "4000",
                 env={DATA_DIR_ENV: os.path.dirname(shared_csvs[0])})
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "model.json").read_text())["data"]["sources"] == ["train_10k.csv"]


def test_without_any_real_data_it_says_it_trains_on_synthetic_rides(tmp_path):
    result = run("train", "--out", str(tmp_path), "--limit", "3000", env={DATA_DIR_ENV: str(tmp_path / "none")})
    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC" in result.stderr
    assert json.loads((tmp_path / "model.json").read_text())["data"]["sources"] == ["synthetic"]


def test_synthesize_writes_kaggle_csv(tmp_path):
    out = tmp_path / "rides.csv"
    assert run("synthesize", "--rows", "500", "--out", str(out)).returncode == 0
    rides = pd.read_csv(out)
    assert len(rides) == 500 and list(rides.columns)[:3] == ["key", "fare_amount", "pickup_datetime"]


def no_google_credentials(tmp_path) -> dict:
    """An environment where google.auth finds nothing: no key, an empty gcloud config, no metadata server."""
    return {"GOOGLE_APPLICATION_CREDENTIALS": "", "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"), "NO_GCE_CHECK": "True",
            "STORAGE_EMULATOR_HOST": "", "HOME": str(tmp_path)}


NOT_A_MODEL = "a ride CSV given as the model"
WRONG_COLUMNS = "a CSV without the Kaggle columns"
MISTAKES = {  # what a newcomer types -> (exit status, what the one error line must say)
    "gs:// data without credentials": (["train", "--data", "gs://my-bucket/more.csv"], 1,
                                       ["gs://my-bucket/more.csv", "gcloud auth application-default login"]),
    "--upload without credentials": (["train", "--upload", "gs://my-bucket/models/", "--limit", "500"], 1,
                                     ["gs://my-bucket/models/", "gcloud auth application-default login"]),
    "a missing file": (["train", "--data", "missing.csv"], 1, ["missing.csv"]),
    NOT_A_MODEL: (["evaluate", "--model", "{shared}"], 1, ["{shared}", "neither a taxifare model.joblib"]),
    WRONG_COLUMNS: (["train", "--data", "{wrong}"], 1, ["{wrong}", "missing the column(s) key, fare_amount"]),
    "a negative --limit": (["train", "--limit", "-5"], 2, ["--limit", "must be at least 1, got -5"]),
    "--test-fraction over 1": (["train", "--test-fraction", "1.5"], 2, ["--test-fraction", "less than 1, got 1.5"]),
    "--test-fraction of 1": (["train", "--test-fraction", "1"], 2, ["--test-fraction", "less than 1, got 1"]),
    "--sample of 0": (["train", "--sample", "0"], 2, ["--sample", "more than 0 and at most 1"]),
    "negative --rows": (["synthesize", "--rows", "-3", "--out", "rides.csv"], 2, ["--rows", "at least 1, got -3"]),
    "--threads not a number": (["train", "--threads", "all"], 2, ["--threads", "not a whole number: 'all'"]),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_is_one_error_line_with_the_fix(mistake, shared_csvs, tmp_path):
    args, status, said = MISTAKES[mistake]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,price\n1,2.5\n")
    fill = {"shared": shared_csvs[0], "wrong": str(wrong)}
    args = [arg.format(**fill) for arg in args]
    if args[0] != "synthesize" and mistake != NOT_A_MODEL:
        args += ["--out", str(tmp_path / "model")]
    if args[0] == "evaluate":
        args += ["--data", shared_csvs[1]]
    result = run(*args, env=no_google_credentials(tmp_path))
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    for words in said:
        assert words.format(**fill) in errors[0], errors[0]
    assert not (tmp_path / "model" / "model.joblib").exists()  # --upload is checked before anything is trained


def test_evaluate_warns_when_the_data_was_part_of_training(shared_csvs, tmp_path):
    assert run("train", "--data", shared_csvs[0], "--limit", "3000", "--out", str(tmp_path)).returncode == 0
    seen = run("evaluate", "--model", str(tmp_path / "model.joblib"), "--data", shared_csvs[0], "--limit", "2000")
    assert seen.returncode == 0 and "RMSE" in seen.stdout
    assert "train_10k.csv was part of this model's training data" in seen.stderr and "optimistic" in seen.stderr
    unseen = run("evaluate", "--model", str(tmp_path / "model.joblib"), "--data", shared_csvs[1], "--limit", "2000")
    assert unseen.returncode == 0 and "RMSE" in unseen.stdout
    assert "training data" not in unseen.stderr
