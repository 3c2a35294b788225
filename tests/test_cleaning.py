"""Cleaning rules on real rows from the shared sample that carry the documented defects."""

import numpy as np
import pandas as pd
import pytest

from taxifare.model.schema import COORDINATE_COLUMNS, FARE, LATITUDE_RANGE, LONGITUDE_RANGE, PASSENGER_COUNT
from taxifare.training.cleaning import RULES, SWAPPED_COORDINATES, clean_rides


@pytest.fixture(scope="module")
def train_rides(shared_csvs):
    from taxifare.training.data import read_rides

    return read_rides(shared_csvs[:1]).rides


@pytest.fixture(scope="module")
def cleaned(train_rides):
    return clean_rides(train_rides)


def test_counts_add_up_to_the_rows_removed(cleaned):
    dropped = sum(n for name, n in cleaned.counts.items() if name != SWAPPED_COORDINATES)
    assert cleaned.rows_in - len(cleaned.rides) == dropped
    assert set(cleaned.counts) == {SWAPPED_COORDINATES, *(rule.name for rule in RULES)}


def test_documented_defects_of_the_real_sample_are_counted(cleaned):
    # shared/data/README.md: 196 rows with a 0 coordinate, 7 swapped, 2 negative fares and one of $0.01.
    assert cleaned.counts["zero_coordinates"] == 196
    assert cleaned.counts[SWAPPED_COORDINATES] == 7
    assert cleaned.counts["fare_out_of_range"] == 3
    assert cleaned.counts["placeholder_coordinates"] == 10  # grep -c 41.366138 train_10k.csv
    assert cleaned.counts["fare_below_the_meter"] == 32


def test_no_defect_survives(cleaned):
    rides = cleaned.rides
    assert rides[FARE].min() >= 2.5
    assert (rides[list(COORDINATE_COLUMNS)] != 0).all().all()
    for lon, lat in (("pickup_longitude", "pickup_latitude"), ("dropoff_longitude", "dropoff_latitude")):
        assert rides[lat].between(*LATITUDE_RANGE).all() and rides[lon].between(*LONGITUDE_RANGE).all()
    assert rides[PASSENGER_COUNT].between(1, 8).all()
    assert rides[PASSENGER_COUNT].dtype == np.int64
    assert not rides.isna().any().any()


def _rows(rides: pd.DataFrame, mask) -> pd.DataFrame:
    picked = rides[mask]
    assert len(picked), "the real sample should contain this defect"
    return picked


@pytest.mark.parametrize(
    ("rule", "select"),
    [
        ("fare_out_of_range", lambda r: r[FARE] <= 0.01),
        ("zero_coordinates", lambda r: r["pickup_longitude"] == 0),
        ("placeholder_coordinates", lambda r: r["dropoff_latitude"] == 41.366138),
        ("outside_service_area", lambda r: r["pickup_latitude"] > 400),  # the 401.08 latitude
        ("passenger_count_out_of_range", lambda r: (r[PASSENGER_COUNT] == 0) & (r["pickup_longitude"] != 0)),
        ("fare_below_the_meter", lambda r: r["key"] == "2014-02-01 22:03:00.000000114"),  # JFK to Midtown for $5.50
    ],
)
def test_each_rule_drops_the_real_rows_that_have_its_defect(train_rides, rule, select):
    defective = _rows(train_rides, select(train_rides))
    result = clean_rides(defective)
    assert len(result.rides) == 0
    assert result.counts == {**dict.fromkeys(result.counts, 0), rule: len(defective)}  # each row under this rule


def test_rides_that_go_nowhere_stay_valid(train_rides):
    """A rider can send pickup == dropoff (round trips, frozen GPS): the short-ride model prices them."""
    nowhere = _rows(train_rides, (train_rides["pickup_longitude"] == train_rides["dropoff_longitude"])
                    & (train_rides["pickup_latitude"] == train_rides["dropoff_latitude"])
                    & (train_rides["pickup_longitude"] != 0) & (train_rides[FARE] > 2.5))
    assert len(clean_rides(nowhere).rides) >= len(nowhere) - 5


def test_swapped_points_are_repaired_not_dropped(train_rides):
    swapped = _rows(train_rides, train_rides["pickup_latitude"].between(*LONGITUDE_RANGE))
    result = clean_rides(swapped)
    assert result.counts[SWAPPED_COORDINATES] == len(swapped)
    assert result.rides["pickup_latitude"].between(*LATITUDE_RANGE).all()
    np.testing.assert_array_equal(result.rides["pickup_latitude"], swapped["pickup_longitude"])


def test_valid_rides_pass_untouched(valid_rides):
    again = clean_rides(valid_rides)
    assert len(again.rides) == len(valid_rides)
    assert sum(again.counts.values()) == 0


def test_unparseable_values_are_missing():
    frame = pd.DataFrame({"key": ["k"], FARE: [10.0], "pickup_datetime": [pd.NaT],
                          "pickup_longitude": [-73.9], "pickup_latitude": [40.7],
                          "dropoff_longitude": [-73.95], "dropoff_latitude": [40.75], PASSENGER_COUNT: [1.0]})
    assert clean_rides(frame).counts["missing_values"] == 1


def test_fractional_passenger_counts_are_dropped(valid_rides):
    odd = valid_rides.head(3).assign(**{PASSENGER_COUNT: 1.5})
    assert clean_rides(odd).counts["passenger_count_out_of_range"] == 3
