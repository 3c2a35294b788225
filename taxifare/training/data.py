"""Load rides in the Kaggle schema from local CSVs or `gs://` URIs, streamed in chunks.

The full competition file has 55M rows (5.7 GB); `limit` and `sample` bound what is kept
without ever reading more than one chunk into memory at a time.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from taxifare.model import storage
from taxifare.model.schema import CSV_COLUMNS, KEY, PICKUP_DATETIME

CHUNK_ROWS = 500_000
DTYPES = {name: "float64" for name in CSV_COLUMNS if name not in (KEY, PICKUP_DATETIME)}
KAGGLE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


@dataclass
class LoadedRides:
    """Rides read from one or more sources, with how many rows each source gave."""

    rides: pd.DataFrame
    rows_by_source: dict[str, int] = field(default_factory=dict)


def parse_kaggle_datetimes(values: pd.Series) -> pd.Series:
    """Kaggle's "2013-03-27 03:35:00 UTC" strings to UTC datetimes; unparseable ones become NaT."""
    parsed = pd.to_datetime(values, format=KAGGLE_DATETIME_FORMAT, utc=True, errors="coerce")
    unparsed = parsed.isna() & values.notna()
    if unparsed.any():
        parsed[unparsed] = pd.to_datetime(values[unparsed], utc=True, errors="coerce", format="mixed")
    return parsed


def rides_from_frame(frame: pd.DataFrame, source: str) -> LoadedRides:
    """Rides already in memory (a synthetic set), parsed like a file."""
    frame = frame.assign(**{PICKUP_DATETIME: parse_kaggle_datetimes(frame[PICKUP_DATETIME])})
    return LoadedRides(rides=frame[list(CSV_COLUMNS)], rows_by_source={source: len(frame)})


def _chunks(stream: object, source: str, chunk_rows: int) -> object:
    """The CSV's rows in chunks; a ValueError naming the file and the missing columns if it is not the Kaggle schema."""
    try:
        return pd.read_csv(stream, usecols=lambda name: name in CSV_COLUMNS, dtype=DTYPES, chunksize=chunk_rows)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{source}: empty file, expected a CSV with the columns {', '.join(CSV_COLUMNS)}") from None


def _check_columns(chunk: pd.DataFrame, source: str) -> None:
    missing = [name for name in CSV_COLUMNS if name not in chunk.columns]
    if missing:
        raise ValueError(f"{source}: missing the column(s) {', '.join(missing)}; a ride CSV needs the Kaggle "
                         f"schema: {','.join(CSV_COLUMNS)}")


@dataclass(frozen=True)
class Selection:
    """Which rows of the sources to read: a time window, a sample and a cap, applied in that order.

    `since` and `until` are timezone-aware (the data's clock is UTC); the window keeps since <= pickup < until.
    """

    limit: int | None = None
    sample: float | None = None
    seed: int = 0
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.sample is not None and not 0 < self.sample <= 1:
            raise ValueError(f"sample must be a fraction in (0, 1], got {self.sample}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"--since {self.since} must be before --until {self.until}")

    def in_window(self, times: pd.Series) -> pd.Series:
        """Which pickup times fall in [since, until); all when there is no window."""
        inside = pd.Series(True, index=times.index)
        if self.since is not None:
            inside &= times >= pd.Timestamp(self.since)
        if self.until is not None:
            inside &= times < pd.Timestamp(self.until)
        return inside


def read_csv_chunks(
    source: str,
    selection: Selection,
    rng: np.random.Generator,
    limit: int | None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """The selected rows of one CSV, chunk by chunk, at most `limit` of them, datetimes parsed."""
    kept = 0
    with storage.open_binary(source) as stream:
        for chunk in _chunks(stream, source, chunk_rows):
            _check_columns(chunk, source)
            windowed = selection.since is not None or selection.until is not None
            if windowed:
                chunk[PICKUP_DATETIME] = parse_kaggle_datetimes(chunk[PICKUP_DATETIME])
                chunk = chunk[selection.in_window(chunk[PICKUP_DATETIME])]
            if selection.sample is not None:
                chunk = chunk[rng.random(len(chunk)) < selection.sample]
            if limit is not None:
                chunk = chunk.iloc[: limit - kept]
            if not windowed:
                chunk[PICKUP_DATETIME] = parse_kaggle_datetimes(chunk[PICKUP_DATETIME])
            kept += len(chunk)
            yield chunk[list(CSV_COLUMNS)]
            if limit is not None and kept >= limit:
                return


def read_rides(
    sources: Sequence[str],
    limit: int | None = None,
    sample: float | None = None,
    seed: int = 0,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[str], None] = lambda message: None,
) -> LoadedRides:
    """Read the rides of every source, keeping each row with probability `sample`, at most `limit` rows."""
    selection = Selection(limit=limit, sample=sample, seed=seed)
    rng = np.random.default_rng(seed)
    chunks, rows_by_source, kept = [], {}, 0
    for source in sources:
        rows_by_source.setdefault(source, 0)
        remaining = None if limit is None else limit - kept
        for chunk in read_csv_chunks(source, selection, rng, remaining, chunk_rows):
            chunks.append(chunk)
            kept += len(chunk)
            rows_by_source[source] += len(chunk)
            progress(f"read {source}: {rows_by_source[source]:,} rows kept")
        if limit is not None and kept >= limit:
            break
    rides = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=list(CSV_COLUMNS))
    return LoadedRides(rides=rides[list(CSV_COLUMNS)], rows_by_source=rows_by_source)
