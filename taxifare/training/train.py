"""Train the fare pipeline on loaded rides, score it, refit it on every valid ride, compile it, save both.

1. Put the cleaned rides in one canonical order (so the model depends on which rides it gets, not on the
   order a file or a query returned them); hold out a share of them (20%).
2. Fit the pipeline and the baselines on the rest; score fares (all rides, real trips, short rides) and
   the calibrated ranges (coverage, width) on the held-out rides. These are the numbers model.json
   reports, labelled as such.
3. Refit the pipeline on every valid ride (at 20k rides, that alone was worth a third of the gain on
   unseen rides), draw the service area from the same rides, and compile both; the compiled model
   must give the pipeline's fares and ranges.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from taxifare.model.fare_model import FareModel
from taxifare.model.schema import COORDINATE_COLUMNS, FARE, PASSENGER_COUNT, PICKUP_DATETIME
from taxifare.model.storage import is_gcs_uri
from taxifare.training.area_from_rides import CELL_KM, learn_service_area
from taxifare.training.artifacts import save_model
from taxifare.training.bigquery_options import is_bigquery_source
from taxifare.training.cleaning import RULES, CleaningResult
from taxifare.training.compile import compile_pipeline
from taxifare.training.evaluation import (
    RangeScores,
    Scores,
    baseline_parameters,
    build_baselines,
    format_ranges,
    format_table,
    score,
    score_range,
    short_rides,
)
from taxifare.training.importance import group_importance
from taxifare.training.pipeline import (
    N_SHORT_MEMBERS,
    N_TRIP_MODELS,
    SHORT_PARAMS,
    SHORT_TRIP_KM,
    TRIP_PARAMS,
    FarePipeline,
    build_pipeline,
)
from taxifare.training.train_options import TEST_FRACTION

MODEL_NAME = "taxifare pipeline"
MIN_CLEAN_RIDES = 50
COMPILED_TOLERANCE = 1e-9
"""The compiled model must give the pipeline's fares to this many dollars, or nothing is saved."""
EVALUATION = "held-out split: the pipeline fit on the other rides, before the shipped model was refit on all"
AREA_URL = "/model/area"
"""Where the function publishes the service area (GeoJSON)."""
CANONICAL_ORDER = [PICKUP_DATETIME, *COORDINATE_COLUMNS, PASSENGER_COUNT, FARE]


def public_source(source: str) -> str:
    """A data source as model.json (served at /model) may show it: gs:// and BigQuery sources whole, local files by
    name only."""
    return source if is_gcs_uri(source) or is_bigquery_source(source) else Path(source).name


@dataclass
class TrainingResult:
    """What a training run produced: the metadata written to model.json and the held-out scores."""

    metadata: dict
    scores: dict[str, Scores]
    ranges: dict[int, RangeScores] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return format_table(self.scores) + "\n\n" + format_ranges(self.ranges)


def check_compiled(model: FareModel, pipeline: FarePipeline, rides: object) -> None:
    """Raise unless the compiled model gives the pipeline's fares and ranges on these rides."""
    pairs = [(model.predict(rides), pipeline.predict(rides))]
    for coverage in model.range_coverages:
        pairs += zip(model.predict_range(rides, coverage), pipeline.predict_range(rides, coverage), strict=True)
    drift = max(float(np.max(np.abs(compiled - fitted))) for compiled, fitted in pairs)
    if drift > COMPILED_TOLERANCE:
        raise RuntimeError(f"the compiled model differs from the pipeline by ${drift:.3g}: not saved")


def _utc_text(moment: object) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def scope(model: FareModel) -> dict:
    """What model.json says of where the model prices, and how it prices the longest rides."""
    west, south, east, north = model.service_area.bounds()
    return {
        "service_area": {"geojson": AREA_URL, "cell_km": CELL_KM,
                         "area_km2": round(int(model.service_area.cells.sum()) * CELL_KM**2),
                         "bounds": [round(value, 4) for value in (west, south, east, north)]},
        "long_trips": {"reach_km": round(model.long_trips.reach_km, 2),
                       "dollars_per_km": round(model.long_trips.rate, 3),
                       "note": "a ride longer than reach_km (straight line; all but the longest 0.5% of training "
                               "trips are shorter) costs at least the same ride cut at reach_km, on its own line, "
                               "plus dollars_per_km (the median fare per km of the longest tenth of the trips) for "
                               "each km beyond"},
    }


@dataclass
class HeldOutSplit:
    """The canonically ordered valid rides and their fares, and the split that scores the pipeline."""

    rides: pd.DataFrame
    fares: np.ndarray
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray


@dataclass
class HeldOutScores:
    """How the pipeline fit on the training part did on the held-out rides, beside the baselines."""

    scores: dict[str, Scores]
    ranges: dict[int, RangeScores]
    feature_names: list[str]
    range_quantiles: list[float]
    short_held_out: int


def train_and_save(
    cleaned: CleaningResult,
    out_dir: Path,
    test_fraction: float = TEST_FRACTION,
    seed: int = 0,
    progress: Callable[[str], None] = lambda message: None,
) -> TrainingResult:
    """Score on a held-out split, refit on all valid rides, compile, save both files and model.json."""
    split = split_rides(cleaned, test_fraction, seed, progress)
    started = time.perf_counter()
    held_out = score_held_out(split, seed, progress)
    pipeline = refit(split, seed, progress)
    fit_seconds = time.perf_counter() - started
    model = compile_pipeline(pipeline, learn_service_area(split.rides))
    check_compiled(model, pipeline, split.X_test)
    metadata = describe(cleaned, split, held_out, model, pipeline, seed, fit_seconds)
    return TrainingResult(metadata=save_model(model, pipeline, metadata, out_dir), scores=held_out.scores,
                          ranges=held_out.ranges)


def split_rides(cleaned: CleaningResult, test_fraction: float, seed: int,
                progress: Callable[[str], None]) -> HeldOutSplit:
    """The valid rides in canonical order, their fares taken out, and `test_fraction` of them held out."""
    progress(f"cleaning kept {len(cleaned.rides):,} of {cleaned.rows_in:,} rows: {cleaned.counts}")
    if len(cleaned.rides) < MIN_CLEAN_RIDES:
        raise ValueError(f"only {len(cleaned.rides)} valid rides after cleaning; need at least {MIN_CLEAN_RIDES}")
    rides = cleaned.rides.sort_values(CANONICAL_ORDER, kind="stable", ignore_index=True)
    fares = rides.pop(FARE).to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(rides, fares, test_size=test_fraction, random_state=seed)
    return HeldOutSplit(rides, fares, X_train, X_test, y_train, y_test)


def score_held_out(split: HeldOutSplit, seed: int, progress: Callable[[str], None]) -> HeldOutScores:
    """Fit the pipeline and the baselines on the training part; score fares and ranges on the held-out rides."""
    progress(f"fitting on {len(split.X_train):,} rides to score {len(split.X_test):,} held-out ones")
    pipeline = build_pipeline(random_state=seed).fit(split.X_train, split.y_train, regressor__progress=progress)
    short = short_rides(split.X_test)
    scores = {name: score(split.y_test, baseline.fit(split.X_train, split.y_train).predict(split.X_test), short)
              for name, baseline in build_baselines().items()}
    scores[MODEL_NAME] = score(split.y_test, pipeline.predict(split.X_test), short)
    regressor = pipeline.named_steps["regressor"]
    ranges = {coverage: score_range(split.y_test, *pipeline.predict_range(split.X_test, coverage)[1:])
              for coverage in regressor.range_margins_}
    return HeldOutScores(scores, ranges, list(pipeline.named_steps["features"].get_feature_names_out()),
                         list(regressor.range_quantiles), int(short.sum()))


def refit(split: HeldOutSplit, seed: int, progress: Callable[[str], None]) -> FarePipeline:
    """The shipped pipeline: the same recipe fit on every valid ride."""
    progress(f"refitting on all {len(split.rides):,} valid rides")
    return build_pipeline(random_state=seed).fit(split.rides, split.fares, regressor__progress=progress)


def describe(cleaned: CleaningResult, split: HeldOutSplit, held_out: HeldOutScores, model: FareModel,
             pipeline: FarePipeline, seed: int, fit_seconds: float) -> dict:
    """model.json (before save_model adds the version, libraries and sizes): data, scope, recipe, metrics."""
    rides = split.rides
    rows_by_source: dict[str, int] = {}
    for source, rows in cleaned.rows_by_source.items():
        rows_by_source[public_source(source)] = rows_by_source.get(public_source(source), 0) + rows
    return {
        "data": {
            "sources": list(rows_by_source),
            "rows_by_source": rows_by_source,
            "rows_read": cleaned.rows_in,
            "rows_valid": len(rides),
            "rows_short_held_out": held_out.short_held_out,
            "rows_held_out": len(split.X_test),
            "rows_fit": len(rides),
            "cleaning": cleaned.counts,
            "cleaning_rules": {rule.name: rule.reason for rule in RULES},
            "pickup_times": {"first": _utc_text(rides[PICKUP_DATETIME].min()),
                             "last": _utc_text(rides[PICKUP_DATETIME].max()),
                             "note": "rides after the last are priced at the rates of the data's last months"},
        },
        **scope(model),
        "features": held_out.feature_names,
        "recipe": {"trip_models": N_TRIP_MODELS, "trip_model": TRIP_PARAMS, "short_trip_km": SHORT_TRIP_KM,
                   "short_bag_members": N_SHORT_MEMBERS, "short_bag_member": SHORT_PARAMS,
                   "range_quantiles": held_out.range_quantiles, "random_state": seed},
        "metrics": {
            "evaluation": EVALUATION,
            "fares": {name: s.rounded() for name, s in held_out.scores.items()},
            "ranges": {str(coverage): {"coverage": round(r.coverage, 4), "mean_width": round(r.mean_width, 2)}
                       for coverage, r in held_out.ranges.items()},
        },
        "importance": group_importance(model, split.X_test),
        "baselines": {"fit_on": "every valid training ride (evaluate applies them to new rides)",
                      **baseline_parameters(rides, split.fares)},
        "range_coverages": list(model.range_coverages),
        "range_uncalibrated": {str(coverage): {"calibration_rides_needed": needed} for coverage, needed
                               in getattr(pipeline.named_steps["regressor"], "range_uncalibrated_", {}).items()},
        "fare_bounds": [float(np.min(split.fares)), float(np.max(split.fares))],
        "fit_seconds": round(fit_seconds, 2),
    }
