"""Pickup-time parsing: one at a time and vectorised batches agree, DST edges included."""

import numpy as np
import pytest

from taxifare.ride_time import RideTimeError, parse_pickup_datetime, parse_pickup_datetimes


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
    np.testing.assert_array_equal(parse_pickup_datetimes(texts), [parse_pickup_datetime(t) for t in texts])


@pytest.mark.parametrize("batch", [
    ["2013-07-06T17:18:00Z"], ["2013-07-06T17:18:00-04:00"], ["2013-07-06 17:18:00 UTC", "2013-07-06 17:18:00"],
    ["2013-02-30 10:00:00"], ["1999-07-06 17:18:00"], ["tomorrow"], [17], ["2013-07-06T17:18-04"],
])
def test_batches_it_cannot_vouch_for_are_left_to_the_one_by_one_parser(batch):
    assert parse_pickup_datetimes(batch) is None


def test_partial_times_are_accepted_like_fromisoformat():
    assert parse_pickup_datetimes(["2013-07-06 17:18", "2013-07-06"]).tolist() == [
        parse_pickup_datetime("2013-07-06 17:18"), parse_pickup_datetime("2013-07-06")]


def test_errors_quote_the_input_and_an_example():
    with pytest.raises(RideTimeError, match="not a date and time: 'soon' \\(expected e.g. '2013-07-06 17:18:00'\\)"):
        parse_pickup_datetime("soon")
