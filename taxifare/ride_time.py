"""Parse a rider's pickup time into a UTC instant.

- A naive time ("2013-07-06 17:18:00") is New York wall-clock time, what a rider means.
- A " UTC" suffix (the Kaggle format), a "Z" or an explicit offset ("-04:00") is taken as given.
- DST is resolved like PEP 495's fold=0, deterministically and never as an error: in the spring gap
  a non-existent time keeps the offset from before the jump (02:30 -> 03:30 EDT); in the autumn
  overlap an ambiguous time is its first occurrence (01:30 -> 01:30 EDT).
"""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
UTC_SUFFIX = " UTC"
FIRST_YEAR, END_YEAR = 2009, 2100
EARLIEST = datetime(FIRST_YEAR, 1, 1).replace(tzinfo=timezone.utc).timestamp()
LATEST = datetime(END_YEAR, 1, 1).replace(tzinfo=timezone.utc).timestamp()
EXAMPLE = "2013-07-06 17:18:00"


class RideTimeError(ValueError):
    """A pickup time that cannot be priced; the message says why, for the caller."""


def parse_pickup_datetime(text: str) -> int:
    """UTC epoch seconds of a pickup time string (see the module docstring for the rules)."""
    utc = text.endswith(UTC_SUFFIX)
    try:
        moment = datetime.fromisoformat(text.removesuffix(UTC_SUFFIX) if utc else text)
    except ValueError:
        raise RideTimeError(f"not a date and time: {text[:40]!r} (expected e.g. {EXAMPLE!r})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc if utc else NEW_YORK)
    elif utc:
        raise RideTimeError(f"two time zones in {text[:40]!r}")
    seconds = moment.timestamp()
    if not EARLIEST <= seconds < LATEST:
        raise RideTimeError(f"out of range: {text[:40]!r} (rides from {FIRST_YEAR} to {END_YEAR - 1} are priced)")
    return int(seconds)
