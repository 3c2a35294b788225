"""UTC instants to wall-clock fields in a time zone, vectorised with numpy.

pandas' tz_convert costs ~100 microseconds per call, more than our whole prediction budget, so
the transformer learns the zone's UTC-offset table once (at fit time) and converts with a
binary search: exact for every instant the IANA database covers, DST changes included.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np

SECONDS_PER_DAY = 86_400
TABLE_YEARS = (1970, 2100)


@dataclass(frozen=True)
class CivilTime:
    """Wall-clock fields of local instants, one array each."""

    year: np.ndarray
    month: np.ndarray
    day: np.ndarray
    weekday: np.ndarray
    """Monday is 0, as in Python's datetime."""
    seconds_of_day: np.ndarray


def utc_offset_table(zone: str, years: tuple[int, int] = TABLE_YEARS) -> tuple[np.ndarray, np.ndarray]:
    """Instants (UTC epoch seconds) where the zone's offset changes, and the offset from each on.

    The first entry starts at the beginning of `years[0]`; instants before it use its offset.
    """
    tz = ZoneInfo(zone)

    def offset_at(t: int) -> int:
        return int(datetime.fromtimestamp(t, tz).utcoffset().total_seconds())

    start = int(datetime(years[0], 1, 1, tzinfo=timezone.utc).timestamp())
    end = int(datetime(years[1] + 1, 1, 1, tzinfo=timezone.utc).timestamp())
    instants, offsets = [start], [offset_at(start)]
    for day in range(start, end, SECONDS_PER_DAY):
        later = day + SECONDS_PER_DAY
        if offset_at(later) == offsets[-1]:
            continue
        lo, hi = day, later
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if offset_at(mid) == offsets[-1] else (lo, mid)
        instants.append(hi)
        offsets.append(offset_at(hi))
    return np.array(instants, dtype=np.int64), np.array(offsets, dtype=np.int64)


def to_local_seconds(utc_seconds: np.ndarray, instants: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Shift UTC epoch seconds to local wall-clock epoch seconds with an offset table."""
    position = np.searchsorted(instants, utc_seconds, side="right") - 1
    return utc_seconds + offsets[np.clip(position, 0, len(offsets) - 1)]


def civil_time(local_seconds: np.ndarray) -> CivilTime:
    """Calendar fields of wall-clock epoch seconds (proleptic Gregorian, H. Hinnant's algorithm)."""
    days, seconds_of_day = np.divmod(local_seconds, SECONDS_PER_DAY)
    z = days + 719_468
    era = z // 146_097
    day_of_era = z - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    month = np.where(shifted_month < 10, shifted_month + 3, shifted_month - 9)
    return CivilTime(
        year=year_of_era + era * 400 + (month <= 2),
        month=month,
        day=day_of_year - (153 * shifted_month + 2) // 5 + 1,
        weekday=(days + 3) % 7,
        seconds_of_day=seconds_of_day,
    )
