"""Pickup-time parsing: one at a time and vectorised batches agree, DST edges included."""

import numpy as np
import pytest

from taxifare.model.local_time import utc_offset_table
from taxifare.model.schema import TIMEZONE
from taxifare.serving.ride_time import RideTimeError, parse_pickup_datetime, parse_pickup_datetimes

NEW_YORK = utc_offset_table(TIMEZONE)
"""The table a model's feature map carries (RideFeatureMap.build), which the function converts batches with."""


def batch_parse(texts: list) -> np.ndarray | None:
    return parse_pickup_datetimes(texts, NEW_YORK)


def dst_edge_times() -> list[str]:
    days = ["2013-03-10", "2013-11-03", "2014-03-09", "2014-11-02", "2021-03-14", "2021-11-07"]
    return [f"{day} {hour:02d}:{minute:02d}:{second:02d}" for day in days for hour in range(5)
            for minute in (0, 1, 29, 30, 59) for second in (0, 59)]


def random_times(n: int = 5000) -> list[str]:
    seconds = np.random.default_rng(0).integers(1_230_800_000, 4_102_000_000, n)
    return [str(np.datetime64(int(s), "s")).replace("T", " ") for s in seconds]


@pytest.mark.parametrize("suffix", ["", " UTC"])
def test_batch_parse_equals_one_by_one(suffix):
    texts = [t + suffix for t in dst_edge_times() + random_times()]
    batch = batch_parse(texts)
    assert batch.dtype == np.int64  # whole seconds, as one by one gives them
    np.testing.assert_array_equal(batch, [parse_pickup_datetime(t) for t in texts])


@pytest.mark.parametrize("batch", [
    ["2013-07-06T17:18:00Z"], ["2013-07-06T17:18:00-04:00"], ["2013-07-06 17:18:00 UTC", "2013-07-06 17:18:00"],
    ["2013-02-30 10:00:00"], ["1999-07-06 17:18:00"], ["2100-01-01 00:00:00", "2013-07-06 17:18:00"], ["tomorrow"],
    [17], ["2013-07-06T17:18-04"],
    ["2013"], ["2013-07"], ["2013-07-06 17"], ["2013-07-06 17:18:00.5"], ["2013-07-06 17:18:00", "2013-07-06"],
])
def test_batches_it_cannot_vouch_for_are_left_to_the_one_by_one_parser(batch):
    assert batch_parse(batch) is None


def test_a_time_without_seconds_is_accepted_like_fromisoformat():
    assert batch_parse(["2013-07-06 17:18", "2013-07-06T00:00"]).tolist() == [
        parse_pickup_datetime("2013-07-06 17:18:00"), parse_pickup_datetime("2013-07-06 00:00:00")]


@pytest.mark.parametrize("day", ["2013-07-06", "20130706", "2013-W27-6", "2013-07-06 UTC"])
def test_a_date_alone_is_refused_asking_for_the_time(day):
    with pytest.raises(RideTimeError) as refused:
        parse_pickup_datetime(day)
    suffix = " UTC" if day.endswith(" UTC") else ""  # kept in the example: the caller meant UTC
    assert str(refused.value) == (f'a date without a time: "{day}" (fares depend on the hour: '
                                  f'add it, e.g. "2013-07-06 00:00:00{suffix}")')


@pytest.mark.parametrize("midnight", ["2013-07-06 00:00:00", "2013-07-06T00:00", "2013-07-06T00",
                                      "2013-07-06 00:00 UTC", "2013-07-06T00:00:00-04:00", "2013-07-06T00:00:00Z"])
def test_a_midnight_written_out_is_priced(midnight):
    assert parse_pickup_datetime(midnight) == parse_pickup_datetime("2013-07-06 00:00:00") + {
        "2013-07-06 00:00 UTC": -4 * 3600, "2013-07-06T00:00:00Z": -4 * 3600}.get(midnight, 0)


@pytest.mark.parametrize(("text", "utc"), [
    ("2013-03-10 01:59:59", "2013-03-10T06:59:59"),  # EST, one second before the jump
    ("2013-03-10 02:30:00", "2013-03-10T07:30:00"),  # spring gap: pre-jump offset (EST), i.e. 03:30 EDT
    ("2013-03-10 03:00:00", "2013-03-10T07:00:00"),  # EDT
    ("2013-11-03 00:59:59", "2013-11-03T04:59:59"),  # EDT
    ("2013-11-03 01:30:00", "2013-11-03T05:30:00"),  # autumn overlap: first occurrence (EDT)
    ("2013-11-03 02:00:00", "2013-11-03T07:00:00"),  # EST
])
def test_dst_gap_and_overlap_resolve_to_these_instants(text, utc):
    expected = epoch(utc)
    assert parse_pickup_datetime(text) == expected
    assert batch_parse([text, text]).tolist() == [expected, expected]


def epoch(utc: str) -> int:
    return int(np.datetime64(utc, "s").astype(np.int64))


def test_the_year_range_applies_to_the_year_as_written():
    assert parse_pickup_datetime("2099-12-31 23:00:00") == epoch("2100-01-01T04:00:00")  # still 2099 in New York
    assert parse_pickup_datetime("2009-01-01T00:30:00+01:00") == epoch("2008-12-31T23:30:00")
    assert batch_parse(["2099-12-31 23:00:00"] * 2).tolist() == [epoch("2100-01-01T04:00:00")] * 2
    with pytest.raises(RideTimeError) as refused:
        parse_pickup_datetime("2100-01-01 00:00:00")
    assert str(refused.value) == 'out of range: "2100-01-01 00:00:00" (rides from 2009 to 2099 are priced)'


def test_errors_quote_the_input_and_an_example():
    with pytest.raises(RideTimeError, match='not a date and time: "soon" \\(expected e.g. "2013-07-06 17:18:00"\\)'):
        parse_pickup_datetime("soon")


@pytest.mark.parametrize(("text", "message"), [
    ("2013-07-06T17:18:00Z UTC", 'two time zones in "2013-07-06T17:18:00Z UTC"'),
    ("2013-07-06 17:18:00-04:00 UTC", 'two time zones in "2013-07-06 17:18:00-04:00 UTC"'),
    ("2008-12-31 23:59:59", 'out of range: "2008-12-31 23:59:59" (rides from 2009 to 2099 are priced)'),
])
def test_each_refusal_quotes_the_time_as_written(text, message):
    """Two time zones and years out of range, word for word (a date alone has its own test above)."""
    with pytest.raises(RideTimeError) as refused:
        parse_pickup_datetime(text)
    assert str(refused.value) == message


def test_without_an_offset_table_batches_are_left_to_the_one_by_one_parser():
    """Before the function has a model (hence its table), naive batch times are parsed one by one."""
    assert parse_pickup_datetimes(["2013-07-06 17:18:00"] * 2, None) is None
    assert parse_pickup_datetimes(["2013-07-06 17:18:00 UTC"] * 2, None).tolist() == [epoch("2013-07-06T17:18:00")] * 2
