"""UTC instants to wall-clock fields in a time zone, vectorised with numpy.

pandas' tz_convert costs ~100 microseconds per call, more than our whole prediction budget, so
the transformer learns the zone's UTC-offset table once (at fit time) and converts with a
binary search: exact for every instant the IANA database covers, DST changes included.
"""

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np

from taxifare.model.sorted_lookup import position_right

SECONDS_PER_DAY = 86_400
TABLE_YEARS = (1970, 2100)


@dataclass(frozen=True)
class CivilTime:
    """Wall-clock fields of local instants, one array each."""

    year: np.ndarray
    month: np.ndarray
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


@functools.cache
def shared_offset_table(zone: str) -> tuple[np.ndarray, np.ndarray]:
    """utc_offset_table(zone), built once per process and read-only: it takes ~0.2 s of pure Python, and training
    builds a feature map at each of its eight pipeline fits."""
    table = utc_offset_table(zone)
    for array in table:
        array.setflags(write=False)
    return table


def to_local_seconds(utc_seconds: np.ndarray, instants: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Shift UTC epoch seconds to local wall-clock epoch seconds with an offset table."""
    position = position_right(instants, utc_seconds) - 1  # at most len - 1 by construction
    return utc_seconds + offsets[np.maximum(position, 0)]


def civil_time(local_seconds: np.ndarray) -> CivilTime:
    """Calendar fields of wall-clock epoch seconds, through numpy's datetime64 calendar arithmetic."""
    months = np.asarray(local_seconds).astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    days, seconds_of_day = np.divmod(local_seconds, SECONDS_PER_DAY)
    return CivilTime(
        year=months // 12 + 1970,
        month=months % 12 + 1,
        weekday=(days + 3) % 7,
        seconds_of_day=seconds_of_day,
    )


def local_to_utc_seconds(local_seconds: np.ndarray, instants: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Wall-clock epoch seconds to UTC, resolving DST like PEP 495's fold=0.

    The offset in force before each transition applies until the wall clock reaches the later of
    the transition's two readings: so a time in a spring gap keeps the old offset, and a time in an
    autumn overlap is its first occurrence.
    """
    switch_at = instants[1:] + np.maximum(offsets[:-1], offsets[1:])
    position = position_right(switch_at, local_seconds)
    return local_seconds - offsets[position]
