"""Loading: every row of the real files, chunked streaming, limits and sampling."""

import pandas as pd
import pytest

from taxifare.model.schema import CSV_COLUMNS
from taxifare.training.data import parse_kaggle_datetimes, read_rides


def test_reads_every_row_of_both_sources_with_utc_times(shared_csvs):
    loaded = read_rides(shared_csvs)
    assert loaded.rows_by_source == {shared_csvs[0]: 10_000, shared_csvs[1]: 10_476}
    assert list(loaded.rides.columns) == list(CSV_COLUMNS)
    first = loaded.rides.iloc[0]
    assert first["pickup_datetime"] == pd.Timestamp("2009-06-15 17:26:21", tz="UTC")
    assert first["fare_amount"] == 4.5


def test_limit_stops_reading_early_across_chunks(shared_csvs):
    loaded = read_rides(shared_csvs, limit=2_500, chunk_rows=1_000)
    assert len(loaded.rides) == 2_500
    assert loaded.rows_by_source == {shared_csvs[0]: 2_500}


def test_limit_spans_sources(shared_csvs):
    loaded = read_rides(shared_csvs, limit=10_100, chunk_rows=4_000)
    assert loaded.rows_by_source == {shared_csvs[0]: 10_000, shared_csvs[1]: 100}


def test_sample_keeps_about_the_fraction_and_is_reproducible(shared_csvs):
    first = read_rides(shared_csvs, sample=0.1, seed=3, chunk_rows=2_000)
    again = read_rides(shared_csvs, sample=0.1, seed=3, chunk_rows=2_000)
    assert 1_700 < len(first.rides) < 2_400
    pd.testing.assert_frame_equal(first.rides, again.rides)


def test_sample_must_be_a_fraction(shared_csvs):
    with pytest.raises(ValueError, match="sample"):
        read_rides(shared_csvs, sample=1.5)


def test_unparseable_times_become_missing_and_iso_times_parse():
    parsed = parse_kaggle_datetimes(pd.Series(["2013-03-27 03:35:00 UTC", "yesterday", "2013-03-27T03:35:00Z"]))
    assert parsed.isna().tolist() == [False, True, False]
    assert parsed[0] == parsed[2]
