"""Benchmark the model against the training issue's targets; prints a table of measured numbers.

    python scripts/benchmark_model.py                 # accuracy, speed, size on the shared 20k rides
    python scripts/benchmark_model.py --scale-rows 2000000   # plus training on a synthetic set

Targets: RMSE <= 3.7 on unseen valid rides; one-row DataFrame predict <= 0.5 ms median;
10,000 rows <= 50 ms; model.joblib <= 5 MB; training on 20k <= 30 s; 2M synthetic rows completes.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from taxifare.model import loading  # noqa: E402
from taxifare.model.loading import MODEL_FILE  # noqa: E402
from taxifare.training.artifacts import PIPELINE_FILE, load_pipeline  # noqa: E402
from taxifare.training.cleaning import clean_rides  # noqa: E402
from taxifare.training.cli import default_sources  # noqa: E402
from taxifare.training.data import read_rides  # noqa: E402
from taxifare.training.evaluation import score  # noqa: E402
from taxifare.training.pipeline import build_pipeline  # noqa: E402
from taxifare.training.train import MODEL_NAME, train_and_save  # noqa: E402


def median_ms(function, repeat: int) -> str:
    """Median (and minimum) milliseconds of `repeat` calls: on a shared machine the minimum is the quiet case."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    median, fastest = statistics.median(times) * 1e3, min(times) * 1e3
    return f"{median:.3f} ms (min {fastest:.3f})" if median < 1 else f"{median:.1f} ms (min {fastest:.1f})"


def cross_validated_rmse(sources: list[str], folds: int = 5) -> list[float]:
    rides = clean_rides(read_rides(sources).rides).rides
    y = rides.pop("fare_amount").to_numpy()
    return [
        score(y[test], build_pipeline().fit(rides.iloc[train], y[train]).predict(rides.iloc[test])).rmse
        for train, test in KFold(folds, shuffle=True, random_state=0).split(rides)
    ]


def scale_run(rows: int) -> None:
    """Generate `rows` synthetic rides, train on them in a child process; report time and peak RSS."""
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "synthetic.csv"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "taxifare", "synthesize", "--rows", str(rows), "--out", str(csv)], check=True)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "taxifare", "train", "--data", str(csv), "--out", folder], check=True,
                       cwd=Path(__file__).resolve().parents[1])
        trained = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"synthetic {rows:,} rows: generate {generated:.1f} s, train (load+clean+fit+evaluate+save) "
              f"{trained:.1f} s, peak RSS {peak_mb:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", help="CSV sources (default: the shared 20k rides)")
    parser.add_argument("--scale-rows", type=int, default=0, help="also train on this many synthetic rows")
    args = parser.parse_args()
    sources = args.data or default_sources()

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = train_and_save(read_rides(sources), Path(folder))
        train_seconds = time.perf_counter() - started
        print(f"held-out test split ({result.metadata['data']['rows_test']:,} valid rides):\n{result.table}\n")
        size = (Path(folder) / MODEL_FILE).stat().st_size
        model = loading.loads((Path(folder) / MODEL_FILE).read_bytes())
        pipeline = load_pipeline((Path(folder) / PIPELINE_FILE).read_bytes())

    folds = cross_validated_rmse(sources)
    rides = clean_rides(read_rides(sources).rides).rides.drop(columns="fare_amount")
    one = rides.iloc[[0]]
    ten_thousand = rides.iloc[:10_000]
    rows = [
        ("RMSE, held-out 20% split", f"{result.scores[MODEL_NAME].rmse:.3f}", "<= 3.7"),
        ("RMSE, 5-fold CV mean (folds)", f"{np.mean(folds):.3f} ({', '.join(f'{f:.2f}' for f in folds)})", "<= 3.7"),
        ("predict 1 row DataFrame, compiled FareModel", median_ms(lambda: model.predict(one), 3000), "<= 0.5 ms"),
        ("predict 1 row DataFrame, sklearn Pipeline", median_ms(lambda: pipeline.predict(one), 200), "reference"),
        ("predict 10,000 rows, compiled FareModel", median_ms(lambda: model.predict(ten_thousand), 40), "<= 40 ms"),
        ("predict 10,000 rows, sklearn Pipeline", median_ms(lambda: pipeline.predict(ten_thousand), 20), "reference"),
        ("model.joblib size", f"{size / 1e6:.2f} MB", "<= 5 MB"),
        ("train on the 20k rides (load+clean+fit+baselines+save)", f"{train_seconds:.1f} s", "<= 30 s"),
    ]
    width = max(len(r[0]) for r in rows) + 2
    for name, value, target in rows:
        print(f"{name:<{width}}{value:<40}{target}")
    if args.scale_rows:
        scale_run(args.scale_rows)


if __name__ == "__main__":
    main()
