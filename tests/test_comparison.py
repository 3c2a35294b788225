"""taxifare compare: same rides for every model, a paired bootstrap interval, a verdict and an exit status."""

import subprocess
import sys
import time

import joblib
import numpy as np
import pandas as pd
import pytest

from taxifare.model.features import GROUPS
from taxifare.model.schema import FARE
from taxifare.training.comparison import HEADLINE, Outcome, compare, format_comparison, segments
from taxifare.training.data import Selection
from taxifare.training.evaluation import build_baselines
from taxifare.training.sources import load_rides
from taxifare.training.train import train_and_save
from tests.conftest import EXTRA_CSV, REPO, TRAIN_CSV
from tests.test_cli import run_here

SMALL = 5000
"""Rides each test model is trained on: enough for a model that beats the baselines, quick to fit."""


@pytest.fixture(scope="module")
def models(shared_csvs, tmp_path_factory) -> dict[str, str]:
    """Model files trained on train_10k.csv only: ours (seed 0), ours again with seed 1, the distance-only line."""
    cleaned = load_rides([str(TRAIN_CSV)], Selection(limit=SMALL))
    found = {}
    for seed in (0, 1):
        out = tmp_path_factory.mktemp(f"seed{seed}")
        train_and_save(cleaned, out, seed=seed)
        found[f"seed {seed}"] = str(out / "model.joblib")
    cleaned = cleaned.rides.copy()
    fares = cleaned.pop(FARE).to_numpy()
    baseline = build_baselines()["distance-only linear"].fit(cleaned, fares)
    found["distance only"] = str(tmp_path_factory.mktemp("baseline") / "pipeline.joblib")
    joblib.dump(baseline, found["distance only"])
    return found


def compare_cli(capsys, *args: str) -> tuple[int, str, str]:
    """`taxifare compare ARGS` in this process: (exit status, stdout, stderr)."""
    return run_here(capsys, "compare", *args)


def test_two_models_that_differ_only_in_seed_show_no_difference_within_30_seconds(models):
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "taxifare", "compare", models["seed 0"], models["seed 1"], "--data",
                           str(EXTRA_CSV)], cwd=REPO, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    assert proc.returncode == Outcome.NO_DIFFERENCE, proc.stdout + proc.stderr  # the exit status scripts read
    assert proc.stdout.splitlines()[-1].startswith("B: no difference the data can show: ")
    assert elapsed < 30


def test_a_clearly_worse_model_is_told_apart_segment_by_segment(models, capsys):
    status, out, _ = compare_cli(capsys, models["seed 0"], models["seed 1"], models["distance only"],
                                 "--data", str(EXTRA_CSV))
    assert status == Outcome.WORSE  # C, the distance-only line, is worse; B is level
    verdicts = out.splitlines()[-2:]
    assert verdicts[0].startswith("B: no difference the data can show: ")
    assert verdicts[1].startswith("C is worse by ") and "against A's" in verdicts[1]
    for segment in (HEADLINE, "real trips (>= 100 m)", "short rides (< 100 m)", "airport rides (JFK, LGA, EWR)",
                    "long trips (>= 10 km)", "year 2009", "year 2015"):
        assert f"\n{segment} " in out, segment
    assert "80% held" in out and "RMSE minus A's, 95% interval" in out
    lines = out.splitlines()
    at = next(index for index, line in enumerate(lines) if line.startswith(HEADLINE + " "))
    a, b, c = (lines[at + row].removeprefix(HEADLINE).split()[row == 0:] for row in range(3))
    assert a[0] == "A" and a[3].endswith("%") and a[4].startswith("$")  # our model's 80% range: coverage, width
    assert b[0] == "B" and len(b) == 9  # B's scores, then its difference from A and the interval
    assert c[0] == "C" and c[3:5] == ["-", "-"]  # the distance-only line has no range
    at = lines.index(next(line for line in lines if line.startswith("what moves the fares")))
    groups = [line.split("  ")[0] for line in lines[at + 1:at + 9]]
    assert groups[0] == "distance" and sorted(groups) == sorted(GROUPS)  # A's biggest first
    distance = lines[at + 1].split()
    assert float(distance[1].lstrip("$")) > 1 and distance[3] == "-"  # A's and B's dollars; C has no breakdowns


def test_a_better_model_is_named_better(models, capsys):
    status, out, _ = compare_cli(capsys, models["distance only"], models["seed 0"], "--data", str(EXTRA_CSV))
    assert status == Outcome.BETTER
    assert out.splitlines()[-1].startswith("B is better by ")


def test_rides_a_model_was_trained_on_are_refused_unless_allowed(models, capsys):
    status, out, err = compare_cli(capsys, models["seed 0"], models["seed 1"], "--data", str(TRAIN_CSV))
    assert status == 1 and out == ""
    assert err.startswith(f"error: {models['seed 0']} was trained on {TRAIN_CSV} (its model.json says so)")
    assert "--allow-trained-on" in err
    status, out, err = compare_cli(capsys, models["seed 0"], models["seed 1"], "--data", str(TRAIN_CSV),
                                   "--allow-trained-on")
    assert status in (Outcome.BETTER, Outcome.NO_DIFFERENCE, Outcome.WORSE) and "optimistic" in err


def test_one_model_is_a_usage_error(models, capsys):
    status, _, err = compare_cli(capsys, models["seed 0"], "--data", str(EXTRA_CSV))
    assert status == 2 and "OTHER" in err


def test_a_file_that_is_not_a_model_is_named(models, tmp_path, capsys):
    junk = tmp_path / "model.joblib"
    junk.write_bytes(b"not a model")
    status, _, err = compare_cli(capsys, models["seed 0"], str(junk), "--data", str(EXTRA_CSV))
    assert status == 1 and err.startswith(f"error: {junk}: ")


# --- the statistics, on rides whose answers are known -------------------------------------------

class Fixed:
    """A 'model' answering given fares, in ride order."""

    def __init__(self, fares: np.ndarray):
        self.fares = fares

    def predict(self, rides: pd.DataFrame) -> np.ndarray:
        return self.fares[: len(rides)]


@pytest.fixture(scope="module")
def scored(valid_rides) -> tuple[pd.DataFrame, np.ndarray]:
    rides = valid_rides.iloc[:4000].drop(columns=[FARE]).reset_index(drop=True)
    return rides, valid_rides[FARE].to_numpy()[:4000]


def test_identical_models_show_no_difference_and_a_zero_interval(scored):
    rides, fares = scored
    answer = fares + np.random.default_rng(0).normal(0, 3, len(fares))
    result = compare({"A": Fixed(answer), "B": Fixed(answer.copy())}, rides, fares, samples=200)
    difference = result.differences[HEADLINE, "B"]
    assert (difference.estimate, difference.low, difference.high) == (0, 0, 0)
    assert result.outcome("B") is Outcome.NO_DIFFERENCE and result.exit_status == Outcome.NO_DIFFERENCE


def test_a_model_off_by_a_dollar_more_is_worse_by_about_what_it_costs(scored):
    rides, fares = scored
    noise = np.random.default_rng(1).normal(0, 3, len(fares))
    result = compare({"A": Fixed(fares + noise), "B": Fixed(fares + noise + 1.0)}, rides, fares, samples=300)
    difference = result.differences[HEADLINE, "B"]
    expected = np.sqrt(np.mean((noise + 1) ** 2)) - np.sqrt(np.mean(noise**2))
    assert difference.estimate == pytest.approx(expected)
    assert 0 < difference.low < expected < difference.high
    assert result.outcome("B") is Outcome.WORSE and result.exit_status == Outcome.WORSE
    assert format_comparison(result).splitlines()[-1].startswith(f"B is worse by {expected:.2f} (")


def test_noise_of_the_same_size_is_no_difference(scored):
    rides, fares = scored
    rng = np.random.default_rng(2)
    a, b = fares + rng.normal(0, 3, len(fares)), fares + rng.normal(0, 3, len(fares))
    result = compare({"A": Fixed(a), "B": Fixed(b)}, rides, fares, samples=300)
    difference = result.differences[HEADLINE, "B"]
    assert difference.low < 0 < difference.high  # independent noise of one size: the data cannot rank them


def test_segments_find_airports_long_trips_and_years():
    rides = pd.DataFrame({
        "pickup_datetime": pd.to_datetime(["2009-06-01 12:00:00", "2015-06-01 12:00:00", "2013-01-01 05:00:00"],
                                          utc=True),
        "pickup_longitude": [-73.7781, -73.9855, -73.9855], "pickup_latitude": [40.6413, 40.7580, 40.7580],
        "dropoff_longitude": [-73.9855, -73.9857, -73.9855], "dropoff_latitude": [40.7580, 40.7590, 40.7580],
        "passenger_count": [1, 1, 1]})
    found = segments(rides)
    assert found["airport rides (JFK, LGA, EWR)"].tolist() == [True, False, False]
    assert found["long trips (>= 10 km)"].tolist() == [True, False, False]
    assert found["short rides (< 100 m)"].tolist() == [False, False, True]
    assert found["year 2009"].tolist() == [True, False, False] and found["year 2013"].tolist() == [False, False, True]
