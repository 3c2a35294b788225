"""Command line: `python -m taxifare {train,evaluate,compare,explain,synthesize}`.

`train` with no --data uses the embedded default: the real rides in ../shared/data beside the
checkout when that folder exists (or TAXIFARE_DATA_DIR), else a synthetic set, said loudly.

Only the standard library is imported here: `--help` and usage errors answer at once, and each
command imports pandas, scikit-learn or the cloud clients when it runs.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from taxifare.training.bigquery_options import (
    DEFAULT_MAX_GB,
    EMULATOR_ENV,
    PROJECT_ENV,
    READ_APIS,
    BigQueryOptions,
    query_source,
)
from taxifare.training.comparison_options import BOOTSTRAP_SAMPLES, DEFAULT_COVERAGE, Outcome
from taxifare.training.explain_options import DESCRIPTION as EXPLAIN_DESCRIPTION
from taxifare.training.explain_options import add_explain_arguments
from taxifare.training.train_options import TEST_FRACTION

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


def load_data(args: argparse.Namespace, sources: Sequence[str], progress: Callable[[str], None]):
    """The cleaned rides of `sources` under the command's data options (any command with add_data_options)."""
    from taxifare.training.data import Selection
    from taxifare.training.sources import load_rides

    selection = Selection(limit=args.limit, sample=args.sample, seed=args.seed, since=args.since, until=args.until)
    options = BigQueryOptions(project=args.project, location=args.location, max_gb=args.max_gb,
                              read_api=args.read_api)
    return load_rides(sources, selection, options, progress)


def load_training_rides(args: argparse.Namespace, progress: Progress):
    """Rides from --data/--query, else the shared sample, else a synthetic set (announced)."""
    sources = args.data or default_sources()
    if sources:
        return load_data(args, sources, progress)
    from taxifare.training.cleaning import clean_rides
    from taxifare.training.data import rides_from_frame
    from taxifare.training.synthetic import SOURCE_NAME, generate_rides

    rows = args.limit or DEFAULT_SYNTHETIC_ROWS
    progress(f"NOTE: no --data given and no real rides in {shared_data_dir()}: training on {rows:,} SYNTHETIC rides "
             "priced by NYC TLC rules. Pass --data PATH_OR_GS_URI to train on real data.")
    cleaned = clean_rides(rides_from_frame(generate_rides(rows, seed=args.seed), SOURCE_NAME).rides)
    cleaned.rows_by_source = {SOURCE_NAME: cleaned.rows_in}
    return cleaned


def cmd_train(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    from taxifare.model import storage
    from taxifare.model.loading import MODEL_FILE
    from taxifare.training.artifacts import upload_model
    from taxifare.training.train import train_and_save

    progress = Progress()
    if args.upload:
        storage.check_writable(args.upload)  # now, not after the training run
    cleaned = load_training_rides(args, progress)
    with threadpool_limits(limits=args.threads or None):
        result = train_and_save(cleaned, Path(args.out), test_fraction=args.test_fraction, seed=args.seed,
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
    from taxifare.model import storage
    from taxifare.model.loading import ModelFileError
    from taxifare.training.artifacts import load_predictor

    try:
        return load_predictor(storage.read_bytes(uri))
    except ModelFileError as error:
        raise ValueError(f"{uri}: {error}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from taxifare.model.schema import FARE
    from taxifare.training.evaluation import (
        apply_baselines,
        format_ranges,
        format_table,
        range_scores,
        score,
        short_rides,
    )
    from taxifare.training.train import MODEL_NAME

    if not args.data:
        args.command_parser.error("give the rides to score: --data PATH_OR_URI or --query SQL")
    progress = Progress()
    predictor = read_predictor(args.model)
    metadata = model_metadata(args.model)
    for source in trained_on(metadata, args.data):
        print(f"warning: {source} was part of this model's training data (its model.json says so): the scores "
              "below are optimistic; evaluate on rides the model has not seen", file=sys.stderr)
    cleaned = load_data(args, args.data, progress)
    if not len(cleaned.rides):
        raise ValueError(f"no valid rides to score in {', '.join(args.data)} (cleaning: {cleaned.counts})")
    rides = cleaned.rides
    y = rides.pop(FARE).to_numpy()
    short = short_rides(rides)
    print(f"{len(y):,} valid rides of {cleaned.rows_in:,} read, {short.sum():,} under 100 m "
          f"(cleaning: {cleaned.counts})")
    scores = {}
    if "baselines" in metadata:
        print("Baselines: the mean fare and the distance-only line fit on the model's training rides "
              "(model.json), applied to these rides")
        scores = {name: score(y, fares, short) for name, fares in apply_baselines(metadata["baselines"], rides).items()}
    else:
        print("Baselines: none (no model.json with baselines beside the model)")
    scores[MODEL_NAME] = score(y, predictor.predict(rides), short)
    print(f"{format_table(scores)}\n\n{format_ranges(range_scores(predictor, rides, y))}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from taxifare.model.schema import FARE
    from taxifare.training.comparison import compare, format_comparison

    if not args.data:
        args.command_parser.error("give the rides to score: --data PATH_OR_URI or --query SQL")
    uris = [args.reference, *args.others]
    for uri in uris:
        seen = trained_on(model_metadata(uri), args.data)
        if seen and not args.allow_trained_on:
            raise ValueError(f"{uri} was trained on {', '.join(seen)} (its model.json says so): scores there would "
                             "flatter it; compare on rides none of the models has seen, or pass --allow-trained-on")
        if seen:
            print(f"warning: {uri} was trained on {', '.join(seen)}: its scores are optimistic", file=sys.stderr)
    predictors = {chr(ord("A") + index): read_predictor(uri) for index, uri in enumerate(uris)}
    cleaned = load_data(args, args.data, Progress())
    fares = cleaned.rides.pop(FARE).to_numpy()
    comparison = compare(predictors, cleaned.rides, fares, args.range, args.bootstrap, args.seed)
    print("\n".join(f"{name}  {uri}" for name, uri in zip(predictors, uris, strict=True)))
    print(f"{len(fares):,} valid rides (cleaning: {cleaned.counts})\n\n{format_comparison(comparison)}")
    return comparison.exit_status


def model_metadata(model_uri: str) -> dict:
    """model.json beside the model, or {} when there is none to read."""
    from taxifare.model import storage
    from taxifare.model.loading import metadata_uri

    try:
        metadata = json.loads(storage.read_bytes(metadata_uri(model_uri), max_bytes=1 << 20))
    except (OSError, ValueError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def trained_on(metadata: dict, sources: Sequence[str]) -> list[str]:
    """The evaluation sources that model.json lists among its training sources."""
    from taxifare.training.train import public_source

    try:
        training = set(metadata["data"]["sources"])
    except (KeyError, TypeError):
        return []
    return [source for source in sources if public_source(source) in training]


def cmd_explain(args: argparse.Namespace) -> int:
    from taxifare.training import explain_command

    print(explain_command.explain_rides(read_predictor(args.model), args))
    return 0


def cmd_synthesize(args: argparse.Namespace) -> int:
    from taxifare.training.synthetic import generate_rides

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


def moment(text: str) -> datetime:
    """A date or a date and time, UTC unless it says otherwise: 2015-01-01, "2015-01-01 06:00", ISO 8601."""
    try:
        value = datetime.fromisoformat(text.strip().removesuffix(" UTC"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time: {text!r} (try 2015-01-01 or "
                                         "'2015-01-01 06:00:00')") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def add_data_options(parser: argparse.ArgumentParser, seed_help: str) -> None:
    """The options that pick rides, shared by every command that reads them (see load_data)."""
    data = parser.add_argument_group("rides to read (CSV files, gs:// objects, BigQuery tables and queries)")
    data.add_argument("--data", action="append", metavar="PATH_OR_URI",
                      help="a CSV in the Kaggle schema (local or gs://), or a BigQuery table "
                           "bq://PROJECT.DATASET.TABLE (Kaggle schema or NYC TLC yellow trips 2009-2016); repeat "
                           "for several")
    data.add_argument("--query", action="append", dest="data", type=query_source, metavar="SQL",
                      help="a GoogleSQL query whose result is a table of either shape; repeatable, mixes with --data")
    data.add_argument("--limit", type=whole_number(1), metavar="ROWS",
                      help="read at most this many rows, valid or not, across all sources")
    data.add_argument("--sample", type=fraction(one_allowed=True), metavar="P",
                      help="keep each row with probability P (0 < P <= 1): while streaming a CSV; in SQL from a hash "
                           "of the row for BigQuery")
    data.add_argument("--seed", type=int, default=0, help=seed_help)
    data.add_argument("--since", type=moment, metavar="TIME",
                      help="only rides picked up at or after TIME (UTC, as the data's pickup_datetime)")
    data.add_argument("--until", type=moment, metavar="TIME", help="only rides picked up before TIME (UTC)")
    bigquery = parser.add_argument_group("BigQuery sources")
    bigquery.add_argument("--project", metavar="PROJECT",
                          help=f"the project that runs and pays for the queries (default: {PROJECT_ENV}, else your "
                               "gcloud application-default project)")
    bigquery.add_argument("--location", metavar="LOCATION", help="where the queries run, e.g. US or EU (default: "
                                                                 "the tables' own)")
    bigquery.add_argument("--max-gb", type=bounded(float, "number", lambda value: value > 0, "more than 0"),
                          default=DEFAULT_MAX_GB, metavar="GB",
                          help=f"refuse a query whose dry run scans more (default {DEFAULT_MAX_GB:g} GB; also its "
                               "maximum bytes billed)")
    bigquery.add_argument("--read-api", choices=READ_APIS, default="auto",
                          help="how results are read: the Storage Read API, REST pages, or the first that works "
                               f"(default auto). {EMULATOR_ENV} set: a local BigQuery, no credentials")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m taxifare", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train, score against baselines, save model.joblib, pipeline.joblib and model.json",
        description="Train on rides in the Kaggle schema. Without --data: the shared real rides in "
                    f"{shared_data_dir()} ({', '.join(SHARED_FILES)}; set {DATA_DIR_ENV} to move it), else "
                    f"{DEFAULT_SYNTHETIC_ROWS:,} synthetic rides.")
    train.add_argument("--out", default="models", metavar="FOLDER", help="where the three files go (default: models)")
    train.add_argument("--upload", metavar="GS_PREFIX",
                       help="also upload to GS_PREFIX/<version>/ and GS_PREFIX/latest/ (checked before training)")
    train.add_argument("--test-fraction", type=fraction(one_allowed=False), default=TEST_FRACTION, metavar="P",
                       help=f"share of valid rides held out to score the model before the refit (default {TEST_FRACTION})")
    train.add_argument("--threads", type=whole_number(0), default=1, metavar="N",
                       help="CPU threads for fitting (default 1: on a busy or small machine more threads spin; "
                            "0: all cores)")
    add_data_options(train, "random seed of the sampling, the held-out split and the model (default 0)")
    train.set_defaults(run=cmd_train, command_parser=train)

    evaluate = commands.add_parser(
        "evaluate", help="score a saved model on rides it should not have seen, beside its baselines",
        description="Score a saved model on new rides as train scores it: the two baselines recorded at training "
                    "time, RMSE (all rides, trips, short rides), MAE, and each calibrated range's coverage and width.")
    evaluate.add_argument("--model", required=True, metavar="PATH_OR_URI",
                          help="a model.joblib or pipeline.joblib, local or gs:// (model.json beside it gives the "
                               "baselines)")
    add_data_options(evaluate, "random seed of the sampling (--sample) (default 0)")
    evaluate.set_defaults(run=cmd_evaluate, command_parser=evaluate)

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
    compare_models.add_argument("--range", type=whole_number(1), default=DEFAULT_COVERAGE, metavar="PERCENT",
                                help=f"the fare range scored (default {DEFAULT_COVERAGE})")
    compare_models.add_argument("--bootstrap", type=whole_number(100), default=BOOTSTRAP_SAMPLES, metavar="N",
                                help=f"bootstrap resamplings for the intervals (default {BOOTSTRAP_SAMPLES})")
    compare_models.add_argument("--allow-trained-on", action="store_true",
                                help="score even on rides a model's model.json lists among its training data")
    add_data_options(compare_models, "random seed of the sampling and the bootstrap (default 0)")
    compare_models.set_defaults(run=cmd_compare, command_parser=compare_models)

    explain = commands.add_parser("explain", help="why each fare: a base and what each group of features adds, as a "
                                  "table", description=EXPLAIN_DESCRIPTION)
    add_explain_arguments(explain)
    explain.add_argument("--limit", type=whole_number(1), metavar="ROWS", help="explain at most this many rides of --data")
    explain.set_defaults(run=cmd_explain, command_parser=explain)

    synthesize = commands.add_parser("synthesize", help="write synthetic rides in the Kaggle schema (NYC TLC fares)")
    synthesize.add_argument("--rows", type=whole_number(1), required=True, help="how many rides")
    synthesize.add_argument("--out", required=True, metavar="CSV", help="the file to write")
    synthesize.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synthesize.set_defaults(run=cmd_synthesize, command_parser=synthesize)
    return parser


def one_line(error: Exception) -> str:
    """An error as one line: a file error names the path and what is wrong, without "[Errno N]"."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror[0].lower()}{error.strerror[1:]}"
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; a failure is one line on stderr saying what and how to fix it (exit 1; 2 for usage)."""
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.run(args)
    except (OSError, ValueError) as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 1
