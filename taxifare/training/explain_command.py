"""`taxifare explain`: the breakdowns FareModel.explain gives, as a table (taxifare.training.explain_options:
what the command takes)."""

import argparse
import re
import sys
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd

from taxifare.model import local_time, storage
from taxifare.model.breakdown import PARTS, FareExplanation
from taxifare.model.fare_model import FareModel
from taxifare.model.schema import INPUT_COLUMNS, PASSENGER_COUNT, PICKUP_DATETIME
from taxifare.training.data import parse_kaggle_datetimes
from taxifare.training.explain_options import EXAMPLE_RIDE
from taxifare.training.importance import explainable

PICKUP_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")
UTC_SUFFIX = " UTC"
SHOWN_DIGITS = 4
"""Decimals of a feature's contribution in --features: enough to see the small ones a breakdown rounds away."""


def explain_rides(predictor: object, args: argparse.Namespace) -> str:
    """The table of the rides' breakdowns (and with --features, each ride's features), as printed."""
    model = explainable(predictor)
    if model is None:
        raise ValueError(f"{args.model}: not a taxifare model: only its model.joblib or pipeline.joblib has "
                         "breakdowns")
    rides = pd.DataFrame([ride_from_query(text, model) for text in args.ride]) if args.ride \
        else rides_from_csvs(args.data, args.limit)
    outside = 0 if model.service_area is None else int((~model.service_area.ends_inside(rides).all(axis=0)).sum())
    if outside:
        print(f"warning: {outside:,} of these rides start or end outside the model's service area: the API refuses "
              "them; their breakdowns below are the trees' answers", file=sys.stderr)
    explanation = model.explain(rides)
    table = format_breakdowns(explanation)
    return table + "\n\n" + format_features(explanation, model) if args.features else table


def ride_from_query(text: str, model: FareModel) -> dict[str, object]:
    """One ride from a query string, its pickup time read as the API reads it; ValueError naming what is wrong."""
    fields = dict(parse_qsl(text, keep_blank_values=True))
    missing = [name for name in INPUT_COLUMNS if name not in fields]
    unknown = [name for name in fields if name not in INPUT_COLUMNS]
    if missing or unknown:
        problems = "; ".join(f"{what}: {', '.join(names)}" for what, names in (("missing", missing),
                                                                               ("unknown", unknown)) if names)
        raise ValueError(f"--ride {text!r}: {problems}; a ride is e.g. '{EXAMPLE_RIDE}'")
    ride: dict[str, object] = {PICKUP_DATETIME: _utc_time(fields[PICKUP_DATETIME], model)}
    for name in INPUT_COLUMNS[1:]:
        try:
            ride[name] = (int if name == PASSENGER_COUNT else float)(fields[name])
        except ValueError:
            raise ValueError(f"--ride: {name} is not a {'whole ' if name == PASSENGER_COUNT else ''}number: "
                             f"{fields[name]!r}") from None
    return ride


def _utc_time(text: str, model: FareModel) -> np.datetime64:
    """A pickup time on New York's clock (or UTC with ' UTC') as a UTC instant, by the model's own zone table."""
    utc = text.endswith(UTC_SUFFIX)
    wall = text.removesuffix(UTC_SUFFIX)
    if not PICKUP_TIME.fullmatch(wall):
        raise ValueError(f"--ride: pickup_datetime {text!r} is not a date and time such as '2013-07-06 17:18:00' "
                         "(New York time) or '2013-07-06 21:18:00 UTC'")
    seconds = np.array([np.datetime64(wall, "s")]).astype(np.int64)
    if not utc:
        seconds = local_time.local_to_utc_seconds(seconds, model.features.offset_instants, model.features.offsets)
    return seconds.astype("datetime64[s]")[0]


def rides_from_csvs(sources: list[str], limit: int | None) -> pd.DataFrame:
    """The rides of Kaggle-schema CSVs (at most `limit`); rows missing a value are left out, and counted."""
    frames = []
    for source in sources:
        with storage.open_binary(source) as stream:
            frame = pd.read_csv(stream, nrows=limit)
        absent = [name for name in INPUT_COLUMNS if name not in frame.columns]
        if absent:
            raise ValueError(f"{source}: missing the column(s) {', '.join(absent)}; rides to explain need "
                             f"{', '.join(INPUT_COLUMNS)}")
        frames.append(frame[list(INPUT_COLUMNS)])
    rides = pd.concat(frames, ignore_index=True).iloc[:limit]
    rides[PICKUP_DATETIME] = parse_kaggle_datetimes(rides[PICKUP_DATETIME])
    complete = rides.notna().all(axis=1)
    if not complete.all():
        print(f"warning: left out {int((~complete).sum()):,} rides missing a value or with an unreadable time",
              file=sys.stderr)
    if not complete.any():
        raise ValueError(f"no ride to explain in {', '.join(sources)}")
    return rides[complete].reset_index(drop=True)


def format_breakdowns(explanation: FareExplanation) -> str:
    """One line per ride: its fare, then the base and each group in dollars; each line's parts add up to its fare."""
    widths = [max(len(part), 7) for part in PARTS]
    lines = ["ride      fare  " + "  ".join(f"{part:>{width}}" for part, width in zip(PARTS, widths, strict=True))]
    fares = np.rint(explanation.fares * 100).astype(np.int64)
    for index, (fare, cents) in enumerate(zip(fares, explanation.cents(), strict=True), start=1):
        parts = [f"{cents[0] / 100:>{widths[0]}.2f}", *(f"{value / 100:>+{width}.2f}"
                                                      for value, width in zip(cents[1:], widths[1:], strict=True))]
        lines.append(f"{index:>4}  {fare / 100:>8.2f}  " + "  ".join(parts))
    lines.append("dollars: the base (the average fare of the rides its model learned from) plus each part is the fare")
    return "\n".join(lines)


def format_features(explanation: FareExplanation, model: FareModel) -> str:
    """Each ride's engineered features by what they add to its fare (dollars, most first; those adding nothing left out)."""
    names = model.feature_names()
    blocks = []
    for index, contributions in enumerate(explanation.contributions, start=1):
        shown = [i for i in np.argsort(-np.abs(contributions), kind="stable")
                 if round(contributions[i], SHOWN_DIGITS) != 0]
        lines = [f"ride {index}: what each feature adds (dollars), most first"]
        lines += [f"  {names[i]:<24}{explanation.groups[i]:<15}{contributions[i]:>+10.{SHOWN_DIGITS}f}" for i in shown]
        lines.append(f"  ({len(names) - len(shown)} features add less than half a hundredth of a cent)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
