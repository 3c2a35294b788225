"""Train the fare pipeline on loaded rides, score it against the baselines, compile it, save both."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from taxifare.model.schema import FARE
from taxifare.model.storage import is_gcs_uri
from taxifare.training.artifacts import save_model
from taxifare.training.cleaning import RULES, clean_rides
from taxifare.training.compile import compile_pipeline
from taxifare.training.data import LoadedRides
from taxifare.training.evaluation import Scores, build_baselines, format_table, score
from taxifare.training.pipeline import REGRESSOR_PARAMS, build_pipeline

MODEL_NAME = "taxifare pipeline"
TEST_FRACTION = 0.2
MIN_CLEAN_RIDES = 50
COMPILED_TOLERANCE = 1e-9
"""The compiled model must give the pipeline's fares to this many dollars, or nothing is saved."""


def public_source(source: str) -> str:
    """A data source as model.json (served at /model) may show it: gs:// URIs whole, local files by name only."""
    return source if is_gcs_uri(source) else Path(source).name


@dataclass
class TrainingResult:
    """What a training run produced: the metadata written to model.json and the scores table."""

    metadata: dict
    scores: dict[str, Scores]

    @property
    def table(self) -> str:
        return format_table(self.scores)


def train_and_save(
    loaded: LoadedRides,
    out_dir: Path,
    test_fraction: float = TEST_FRACTION,
    seed: int = 0,
    progress: Callable[[str], None] = lambda message: None,
) -> TrainingResult:
    """Clean, split off a test set of valid rides, fit the pipeline and the baselines, compile, save both."""
    cleaned = clean_rides(loaded.rides)
    progress(f"cleaning kept {len(cleaned.rides):,} of {cleaned.rows_in:,} rows: {cleaned.counts}")
    if len(cleaned.rides) < MIN_CLEAN_RIDES:
        raise ValueError(f"only {len(cleaned.rides)} valid rides after cleaning; need at least {MIN_CLEAN_RIDES}")
    rides = cleaned.rides
    y = rides.pop(FARE).to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(rides, y, test_size=test_fraction, random_state=seed)

    scores = {}
    for name, baseline in build_baselines().items():
        scores[name] = score(y_test, baseline.fit(X_train, y_train).predict(X_test))
    progress(f"fitting the pipeline on {len(X_train):,} rides")
    started = time.perf_counter()
    pipeline = build_pipeline(random_state=seed).fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    predicted = pipeline.predict(X_test)
    scores[MODEL_NAME] = score(y_test, predicted)
    model = compile_pipeline(pipeline)
    drift = float(np.max(np.abs(model.predict(X_test) - predicted)))
    if drift > COMPILED_TOLERANCE:
        raise RuntimeError(f"the compiled model differs from the pipeline by ${drift:.3g} on the test set: not saved")

    rows_by_source: dict[str, int] = {}
    for source, rows in loaded.rows_by_source.items():
        rows_by_source[public_source(source)] = rows_by_source.get(public_source(source), 0) + rows
    metadata = {
        "data": {
            "sources": list(rows_by_source),
            "rows_by_source": rows_by_source,
            "rows_read": cleaned.rows_in,
            "rows_valid": len(rides),
            "rows_train": len(X_train),
            "rows_test": len(X_test),
            "cleaning": cleaned.counts,
            "cleaning_rules": {rule.name: rule.reason for rule in RULES},
        },
        "features": list(pipeline.named_steps["features"].get_feature_names_out()),
        "regressor": {"class": type(pipeline[-1]).__name__, **REGRESSOR_PARAMS, "random_state": seed},
        "metrics": {name: {"rmse": round(s.rmse, 4), "mae": round(s.mae, 4)} for name, s in scores.items()},
        "fare_range": [float(np.min(y)), float(np.max(y))],
        "fit_seconds": round(fit_seconds, 2),
    }
    return TrainingResult(metadata=save_model(model, pipeline, metadata, out_dir), scores=scores)
