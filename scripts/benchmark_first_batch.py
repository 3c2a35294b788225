"""The first batch of naive-time rides an instance prices, against a warm one (target: within 2x).

    python scripts/benchmark_first_batch.py [--model models/model.joblib] [--rides 10000] [--runs 5]

Each run is a fresh process: it loads the function as functions-framework does (main.py, in-process
test client), waits for the model, then POSTs one batch of `--rides` rides whose pickup times are
naive (New York wall-clock, the batch path that converts them with an offset table) and times it,
then times the same batch `--warm` more times. Prints the median first batch, the median warm batch
and their ratio over the runs.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = """
import json, sys, threading, time
import numpy as np
import functions_framework
sys.path.insert(0, {repo!r})
from taxifare.serving.model_store import LOADER_THREAD_NAME

rng = np.random.default_rng(0)
n = {rides}
seconds = rng.integers(1_230_800_000, 1_435_000_000, n)
rides = [{{"pickup_datetime": str(np.datetime64(int(s), "s")).replace("T", " "),
           "pickup_longitude": float(rng.uniform(-74.0, -73.9)), "pickup_latitude": float(rng.uniform(40.7, 40.8)),
           "dropoff_longitude": float(rng.uniform(-74.0, -73.9)), "dropoff_latitude": float(rng.uniform(40.7, 40.8)),
           "passenger_count": 1}} for s in seconds]
body = json.dumps({{"instances": rides}})
client = functions_framework.create_app(target="predict", source={main!r}).test_client()
for thread in threading.enumerate():
    if thread.name == LOADER_THREAD_NAME:
        thread.join()
times = []
for _ in range(1 + {warm}):
    started = time.perf_counter()
    response = client.post("/predict", data=body, content_type="application/json")
    times.append(time.perf_counter() - started)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
print(json.dumps(times))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "models" / "model.joblib"))
    parser.add_argument("--rides", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warm", type=int, default=5, help="warm batches timed after the first, per run")
    args = parser.parse_args()
    firsts, warms = [], []
    for _ in range(args.runs):
        code = RUN.format(repo=str(REPO), rides=args.rides, warm=args.warm, main=str(REPO / "main.py"))
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                                env={"MODEL_URI": args.model, "PATH": "/usr/bin:/bin"})
        times = json.loads(result.stdout.strip().splitlines()[-1])
        firsts.append(times[0])
        warms.append(statistics.median(times[1:]))
    first, warm = statistics.median(firsts) * 1e3, statistics.median(warms) * 1e3
    print(f"{args.rides:,} naive-time rides, {args.runs} fresh processes: first batch {first:.0f} ms, "
          f"warm batch {warm:.0f} ms, ratio {first / warm:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
