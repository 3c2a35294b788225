"""Command line: `python -m taxifare {train,evaluate,compare,explain,synthesize}`.

`train` with no --data uses the embedded default: the real rides in ../shared/data beside the
checkout when that folder exists (or TAXIFARE_DATA_DIR), else a synthetic set, said loudly.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from threadpoolctl import threadpool_limits

from taxifare.model import storage
from taxifare.model.loading import MODEL_FILE, ModelFileError, metadata_uri
from taxifare.model.schema import FARE
from taxifare.training import explain_command
from taxifare.training.artifacts import ModelVersionError, load_predictor, upload_model
from taxifare.training.cleaning import clean_rides
from taxifare.training.comparison import BOOTSTRAP_SAMPLES, DEFAULT_COVERAGE, Outcome, compare, format_comparison
from taxifare.training.data import LoadedRides, read_rides, rides_from_frame
from taxifare.training.evaluation import format_table, score, short_rides
from taxifare.training.synthetic import SOURCE_NAME, generate_rides
from taxifare.training.train import MODEL_NAME, public_source, train_and_save

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
    if args.upload:
        storage.check_writable(args.upload)  # now, not after the training run
    loaded = load_training_rides(args, progress)
    with threadpool_limits(limits=args.threads or None):
        result = train_and_save(loaded, Path(args.out), test_fraction=args.test_fraction, seed=args.seed,
                                progress=progress)
    metadata = result.metadata
    print(f"\nHeld out: {metadata['data']['rows_held_out']:,} valid rides, scored by the pipeline fit on the others "
          f"(the saved model was then refit on all {metadata['data']['rows_fit']:,})\n{result.table}\n")
    print(f"wrote {Path(args.out) / MODEL_FILE} ({metadata['size_bytes']:,} bytes), version {metadata['model_version']}")
    if args.upload:
        for uri in upload_model(Path(args.out), args.upload, metadata["model_version"]):
            print(f"uploaded {uri}")
    return 0


def read_predictor(uri: str) -> object:
    """A model.joblib or pipeline.joblib, local or gs://; anything else is one clear error naming the file."""
    try:
        return load_predictor(storage.read_bytes(uri))
    except ModelFileError as error:
        raise ValueError(f"{uri}: {error}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    predictor = read_predictor(args.model)
    for source in trained_on(args.model, args.data):
        print(f"warning: {source} was part of this model's training data (its model.json says so): the scores "
              "below are optimistic; evaluate on rides the model has not seen", file=sys.stderr)
    cleaned = clean_rides(read_rides(args.data, limit=args.limit, sample=args.sample, seed=args.seed).rides)
    y = cleaned.rides.pop(FARE).to_numpy()
    short = short_rides(cleaned.rides)
    print(f"{len(y):,} valid rides, {short.sum():,} under 100 m (cleaning: {cleaned.counts})")
    print(format_table({MODEL_NAME: score(y, predictor.predict(cleaned.rides), short)}))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    uris = [args.reference, *args.others]
    for uri in uris:
        seen = trained_on(uri, args.data)
        if seen and not args.allow_trained_on:
            raise ValueError(f"{uri} was trained on {', '.join(seen)} (its model.json says so): scores there would "
                             "flatter it; compare on rides none of the models has seen, or pass --allow-trained-on")
        if seen:
            print(f"warning: {uri} was trained on {', '.join(seen)}: its scores are optimistic", file=sys.stderr)
    predictors = {chr(ord("A") + index): read_predictor(uri) for index, uri in enumerate(uris)}
    cleaned = clean_rides(load_training_rides(args, Progress()).rides)
    fares = cleaned.rides.pop(FARE).to_numpy()
    comparison = compare(predictors, cleaned.rides, fares, args.range, args.bootstrap, args.seed)
    print("\n".join(f"{name}  {uri}" for name, uri in zip(predictors, uris)))
    print(f"{len(fares):,} valid rides (cleaning: {cleaned.counts})\n\n{format_comparison(comparison)}")
    return comparison.exit_status


def trained_on(model_uri: str, sources: Sequence[str]) -> list[str]:
    """The evaluation sources that model.json (beside the model) lists among its training sources."""
    try:
        metadata = json.loads(storage.read_bytes(metadata_uri(model_uri), max_bytes=1 << 20))
        training = set(metadata["data"]["sources"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [source for source in sources if public_source(source) in training]


def cmd_explain(args: argparse.Namespace) -> int:
    print(explain_command.explain_rides(read_predictor(args.model), args))
    return 0


def cmd_synthesize(args: argparse.Namespace) -> int:
    progress = Progress()
    rides = generate_rides(args.rows, seed=args.seed)
    rides.to_csv(args.out, index=False)
    progress(f"wrote {len(rides):,} synthetic rides to {args.out}")
    return 0


def bounded(convert: Callable[[str], float], kind: str, within: Callable[[float], bool],
            requirement: str) -> Callable[[str], float]:
    """An argparse type: `convert(text)`, refused with one clear line unless `within` holds."""
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind}: {text!r}") from None
        if not within(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value
    return parse


def whole_number(low: int) -> Callable[[str], int]:
    """A whole number of at least `low`."""
    return bounded(int, "whole number", lambda value: value >= low, f"at least {low}")


def fraction(one_allowed: bool) -> Callable[[str], float]:
    """A share above 0 and below 1, or up to 1 when `one_allowed` (sampling everything)."""
    if one_allowed:
        return bounded(float, "number", lambda value: 0 < value <= 1, "more than 0 and at most 1")
    return bounded(float, "number", lambda value: 0 < value < 1, "more than 0 and less than 1")


def _add_sampling(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=whole_number(1), metavar="ROWS", help="keep at most this many valid-or-not rows")
    parser.add_argument("--sample", type=fraction(one_allowed=True), metavar="P",
                        help="keep each row with probability P (0 < P <= 1), while streaming")
    parser.add_argument("--seed", type=int, default=0, help="random seed for sampling, splits and the model (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m taxifare", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train, score against baselines, save model.joblib, pipeline.joblib and model.json",
        description="Train on rides in the Kaggle schema. Without --data: the shared real rides in "
                    f"{shared_data_dir()} ({', '.join(SHARED_FILES)}; set {DATA_DIR_ENV} to move it), else "
                    f"{DEFAULT_SYNTHETIC_ROWS:,} synthetic rides.")
    train.add_argument("--data", action="append", metavar="PATH_OR_URI",
                       help="a CSV in the Kaggle schema, local or gs://; repeat for several (default: see above)")
    train.add_argument("--out", default="models", metavar="FOLDER", help="where the three files go (default: models)")
    train.add_argument("--upload", metavar="GS_PREFIX",
                       help="also upload to GS_PREFIX/<version>/ and GS_PREFIX/latest/ (checked before training)")
    train.add_argument("--test-fraction", type=fraction(one_allowed=False), default=0.2, metavar="P",
                       help="share of valid rides held out to score the model before the refit (default 0.2)")
    train.add_argument("--threads", type=whole_number(0), default=1, metavar="N",
                       help="CPU threads for fitting (default 1: on a busy or small machine more threads spin; "
                            "0: all cores)")
    _add_sampling(train)
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="score a saved model on rides it should not have seen")
    evaluate.add_argument("--model", required=True, metavar="PATH_OR_URI",
                          help="a model.joblib or pipeline.joblib, local or gs://")
    evaluate.add_argument("--data", action="append", required=True, metavar="PATH_OR_URI",
                          help="a CSV in the Kaggle schema, local or gs://; repeat for several")
    _add_sampling(evaluate)
    evaluate.set_defaults(run=cmd_evaluate)

    compare_models = commands.add_parser(
        "compare", help="score two or more models on the same rides: is the difference real?",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score models on the same rides (RMSE, MAE, fare-range coverage and width; overall and by\n"
                    "segment), each against the first with a paired bootstrap 95% interval, and say which is better.",
        epilog=f"exit status: {Outcome.BETTER} every other model is better than the first\n"
               f"             {Outcome.NO_DIFFERENCE} no difference the data can show (and none is worse)\n"
               f"             {Outcome.WORSE} a model is worse than the first\n"
               "             1 an error, 2 a usage error")
    compare_models.add_argument("reference", metavar="MODEL", help="the model to compare against (e.g. the serving "
                                "one): a model.joblib or pipeline.joblib, local or gs://")
    compare_models.add_argument("others", nargs="+", metavar="OTHER", help="one or more models to set against it")
    compare_models.add_argument("--data", action="append", required=True, metavar="PATH_OR_URI",
                                help="rides none of the models was trained on (a CSV, local or gs://; repeat for "
                                     "several)")
    compare_models.add_argument("--range", type=whole_number(1), default=DEFAULT_COVERAGE, metavar="PERCENT",
                                help=f"the fare range scored (default {DEFAULT_COVERAGE})")
    compare_models.add_argument("--bootstrap", type=whole_number(100), default=BOOTSTRAP_SAMPLES, metavar="N",
                                help=f"bootstrap resamplings for the intervals (default {BOOTSTRAP_SAMPLES})")
    compare_models.add_argument("--allow-trained-on", action="store_true",
                                help="score even on rides a model's model.json lists among its training data")
    _add_sampling(compare_models)
    compare_models.set_defaults(run=cmd_compare)

    explain = commands.add_parser("explain", help="why each fare: a base and what each group of features adds, as a "
                                  "table", description=explain_command.__doc__)
    explain_command.add_explain_arguments(explain)
    explain.add_argument("--limit", type=whole_number(1), metavar="ROWS", help="explain at most this many rides of --data")
    explain.set_defaults(run=cmd_explain)

    synthesize = commands.add_parser("synthesize", help="write synthetic rides in the Kaggle schema (NYC TLC fares)")
    synthesize.add_argument("--rows", type=whole_number(1), required=True, help="how many rides")
    synthesize.add_argument("--out", required=True, metavar="CSV", help="the file to write")
    synthesize.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synthesize.set_defaults(run=cmd_synthesize)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; a failure is one line on stderr saying what and how to fix it (exit 1; 2 for usage)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError, ModelVersionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
