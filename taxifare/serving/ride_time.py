"""Parse a rider's pickup time into a UTC instant.

- A naive time ("2013-07-06 17:18:00") is New York wall-clock time, what a rider means.
- A " UTC" suffix (the Kaggle format), a "Z" or an explicit offset ("-04:00") is taken as given.
- A date alone ("2013-07-06") is refused: fares depend on the hour, and midnight is a guess.
- DST is resolved like PEP 495's fold=0, deterministically and never as an error: in the spring gap
  a non-existent time keeps the offset from before the jump (02:30 -> 03:30 EDT); in the autumn
  overlap an ambiguous time is its first occurrence (01:30 -> 01:30 EDT).

Batches convert naive times with the New York UTC-offset table the serving model carries (its
feature map's, built at training from the same zone): building one here would cost ~140 ms of pure
Python, holding the GIL, on the first batch.
"""

import re
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import numpy as np

from taxifare.model import local_time
from taxifare.model.schema import TIMEZONE, UTC_SUFFIX
from taxifare.serving.quoting import quoted

NEW_YORK = ZoneInfo(TIMEZONE)
PLAIN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")
"""What the batch parser takes: a date and hours:minutes[:seconds]; no zone, no fractions."""
OffsetTable = tuple[np.ndarray, np.ndarray]
"""New York's UTC-offset table: (instants, offsets), as local_time.utc_offset_table builds it."""
FIRST_YEAR, END_YEAR = 2009, 2100
EXAMPLE = "2013-07-06 17:18:00"
MIDNIGHT = time(0)


class RideTimeError(ValueError):
    """A pickup time that cannot be priced; the message says why, for the caller."""


def parse_pickup_datetime(text: str) -> int:
    """UTC epoch seconds of a pickup time string (see the module docstring for the rules)."""
    utc = text.endswith(UTC_SUFFIX)
    written = text.removesuffix(UTC_SUFFIX)
    try:
        moment = datetime.fromisoformat(written)
    except ValueError:
        raise RideTimeError(f"not a date and time: {quoted(text)} (expected e.g. {quoted(EXAMPLE)})") from None
    if moment.time() == MIDNIGHT:  # the only time a date alone parses to
        _refuse_a_date_alone(written, text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc if utc else NEW_YORK)
    elif utc:
        raise RideTimeError(f"two time zones in {quoted(text)}")
    if not FIRST_YEAR <= moment.year < END_YEAR:
        raise RideTimeError(f"out of range: {quoted(text)} (rides from {FIRST_YEAR} to {END_YEAR - 1} are priced)")
    return int(moment.timestamp())


def _refuse_a_date_alone(written: str, text: str) -> None:
    """A midnight that was not written ("2013-07-06", "20130706", "2013-W27-6"): ask for the time.

    `written` is `text` without its " UTC": the example keeps the suffix the caller sent.
    """
    try:
        day = date.fromisoformat(written)
    except ValueError:
        return  # a time was written: midnight is what the caller said
    raise RideTimeError(f"a date without a time: {quoted(text)} (fares depend on the hour: add it, e.g. "
                        f"{quoted(f'{day.isoformat()} 00:00:00{text.removeprefix(written)}')})")


def parse_pickup_datetimes(texts: list[str], new_york: OffsetTable | None) -> np.ndarray | None:
    """UTC epoch seconds of many plain times at once, or None to say "parse them one by one".

    Batches are priced in one vectorised pass, so their times are too: when every string is a
    plain "YYYY-MM-DD HH:MM[:SS]" (all with the " UTC" suffix, or none) numpy parses them and
    `new_york`, the zone's offset table, converts them, by parse_pickup_datetime's rules. Anything
    else (offsets, "Z", mixed suffixes, bad strings, years outside 2009-2099 as written, naive times
    without a table) returns None.
    """
    if not all(type(text) is str for text in texts):
        return None
    utc = texts[0].endswith(UTC_SUFFIX)
    if not utc and new_york is None:
        return None
    plain = [text[: -len(UTC_SUFFIX)] for text in texts] if utc else texts
    if any(text.endswith(UTC_SUFFIX) != utc for text in texts) or not all(map(PLAIN_TIME.fullmatch, plain)):
        return None
    try:
        wall = np.array(plain, dtype="datetime64[s]")
    except ValueError:
        return None
    years = wall.astype("datetime64[Y]").astype(np.int64) + 1970
    if not ((years >= FIRST_YEAR) & (years < END_YEAR)).all():
        return None
    seconds = wall.astype(np.int64)
    return seconds if utc else local_time.local_to_utc_seconds(seconds, *new_york)
