"""Command line: `python -m taxifare {train,evaluate,synthesize}`.

`train` with no --data uses the embedded default: the real rides in ../shared/data beside the
checkout when that folder exists (or TAXIFARE_DATA_DIR), else a synthetic set, said loudly.
"""

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from taxifare.model import storage
from taxifare.model.loading import MODEL_FILE
from taxifare.model.schema import FARE
from taxifare.training.artifacts import load_predictor, upload_model
from taxifare.training.cleaning import clean_rides
from taxifare.training.data import LoadedRides, read_rides, rides_from_frame
from taxifare.training.evaluation import format_table, score
from taxifare.training.synthetic import SOURCE_NAME, generate_rides
from taxifare.training.train import MODEL_NAME, train_and_save

DATA_DIR_ENV = "TAXIFARE_DATA_DIR"
SHARED_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
SHARED_FILES = ("train_10k.csv", "extra_10k.csv")
DEFAULT_SYNTHETIC_ROWS = 20_000


class Progress:
    """Timestamped progress lines on stderr, so long steps show they are alive."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.started:7.1f}s] {message}", file=sys.stderr, flush=True)


def shared_data_dir() -> Path:
    """Where the shared real rides are: TAXIFARE_DATA_DIR, else ../shared/data beside the checkout."""
    return Path(os.environ.get(DATA_DIR_ENV, SHARED_DATA_DIR))


def default_sources() -> list[str]:
    """The shared real rides, if present."""
    files = [shared_data_dir() / name for name in SHARED_FILES]
    return [str(f) for f in files if f.is_file()]


def load_training_rides(args: argparse.Namespace, progress: Progress) -> LoadedRides:
    """Rides from --data, else the shared sample, else a synthetic set (announced)."""
    sources = args.data or default_sources()
    if sources:
        return read_rides(sources, limit=args.limit, sample=args.sample, seed=args.seed, progress=progress)
    rows = args.limit or DEFAULT_SYNTHETIC_ROWS
    progress(f"NOTE: no --data given and no real rides in {shared_data_dir()}: training on {rows:,} SYNTHETIC rides "
             "priced by NYC TLC rules. Pass --data PATH_OR_GS_URI to train on real data.")
    return rides_from_frame(generate_rides(rows, seed=args.seed), SOURCE_NAME)


def cmd_train(args: argparse.Namespace) -> int:
    progress = Progress()
    loaded = load_training_rides(args, progress)
    result = train_and_save(loaded, Path(args.out), test_fraction=args.test_fraction, seed=args.seed, progress=progress)
    metadata = result.metadata
    print(f"\nTest set: {metadata['data']['rows_test']:,} valid rides never seen in training\n{result.table}\n")
    print(f"wrote {Path(args.out) / MODEL_FILE} ({metadata['size_bytes']:,} bytes), version {metadata['model_version']}")
    if args.upload:
        for uri in upload_model(Path(args.out), args.upload, metadata["model_version"]):
            print(f"uploaded {uri}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    predictor = load_predictor(storage.read_bytes(args.model))
    cleaned = clean_rides(read_rides(args.data, limit=args.limit, sample=args.sample, seed=args.seed).rides)
    y = cleaned.rides.pop(FARE).to_numpy()
    print(f"{len(y):,} valid rides (cleaning: {cleaned.counts})")
    print(format_table({MODEL_NAME: score(y, predictor.predict(cleaned.rides))}))
    return 0


def cmd_synthesize(args: argparse.Namespace) -> int:
    progress = Progress()
    rides = generate_rides(args.rows, seed=args.seed)
    rides.to_csv(args.out, index=False)
    progress(f"wrote {len(rides):,} synthetic rides to {args.out}")
    return 0


def _add_sampling(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="keep at most this many rows")
    parser.add_argument("--sample", type=float, help="keep each row with this probability (0-1], streaming")
    parser.add_argument("--seed", type=int, default=0, help="random seed for sampling, splits and the model")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m taxifare", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train, evaluate against baselines, save model.joblib + model.json")
    train.add_argument("--data", action="append", metavar="PATH_OR_URI", help="CSV in the Kaggle schema; repeatable")
    train.add_argument("--out", default="models", help="output folder (default: models)")
    train.add_argument("--upload", metavar="GS_PREFIX", help="also upload to GS_PREFIX/<version>/ and GS_PREFIX/latest/")
    train.add_argument("--test-fraction", type=float, default=0.2, help="share of valid rides held out (default 0.2)")
    _add_sampling(train)
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="score a saved model on valid rides")
    evaluate.add_argument("--model", required=True, metavar="PATH_OR_URI")
    evaluate.add_argument("--data", action="append", required=True, metavar="PATH_OR_URI")
    _add_sampling(evaluate)
    evaluate.set_defaults(run=cmd_evaluate)

    synthesize = commands.add_parser("synthesize", help="write synthetic rides in the Kaggle schema")
    synthesize.add_argument("--rows", type=int, required=True)
    synthesize.add_argument("--out", required=True, help="CSV path")
    synthesize.add_argument("--seed", type=int, default=0)
    synthesize.set_defaults(run=cmd_synthesize)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
