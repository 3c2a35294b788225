"""Synthetic rides follow the TLC fare rules they claim to follow."""

import numpy as np
import pandas as pd

from taxifare.training.cleaning import clean_rides
from taxifare.training.data import rides_from_frame
from taxifare.training.synthetic import generate_rides


def test_same_seed_same_rides_and_kaggle_schema():
    first, again = generate_rides(1000, seed=4), generate_rides(1000, seed=4)
    pd.testing.assert_frame_equal(first, again)
    assert first["pickup_datetime"].str.endswith(" UTC").all()


def test_cleaning_removes_only_the_injected_defects():
    """The same seed without defects gives the same rides: the rows that differ are the injected ones."""
    rides = rides_from_frame(generate_rides(20_000, seed=1), "synthetic").rides
    sound = rides_from_frame(generate_rides(20_000, seed=1, defect_rate=0), "synthetic").rides
    injected = (rides.drop(columns="key") != sound.drop(columns="key")).any(axis=1)
    assert 0.005 < injected.mean() < 0.02  # DEFECT_RATE, 1%
    result = clean_rides(rides)
    assert sorted(result.rides["key"]) == sorted(rides.loc[~injected, "key"])
    assert sum(result.counts.values()) == injected.sum()
    assert len(clean_rides(sound).rides) == len(sound)


def test_fares_rise_after_the_2012_rate_change_and_follow_distance():
    rides = rides_from_frame(generate_rides(50_000, seed=2, defect_rate=0), "synthetic").rides
    km = np.hypot(rides["dropoff_longitude"] - rides["pickup_longitude"], rides["dropoff_latitude"] - rides["pickup_latitude"]) * 100
    medium = rides[(km > 2) & (km < 4)]
    before = medium[medium["pickup_datetime"] < "2012-06-01"]["fare_amount"].median()
    after = medium[medium["pickup_datetime"] > "2012-10-01"]["fare_amount"].median()
    assert after > before * 1.1
    assert np.corrcoef(km, rides["fare_amount"])[0, 1] > 0.7


def test_jfk_rides_pay_the_flat_fare():
    rides = generate_rides(20_000, seed=3, defect_rate=0)
    from_jfk = rides[(rides["pickup_longitude"] - -73.7781).abs() < 0.02]
    assert from_jfk["fare_amount"].between(45, 60).mean() > 0.9
