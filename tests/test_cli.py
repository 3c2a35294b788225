"""The command line, end to end, in a subprocess as a user runs it."""

import json
import os
import subprocess
import sys

import pandas as pd

from taxifare.training.cli import DATA_DIR_ENV
from tests.conftest import REPO


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taxifare", *args], cwd=REPO, capture_output=True, text=True,
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


def test_bad_input_is_a_one_line_error_not_a_traceback(tmp_path):
    result = run("train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path))
    assert result.returncode == 1
    assert "error:" in result.stderr and "Traceback" not in result.stderr
