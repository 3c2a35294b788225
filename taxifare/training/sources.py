"""One way to get rides for any command: CSVs (local or gs://), BigQuery tables and queries, mixed.

`load_rides` reads the sources in order, applies the selection (time window, sample, a cap on the
rows read across all sources) and cleans: CSV chunks in pandas as they are read, BigQuery rows in
SQL. Either way the same rules, the same counts, and never more than a chunk of raw rows in memory.
"""

from collections.abc import Callable, Sequence

import numpy as np

from taxifare.training.bigquery import BigQuerySource
from taxifare.training.bigquery_options import TABLE_SCHEME, BigQueryOptions, is_bigquery_source
from taxifare.training.bigquery_sql import table_sql
from taxifare.training.cleaning import CleaningResult, clean_rides, combine
from taxifare.training.data import CHUNK_ROWS, Selection, read_csv_chunks


def load_rides(
    sources: Sequence[str],
    selection: Selection = Selection(),
    bigquery: BigQueryOptions = BigQueryOptions(),
    progress: Callable[[str], None] = lambda message: None,
    chunk_rows: int = CHUNK_ROWS,
) -> CleaningResult:
    """The cleaned rides of every source, with the cleaning counts and the rows read from each."""
    for source in sources:  # a malformed table id is refused before any source is read
        if source.startswith(TABLE_SCHEME):
            table_sql(source.removeprefix(TABLE_SCHEME))
    rng = np.random.default_rng(selection.seed)
    reader: BigQuerySource | None = None
    parts, read = [], 0
    for source in sources:
        remaining = None if selection.limit is None else selection.limit - read
        if remaining is not None and remaining <= 0:
            break
        if is_bigquery_source(source):
            reader = reader or BigQuerySource(bigquery, progress)
            part = reader.read(source, selection, remaining)
        else:
            part = _read_csv(source, selection, rng, remaining, chunk_rows, progress)
        read += part.rows_in
        parts.append(part)
    return combine(parts)


def _read_csv(source: str, selection: Selection, rng: np.random.Generator, limit: int | None, chunk_rows: int,
              progress: Callable[[str], None]) -> CleaningResult:
    parts = []
    for chunk in read_csv_chunks(source, selection, rng, limit, chunk_rows):
        cleaned = clean_rides(chunk)
        cleaned.rows_by_source = {source: len(chunk)}
        parts.append(cleaned)
        progress(f"read {source}: {sum(part.rows_in for part in parts):,} rows kept")
    result = combine(parts)
    result.rows_by_source.setdefault(source, 0)
    return result
