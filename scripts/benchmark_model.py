"""Benchmark the model against the model-quality targets; prints a table of measured numbers.

    python scripts/benchmark_model.py                        # CV, ranges, speed, size, 20k training
    python scripts/benchmark_model.py --scale-rows 2000000   # plus training on 2M synthetic rides

Cross-validation: 5 folds over the shared rides that pass the cleaning rules (rides under 100 m
stay in), the shipped recipe (taxifare/training/pipeline.py) fit on 4 folds and scored on the 5th:
RMSE on all valid rides, on real trips (100 m and more) and on the short rides; the calibrated
ranges' coverage and mean width on the same held-out folds. Speed is the compiled model's, given
columns the way the function gives them (numpy arrays), median (and minimum) of repeated calls.
"""

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from taxifare.model import loading  # noqa: E402
from taxifare.model.loading import MODEL_FILE  # noqa: E402
from taxifare.model.schema import INPUT_COLUMNS, PICKUP_DATETIME  # noqa: E402
from taxifare.training.artifacts import PIPELINE_FILE  # noqa: E402
from taxifare.training.cleaning import clean_rides  # noqa: E402
from taxifare.training.cli import default_sources  # noqa: E402
from taxifare.training.data import read_rides  # noqa: E402
from taxifare.training.evaluation import build_baselines, format_table, score, score_range, short_rides  # noqa: E402
from taxifare.training.pipeline import build_pipeline  # noqa: E402
from taxifare.training.train import MODEL_NAME  # noqa: E402

FOLDS = 5


def timed_ms(function, repeat: int) -> tuple[float, float]:
    """Median and minimum milliseconds of `repeat` calls (on a shared machine the minimum is the quiet case)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3, min(times) * 1e3


def columns_of(rides) -> dict[str, np.ndarray]:
    """Rides as the function hands them to the model: one numpy array per input column."""
    columns = {name: rides[name].to_numpy() for name in INPUT_COLUMNS}
    columns[PICKUP_DATETIME] = rides[PICKUP_DATETIME].to_numpy(dtype="datetime64[s]")
    return columns


def cross_validate(rides, y) -> tuple[dict, dict]:
    """Out-of-fold predictions of every model; out-of-fold range coverage and width per coverage."""
    short = short_rides(rides)
    predicted = {name: np.empty(len(y)) for name in [*build_baselines(), MODEL_NAME]}
    bounds: dict[int, list] = {}
    for train, test in KFold(FOLDS, shuffle=True, random_state=0).split(rides):
        for name, baseline in build_baselines().items():
            predicted[name][test] = baseline.fit(rides.iloc[train], y[train]).predict(rides.iloc[test])
        pipeline = build_pipeline().fit(rides.iloc[train], y[train])
        predicted[MODEL_NAME][test] = pipeline.predict(rides.iloc[test])
        for coverage in pipeline.named_steps["regressor"].range_margins_:
            _, low, high = pipeline.predict_range(rides.iloc[test], coverage)
            bounds.setdefault(coverage, [np.empty(len(y)), np.empty(len(y))])
            bounds[coverage][0][test], bounds[coverage][1][test] = low, high
    scores = {name: score(y, values, short) for name, values in predicted.items()}
    ranges = {coverage: score_range(y, low, high) for coverage, (low, high) in bounds.items()}
    return scores, ranges


def train_run(data: list[str], folder: str) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of `python -m taxifare train` in a child process."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "taxifare", "train", *(f"--data={d}" for d in data), "--out", folder],
                   check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-rows", type=int, default=0, help="also train on this many synthetic rows")
    args = parser.parse_args()
    sources = default_sources()

    rides = clean_rides(read_rides(sources).rides).rides
    y = rides.pop("fare_amount").to_numpy()
    started = time.perf_counter()
    scores, ranges = cross_validate(rides, y)
    print(f"{FOLDS}-fold cross-validation on {len(y):,} valid shared rides ({short_rides(rides).sum():,} under 100 m), "
          f"{time.perf_counter() - started:.0f} s:\n{format_table(scores)}\n")
    for coverage, r in ranges.items():
        print(f"{coverage}% range: held {r.coverage:.1%} of real fares out of fold, mean width ${r.mean_width:.2f}")

    with tempfile.TemporaryDirectory() as folder:
        train_seconds, train_peak = train_run(sources, folder)
        model_size = (Path(folder) / MODEL_FILE).stat().st_size
        pipeline_size = (Path(folder) / PIPELINE_FILE).stat().st_size
        model = loading.loads((Path(folder) / MODEL_FILE).read_bytes())
    one = columns_of(rides.iloc[[0]])
    ten_thousand = columns_of(rides.iloc[np.arange(10_000) % len(rides)])
    speed = {
        "predict 1 ride": timed_ms(lambda: model.predict(one), 3000),
        "predict 1 ride with its 80% range": timed_ms(lambda: model.predict_range(one, 80), 3000),
        "predict 10,000 rides": timed_ms(lambda: model.predict(ten_thousand), 30),
        "predict 10,000 rides with ranges": timed_ms(lambda: model.predict_range(ten_thousand, 80), 15),
    }
    model_row = scores[MODEL_NAME]
    rows = [
        ("CV RMSE, all valid rides", f"{model_row.rmse:.3f}", "<= 4.02"),
        ("CV RMSE, real trips (>= 100 m)", f"{model_row.rmse_trips:.3f}", "<= 3.33"),
        ("CV 80% range: coverage, mean width", f"{ranges[80].coverage:.1%}, ${ranges[80].mean_width:.2f}",
         "78-82%, <= $4.70"),
        *[(name, f"{median:.3f} ms (min {fastest:.3f})" if median < 1 else f"{median:.1f} ms (min {fastest:.1f})",
           target) for (name, (median, fastest)), target in zip(speed.items(), ("", "<= 0.3 ms", "<= 80 ms", ""),
                                                                    strict=True)],
        ("model.joblib (pipeline.joblib)", f"{model_size / 1e6:.2f} MB ({pipeline_size / 1e6:.2f} MB)", "<= 8 MB"),
        (f"train on the {len(y):,} shared rides (CLI: split, fit, refit, save)",
         f"{train_seconds:.1f} s, peak RSS {train_peak:,.0f} MB", "<= 60 s"),
    ]
    if args.scale_rows:
        with tempfile.TemporaryDirectory() as folder:
            csv = Path(folder) / "synthetic.csv"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "taxifare", "synthesize", "--rows", str(args.scale_rows),
                            "--out", str(csv)], check=True, cwd=REPO)
            generated = time.perf_counter() - started
            seconds, peak = train_run([str(csv)], folder)
        rows.append((f"train on {args.scale_rows:,} synthetic rides (generated in {generated:.0f} s)",
                     f"{seconds / 60:.1f} min, peak RSS {peak:,.0f} MB", "<= 15 min, <= 4 GB"))
    width = max(len(r[0]) for r in rows) + 2
    print()
    for name, value, target in rows:
        print(f"{name:<{width}}{value:<34}{target}")


if __name__ == "__main__":
    main()
