"""FareRegressor: the fare model scikit-learn fits, from ride features to fares and a calibrated range.

- Fares: real trips get the average of a bag of gradient-boosted tree models, each fit on its own
  bootstrap sample of the trips with its own random feature subsets; a bag of one is a single model
  fit on the trips themselves (a bootstrap sample would only drop a third of them). Every model
  sees at most `max_samples` rides: the rule that keeps training time flat on millions of rides.
  Rides under `short_trip_km` (round trips, frozen GPS: fares from $3 to $150 for the same point)
  get a bag of their own, trained on every ride, short ones included; the trip models never see
  them, so they cannot blur real trips. Short rides are mostly noise, so their bag's answer is
  pulled part of the way (`short_shrinkage`) towards the average short-ride fare.
- Range: two quantile models (RANGE_QUANTILES by default) fit on part of the rides, widened by the margin
  that makes them cover the requested share of the held-out rest (conformalized quantile regression:
  the coverage holds on new rides, not only on the training data). Base quantiles near the coverage
  that matters most (80%) give the narrowest ranges: $4.0 wide where 10%/90% gave $4.9. A coverage
  that too few held-out rides cannot promise (95% needs at least 19) is not offered: never a
  narrower range under its name (`range_uncalibrated_` says which, and how many rides it needs).
- Long trips (`reach_quantile`): the regressor learns the floor under rides longer than the training
  rides (taxifare.model.long_trips): the reach, a quantile of the trips' lengths, and the rate per km
  beyond it, the median fare per km (after the start fare) of the longest tenth of the trips. The
  floor needs the rides themselves, not their features: the pipeline applies it (FarePipeline).
"""

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted

from taxifare.model.fare_model import RANGE_COVERAGES, range_around
from taxifare.model.long_trips import LongTrips
from taxifare.model.schema import START_FARE

SHORT_TRIP_KM = 0.1
"""Rides shorter than 100 m (round trips, frozen GPS) are priced by a model of their own."""
RANGE_QUANTILES = (0.2, 0.8)
"""The quantiles the two range models learn before the conformal margins widen them."""
LONGEST_TRIPS_QUANTILE = 0.9
"""Trips at least this long (a quantile of the trips' lengths) set the long-trip floor's rate per km."""


def conformal_rank(n: int, coverage: float) -> int:
    """Which of n sorted scores is the margin for `coverage`: the ceil((n + 1) * coverage)-th smallest."""
    return int(np.ceil((n + 1) * coverage))


def conformal_margin(scores: np.ndarray, coverage: float) -> float:
    """The margin that makes intervals cover `coverage` of rides like these (split conformal quantile).

    inf when the rank is past n: so few scores cannot promise the coverage with any finite margin
    (none at all: n = 0).
    """
    n = len(scores)
    rank = conformal_rank(n, coverage)
    return float(np.sort(scores)[rank - 1]) if rank <= n else math.inf


def calibration_rides_needed(coverage: float) -> int:
    """The fewest held-out rides whose scores give `coverage` a finite margin (19 for 95%)."""
    n = 1
    while conformal_rank(n, coverage) > n:
        n += 1
    return n


class FareRegressor(RegressorMixin, BaseEstimator):
    """Fares from the feature matrix of RideFeatures: boosted trees for trips, a bag for short rides, and a range.

    Parameters
    ----------
    distance_column : index of the trip's length (km) among the features; routes short rides.
    short_trip_km : rides shorter than this are priced by the short-ride bag.
    short_shrinkage : how far (0 to 1) the short-ride bag's answers move towards the mean short-ride fare.
    n_members : models in the trip bag (1: one model fit on every trip, no bootstrap).
    n_short_members : models in the short-ride bag.
    max_samples : rides each model is fit on, at most (all rides when fewer).
    member : the boosted-tree model each trip model clones (a HistGradientBoostingRegressor).
    short_member : the boosted-tree model each short-ride bag member clones (default: member).
    range_member : the boosted-tree model the two range models clone (with a quantile loss).
    range_quantiles : the lower and upper quantiles the range models learn; None: no range.
    range_coverages : coverages, in percent, the range is calibrated for (those the held-out rides are too
        few for are left out: see range_uncalibrated_).
    calibration_fraction : share of the rides held out to calibrate the range.
    reach_quantile : the long-trip floor's reach, as a quantile of the trips' lengths (see above); None: no floor.
    random_state : seed for bootstraps, feature subsets and the calibration split.
    """

    def __init__(self, distance_column: int = 0, short_trip_km: float = SHORT_TRIP_KM, short_shrinkage: float = 0.5,
                 n_members: int = 5, n_short_members: int = 5,
                 max_samples: int = 1_000_000, member: HistGradientBoostingRegressor | None = None,
                 short_member: HistGradientBoostingRegressor | None = None,
                 range_member: HistGradientBoostingRegressor | None = None,
                 range_quantiles: tuple[float, float] | None = RANGE_QUANTILES,
                 range_coverages: Sequence[int] = RANGE_COVERAGES,
                 calibration_fraction: float = 0.25, reach_quantile: float | None = None, random_state: int = 0):
        self.distance_column = distance_column
        self.short_trip_km = short_trip_km
        self.short_shrinkage = short_shrinkage
        self.n_members = n_members
        self.n_short_members = n_short_members
        self.max_samples = max_samples
        self.member = member
        self.short_member = short_member
        self.range_member = range_member
        self.range_quantiles = range_quantiles
        self.range_coverages = range_coverages
        self.calibration_fraction = calibration_fraction
        self.reach_quantile = reach_quantile
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, progress: Callable[[str], None] | None = None) -> "FareRegressor":
        """Fit both bags and the range; X is RideFeatures' output, y the fares.

        `progress`, if given, hears of each fitted model with an estimate of the time left.
        """
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        rng = np.random.default_rng(self.random_state)
        trips = X[:, self.distance_column] >= self.short_trip_km
        self.long_trips_ = self._long_trips(X[trips, self.distance_column], y[trips])
        short_bag = self.short_trip_km > 0
        report = _Countdown(self.n_members + (self.n_short_members if short_bag else 0)
                            + (2 if self.range_quantiles is not None else 0), progress)
        member = self.member if self.member is not None else HistGradientBoostingRegressor()
        self.trip_members_ = self._fit_bag(X[trips], y[trips], member, self.n_members, rng, "trip", report)
        short_member = self.short_member if self.short_member is not None else member
        self.short_members_ = (self._fit_bag(X, y, short_member, self.n_short_members, rng, "short-ride", report)
                               if short_bag else [])
        self.short_mean_fare_ = float(y[~trips].mean()) if (~trips).any() else float(y.mean())
        self.n_features_in_ = X.shape[1]
        if self.range_quantiles is not None:
            self._fit_range(X, y, rng, report)
        return self

    def _long_trips(self, length: np.ndarray, fares: np.ndarray) -> LongTrips | None:
        """The floor under the longest rides, learned from the trips' lengths and fares (None: no floor)."""
        if self.reach_quantile is None or not len(length):
            return None
        longest = length >= np.quantile(length, LONGEST_TRIPS_QUANTILE)
        rate = float(np.median((fares[longest] - START_FARE) / length[longest]))
        return LongTrips(self.distance_column, float(np.quantile(length, self.reach_quantile)), max(rate, 0.0))

    def _fit_range(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator, report: "_Countdown") -> None:
        """Quantile models on part of the rides; margins from their errors on the rest (split conformal)."""
        calibration = rng.random(len(X)) < self.calibration_fraction
        fit = np.flatnonzero(~calibration)[:self.max_samples]
        template = self.range_member if self.range_member is not None else HistGradientBoostingRegressor()
        self.range_low_, self.range_high_ = (
            report.done(f"range model (quantile {quantile:g})", clone(template).set_params(
                loss="quantile", quantile=quantile, random_state=self.random_state).fit(X[fit], y[fit]))
            for quantile in self.range_quantiles
        )
        held_out, truth = X[calibration], y[calibration]
        scores = (np.maximum(self.range_low_.predict(held_out) - truth, truth - self.range_high_.predict(held_out))
                  if len(held_out) else np.empty(0))
        margins = {int(coverage): conformal_margin(scores, coverage / 100) for coverage in self.range_coverages}
        self.range_margins_ = {coverage: margin for coverage, margin in margins.items() if math.isfinite(margin)}
        # coverage -> the held-out rides it would need, for each coverage these few cannot promise
        self.range_uncalibrated_ = {coverage: calibration_rides_needed(coverage / 100)
                                    for coverage, margin in margins.items() if not math.isfinite(margin)}

    def _fit_bag(self, X: np.ndarray, y: np.ndarray, template: HistGradientBoostingRegressor, n_members: int,
                 rng: np.random.Generator, name: str, report: "_Countdown") -> list[HistGradientBoostingRegressor]:
        """Members fit on bootstrap samples (rows drawn with replacement: unweighted fits are ~4x faster).

        A bag of one is fit on the rides themselves, or a random `max_samples` of them.
        """
        members = []
        size = min(len(X), self.max_samples)
        for index in range(n_members):
            if n_members > 1:
                sample = rng.integers(len(X), size=size)
            else:
                sample = rng.choice(len(X), size=size, replace=False) if size < len(X) else slice(None)
            seed = int(rng.integers(2**31 - 1))
            member = clone(template).set_params(random_state=seed).fit(X[sample], y[sample])
            members.append(report.done(f"{name} model {index + 1}/{n_members}", member))
        return members

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Each ride's fare: the mean of its bag's predictions."""
        check_is_fitted(self, "trip_members_")
        X = np.asarray(X, dtype=np.float64)
        short = X[:, self.distance_column] < self.short_trip_km
        fares = np.empty(len(X))
        if (~short).any():
            fares[~short] = np.mean([member.predict(X[~short]) for member in self.trip_members_], axis=0)
        if short.any():
            bag = np.mean([member.predict(X[short]) for member in self.short_members_], axis=0)
            fares[short] = (1 - self.short_shrinkage) * bag + self.short_shrinkage * self.short_mean_fare_
        return fares

    def predict_range(self, X: np.ndarray, coverage: int,
                      fares: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fares, low, high): a range meant to hold `coverage` percent of real fares, around each fare.

        `fares`, if given, are the ones to put the range around (the pipeline's, after the long-trip floor).
        KeyError for a coverage not calibrated (see range_uncalibrated_).
        """
        check_is_fitted(self, "range_margins_")
        X = np.asarray(X, dtype=np.float64)
        fares = self.predict(X) if fares is None else fares
        return fares, *range_around(self.range_low_.predict(X), self.range_high_.predict(X), fares,
                                    self.range_margins_[coverage], START_FARE)


class _Countdown:
    """Says which model was fitted, and the time left, assuming the rest take as long on average."""

    def __init__(self, total: int, progress: Callable[[str], None] | None):
        self.total, self.progress = total, progress
        self.finished, self.started = 0, time.perf_counter()

    def done(self, what: str, model: HistGradientBoostingRegressor) -> HistGradientBoostingRegressor:
        self.finished += 1
        if self.progress is not None:
            left = (time.perf_counter() - self.started) / self.finished * (self.total - self.finished)
            self.progress(f"fitted {what} ({self.finished}/{self.total}, about {left:.0f} s left)")
        return model
