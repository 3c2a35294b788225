"""Compare fare models on the same rides, and say whether the rides can tell them apart.

Every model prices the same valid rides. Each is scored on all of them and by segment (real trips,
short rides, airport rides, long trips, each year): RMSE, MAE, and how often its fare range held
the real fare and how wide it was. Each model's RMSE is set against the first model's (the
reference, usually the one serving) with a paired bootstrap: the rides are resampled together for
both models, so the 95% interval says how far the difference could move on other rides like these.
An interval that excludes zero is a difference the data shows; one that straddles zero is not.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from taxifare.model.fare_model import FareModel
from taxifare.model.features import RideFeatureMap
from taxifare.training.comparison_options import BOOTSTRAP_SAMPLES, DEFAULT_COVERAGE, Outcome
from taxifare.training.pipeline import DISTANCE_FEATURE, SHORT_TRIP_KM

CONFIDENCE = 0.95
AIRPORTS = ("jfk", "lga", "ewr")
AIRPORT_KM = 2.0
"""A ride starts or ends at an airport when that end is this close to its terminals (JFK's span ~2 km)."""
LONG_TRIP_KM = 10.0
MIN_INTERVAL_RIDES = 30
"""A segment with fewer rides gets scores but no interval: a bootstrap of a handful of rides says nothing."""
BOOTSTRAP_CHUNK_DRAWS = 2_000_000
"""Resampled ride indices held at once (16 MB), so memory stays flat however many rides are compared."""
HEADLINE = "all rides"


@dataclass(frozen=True)
class Scores:
    """One model on one segment, in dollars; coverage and width are None for a model without that range."""

    rmse: float
    mae: float
    coverage: float | None
    width: float | None


@dataclass(frozen=True)
class Difference:
    """A model's RMSE minus the reference's on one segment, with its paired-bootstrap interval (None: too few)."""

    estimate: float
    low: float | None
    high: float | None

    @property
    def outcome(self) -> Outcome:
        if self.low is not None and self.high < 0:
            return Outcome.BETTER
        if self.low is not None and self.low > 0:
            return Outcome.WORSE
        return Outcome.NO_DIFFERENCE


@dataclass(frozen=True)
class Comparison:
    """Scores of every model on every segment, and each later model's RMSE difference from the first."""

    models: tuple[str, ...]
    coverage: int
    rides: dict[str, int]
    scores: dict[tuple[str, str], Scores]
    differences: dict[tuple[str, str], Difference]

    @property
    def reference(self) -> str:
        return self.models[0]

    def outcome(self, model: str) -> Outcome:
        return self.differences[HEADLINE, model].outcome

    @property
    def exit_status(self) -> int:
        """0 when every model beats the reference, 4 when any is worse, 3 otherwise (no difference shown)."""
        outcomes = {self.outcome(model) for model in self.models[1:]}
        if Outcome.WORSE in outcomes:
            return Outcome.WORSE
        return Outcome.BETTER if outcomes == {Outcome.BETTER} else Outcome.NO_DIFFERENCE


def segments(rides: pd.DataFrame) -> dict[str, np.ndarray]:
    """Which rides belong to each segment (a ride is in several): all, trips, short, airports, long, each year."""
    feature_map = RideFeatureMap.build()
    names = feature_map.names()
    features = feature_map.compute(rides)
    column = {name: features[:, names.index(name)] for name in names}
    trip_km = column[DISTANCE_FEATURE]
    at_airport = np.zeros(len(rides), dtype=bool)
    for end in ("pickup", "dropoff"):
        for airport in AIRPORTS:
            at_airport |= column[f"{end}_to_{airport}_km"] < AIRPORT_KM
    found = {
        HEADLINE: np.ones(len(rides), dtype=bool),
        f"real trips (>= {SHORT_TRIP_KM * 1000:.0f} m)": trip_km >= SHORT_TRIP_KM,
        f"short rides (< {SHORT_TRIP_KM * 1000:.0f} m)": trip_km < SHORT_TRIP_KM,
        "airport rides (JFK, LGA, EWR)": at_airport,
        f"long trips (>= {LONG_TRIP_KM:.0f} km)": trip_km >= LONG_TRIP_KM,
    }
    years = column["year"].astype(int)  # New York local time, as the model sees it
    found.update({f"year {year}": years == year for year in np.unique(years)})
    return found


def fare_range(predictor: object, rides: pd.DataFrame, coverage: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) of each ride's `coverage`% range, or None when the model offers no such range.

    A compiled model.joblib and a taxifare pipeline.joblib both have ranges; a baseline has none."""
    if isinstance(predictor, FareModel):
        return predictor.predict_range(rides, coverage)[1:] if coverage in predictor.range_coverages else None
    steps = getattr(predictor, "named_steps", {})
    regressor = steps.get("regressor")
    if coverage not in getattr(regressor, "range_margins_", {}):
        return None
    return regressor.predict_range(steps["features"].transform(rides), coverage)[1:]


def score(fares: np.ndarray, predicted: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None) -> Scores:
    """RMSE, MAE and (with a range) the share of real fares inside it and its mean width."""
    error = predicted - fares
    if bounds is None:
        coverage = width = None
    else:
        low, high = bounds
        coverage, width = float(np.mean((fares >= low) & (fares <= high))), float(np.mean(high - low))
    return Scores(float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error))), coverage, width)


def paired_bootstrap(squared_errors: list[np.ndarray], samples: int, rng: np.random.Generator) -> list[np.ndarray]:
    """For each model after the first: its RMSE minus the first's on `samples` resamplings of the same rides."""
    n = len(squared_errors[0])
    differences: list[list[np.ndarray]] = [[] for _ in squared_errors[1:]]
    chunk = max(1, BOOTSTRAP_CHUNK_DRAWS // n)
    for start in range(0, samples, chunk):
        draws = rng.integers(0, n, size=(min(chunk, samples - start), n))
        rmse = [np.sqrt(errors[draws].mean(axis=1)) for errors in squared_errors]
        for model, found in enumerate(rmse[1:]):
            differences[model].append(found - rmse[0])
    return [np.concatenate(parts) for parts in differences]


def compare(predictors: Mapping[str, object], rides: pd.DataFrame, fares: np.ndarray,
            coverage: int = DEFAULT_COVERAGE, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> Comparison:
    """Score every model on the same rides, overall and by segment, each against the first with its interval."""
    if len(predictors) < 2:
        raise ValueError("compare needs at least two models")
    fares = np.asarray(fares, dtype=float)
    predicted = {name: np.asarray(model.predict(rides), dtype=float) for name, model in predictors.items()}
    bounds = {name: fare_range(model, rides, coverage) for name, model in predictors.items()}
    models = tuple(predictors)
    rng = np.random.default_rng(seed)
    rides_in, scores, differences = {}, {}, {}
    for segment, mask in segments(rides).items():
        if not mask.any():
            continue
        rides_in[segment] = int(mask.sum())
        for name in models:
            within = None if bounds[name] is None else (bounds[name][0][mask], bounds[name][1][mask])
            scores[segment, name] = score(fares[mask], predicted[name][mask], within)
        squared = [(predicted[name][mask] - fares[mask]) ** 2 for name in models]
        resampled = paired_bootstrap(squared, samples, rng) if rides_in[segment] >= MIN_INTERVAL_RIDES else None
        for index, name in enumerate(models[1:]):
            estimate = scores[segment, name].rmse - scores[segment, models[0]].rmse
            low = high = None
            if resampled is not None:
                tail = (1 - CONFIDENCE) / 2 * 100
                low, high = (float(x) for x in np.percentile(resampled[index], [tail, 100 - tail]))
            differences[segment, name] = Difference(estimate, low, high)
    return Comparison(models, coverage, rides_in, scores, differences)


def verdict(comparison: Comparison, model: str) -> str:
    """One line: "B is better by 0.12 (0.07-0.17)", "B is worse by ...", or no difference the data can show."""
    difference = comparison.differences[HEADLINE, model]
    reference = comparison.reference
    ours, theirs = comparison.scores[HEADLINE, model].rmse, comparison.scores[HEADLINE, reference].rmse
    context = f"RMSE {ours:.3f} against {reference}'s {theirs:.3f} on {comparison.rides[HEADLINE]:,} rides"
    outcome = difference.outcome
    if outcome is Outcome.NO_DIFFERENCE:
        return f"{model}: no difference the data can show: {context}, difference {_interval(difference)}"
    gain, low, high = (-difference.estimate, -difference.high, -difference.low) if outcome is Outcome.BETTER else (
        difference.estimate, difference.low, difference.high)
    word = "better" if outcome is Outcome.BETTER else "worse"
    return f"{model} is {word} by {gain:.2f} ({low:.2f}-{high:.2f}): {context}"


def _interval(difference: Difference) -> str:
    if difference.low is None:
        return f"{difference.estimate:+.3f}, too few rides for an interval"
    return f"{difference.estimate:+.3f} ({difference.low:+.3f} to {difference.high:+.3f})"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:.2f}"


def format_comparison(comparison: Comparison) -> str:
    """A table with one row per segment and model, the RMSE differences and their intervals, then the verdicts."""
    reference = comparison.reference
    width = max(len(segment) for segment in comparison.rides) + 2
    name_width = max(5, *(len(name) + 2 for name in comparison.models))
    held = f"{comparison.coverage}% held"
    lines = [f"{'segment':<{width}}{'rides':>7}  {'model':<{name_width}}{'RMSE':>8}{'MAE':>8}{held:>11}{'width':>8}"
             f"   RMSE minus {reference}'s, 95% interval"]
    for segment, rides in comparison.rides.items():
        for index, name in enumerate(comparison.models):
            s = comparison.scores[segment, name]
            first = f"{segment:<{width}}{rides:>7,}" if index == 0 else " " * (width + 7)
            row = (f"{first}  {name:<{name_width}}{s.rmse:>8.3f}{s.mae:>8.3f}{_percent(s.coverage):>11}"
                   f"{_dollars(s.width):>8}")
            if index:
                row += f"   {_interval(comparison.differences[segment, name])}"
            lines.append(row)
    lines.append("")
    lines += [verdict(comparison, name) for name in comparison.models[1:]]
    return "\n".join(lines)
