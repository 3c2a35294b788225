"""Benchmark the fare breakdowns (explain) against issue 19's targets; prints one line per target.

    nice -n 19 python scripts/benchmark_explain.py                 # baseline: main
    nice -n 19 python scripts/benchmark_explain.py --baseline REF  # GET and model size against another commit

Trains this checkout's model and the baseline's (same rides, same seed: the same trees, the baseline
without node covers) in temporary folders. Then, in process, with the rides as numpy columns the way
the function hands them over: one ride explained (contributions, groups and cents), 1,000 rides
explained, median (and minimum) of repeated calls in several rounds to show the noise; agreement
with the shap package's TreeExplainer and additivity on every shared ride; model.joblib's growth;
and GET /predict without explain through functions-framework's test client, this checkout and the
baseline alternately in fresh processes, round after round.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.benchmark_model import columns_of, timed_ms
from taxifare.model import loading
from taxifare.model.loading import MODEL_FILE
from taxifare.model.tree_shap import leaf_paths
from taxifare.training.artifacts import PIPELINE_FILE, load_pipeline
from taxifare.training.cli import default_sources
from taxifare.training.data import read_rides

ROUNDS = 5
GET_QUERY = ("/predict?pickup_datetime=2013-07-06+17:18:00&pickup_longitude=-73.950655&pickup_latitude=40.783282"
             "&dropoff_longitude=-73.984365&dropoff_latitude=40.769802&passenger_count=1")
GET_TIMER = """
import sys, threading, time, statistics
import functions_framework
from taxifare.serving.model_store import LOADER_THREAD_NAME
client = functions_framework.create_app(target="predict", source="main.py").test_client()
for thread in threading.enumerate():
    if thread.name == LOADER_THREAD_NAME:
        thread.join(60)
query, n = sys.argv[1], int(sys.argv[2])
for _ in range(200):
    client.get(query)
times = []
for _ in range(n):
    started = time.perf_counter()
    response = client.get(query)
    times.append(time.perf_counter() - started)
assert response.status_code == 200 and b"breakdown" not in response.data, response.data
print(statistics.median(times) * 1e6)
"""


def train(tree: Path, out: Path, data: list[str]) -> Path:
    """The model.joblib that `tree`'s own code trains on `data`."""
    args = [arg for source in data for arg in ("--data", source)]
    subprocess.run([sys.executable, "-m", "taxifare", "train", *args, "--out", str(out)], cwd=tree, check=True,
                   capture_output=True)
    return out / MODEL_FILE


def get_microseconds(tree: Path, model: Path, requests: int) -> float:
    """Median microseconds of a GET /predict without explain, in a fresh process of `tree`'s function."""
    run = subprocess.run([sys.executable, "-c", GET_TIMER, GET_QUERY, str(requests)], cwd=tree, check=True,
                         capture_output=True, text=True, env={"MODEL_URI": str(model), "PATH": "/usr/bin:/bin"})
    return float(run.stdout.split()[-1])  # after the function's own JSON log lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="the commit to compare GET and model size with")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of each timing (the spread is the noise)")
    parser.add_argument("--requests", type=int, default=3000, help="GETs per round and side")
    args = parser.parse_args()
    data = [str(source) for source in default_sources()]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        baseline = work / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline], cwd=REPO, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
        ours_file, theirs_file = train(REPO, work / "ours", data), train(baseline, work / "baseline-model", data)
        model = loading.loads(ours_file.read_bytes())
        rides = read_rides(data).rides.dropna().drop(columns="fare_amount").reset_index(drop=True)
        columns = columns_of(rides)
        one = {name: values[:1] for name, values in columns.items()}
        thousand = {name: values[:1000] for name, values in columns.items()}
        model.explain(one).breakdowns()  # builds each ensemble's leaf tables once, as the first explain does

        for label, rides_in, repeat, target in (("one ride with its breakdown", one, 500, "<= 2 ms median"),
                                                ("1,000 rides with breakdowns", thousand, 10, "<= 1000 ms")):
            rounds = [timed_ms(lambda r=rides_in: model.explain(r).breakdowns(), repeat) for _ in range(args.rounds)]
            medians = ", ".join(f"{median:.3f}" for median, _ in rounds)
            print(f"{label}: median {statistics.median(m for m, _ in rounds):.3f} ms (rounds: {medians}; "
                  f"min {min(low for _, low in rounds):.3f}) target {target}")
        print(f"the fare alone, one ride: {timed_ms(lambda: model.predict(one), 500)[0]:.3f} ms median")

        explanation = model.explain(columns)
        additivity = np.abs(explanation.base + explanation.contributions.sum(axis=1) - explanation.fares).max()
        print(f"additivity on {len(rides):,} shared rides: max |base + contributions - fare| = {additivity:.2e} "
              "(target <= 1e-9)")
        print(f"shap agreement on every shared ride: max |ours - shap| = {shap_agreement(model, ours_file, columns):.2e}"
              " per feature (target <= 1e-6)")
        growth = ours_file.stat().st_size - theirs_file.stat().st_size
        print(f"model.joblib: {ours_file.stat().st_size:,} bytes, {growth:+,} against {args.baseline} "
              "(target <= +1,000,000)")

        gets: dict[str, list[float]] = {"baseline": [], "this checkout": []}
        for _ in range(args.rounds):
            gets["baseline"].append(get_microseconds(baseline, theirs_file, args.requests))
            gets["this checkout"].append(get_microseconds(REPO, ours_file, args.requests))
        for side, values in gets.items():
            print(f"GET /predict without explain, {side}: median {statistics.median(values):.1f} us "
                  f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")


def shap_agreement(model, model_file: Path, columns: dict) -> float:
    """The largest difference between our contributions and shap's, per feature, on the rides each bag prices."""
    import shap

    regressor = load_pipeline((model_file.parent / PIPELINE_FILE).read_bytes()).named_steps["regressor"]
    X = model.features.compute(columns)
    segment = model.segments_of(X)
    worst = 0.0
    for index, (members, weight) in enumerate(((regressor.short_members_, 1 - regressor.short_shrinkage),
                                               (regressor.trip_members_, 1.0))):
        rows = X[segment == index]
        theirs = sum(weight / len(members) * shap.TreeExplainer(member).shap_values(rows, check_additivity=False)
                     for member in members)
        worst = max(worst, float(np.abs(leaf_paths(model.fares[index]).contributions(rows) - theirs).max()))
    return worst


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
