"""Ride features: distances that match the map, local time that matches New York's clocks."""

import time
import warnings
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from taxifare.model import geometry, local_time
from taxifare.model.features import RideFeatureMap, trip_km, utc_seconds
from taxifare.model.schema import INPUT_COLUMNS
from taxifare.training.transformers import RideFeatures

JFK = geometry.LANDMARKS["jfk"]
TIMES_SQUARE = geometry.LANDMARKS["midtown"]


def rides(*times: str, lon1=-73.95, lat1=40.78, lon2=-73.98, lat2=40.77) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({
        "pickup_datetime": pd.to_datetime(list(times), utc=True),
        "pickup_longitude": [lon1] * n, "pickup_latitude": [lat1] * n,
        "dropoff_longitude": [lon2] * n, "dropoff_latitude": [lat2] * n,
        "passenger_count": [1] * n,
    })


def features_by_name(frame) -> dict[str, np.ndarray]:
    transformer = RideFeatures().fit(frame)
    return dict(zip(transformer.get_feature_names_out(), transformer.transform(frame).T))


def trip_features(lon1, lat1, lon2, lat2) -> dict[str, float]:
    return {name: values[0] for name, values in
            features_by_name(rides("2013-07-06 21:18:00", lon1=lon1, lat1=lat1, lon2=lon2, lat2=lat2)).items()}


def test_jfk_to_times_square_is_about_22_km_as_the_crow_flies():
    assert trip_features(*JFK, *TIMES_SQUARE)["trip_km"] == pytest.approx(21.7, abs=0.3)  # great circle: 21.7 km


def test_one_degree_of_latitude_is_111_km():
    assert trip_features(-73.98, 40.2, -73.98, 41.2)["trip_km"] == pytest.approx(111.2, abs=0.1)


def test_the_street_grid_along_an_avenue_equals_the_straight_line():
    theta = np.radians(geometry.MANHATTAN_GRID_ROTATION_DEG)
    north_km, east_km = 2 * np.cos(theta), 2 * np.sin(theta)
    lon2 = TIMES_SQUARE[0] + east_km / geometry.KM_PER_DEGREE_LONGITUDE
    lat2 = TIMES_SQUARE[1] + north_km / geometry.KM_PER_DEGREE_LATITUDE
    ride = trip_features(*TIMES_SQUARE, lon2, lat2)
    assert ride["grid_km"] == pytest.approx(2.0) and ride["trip_km"] == pytest.approx(2.0)


def test_the_street_grid_across_the_avenues_is_longer_than_the_straight_line():
    ride = trip_features(-73.99, 40.75, -73.95, 40.75)
    assert ride["grid_km"] > 1.2 * ride["trip_km"] and ride["grid_ratio"] > 1.2
    assert geometry.street_grid_km(-73.99, 40.75, -73.95, 40.75) == pytest.approx(ride["grid_km"])


def test_the_street_grid_of_many_rides_is_each_rides_own():
    """Training's synthetic rides ask for a whole array at once: each ride gets its own distance, not a sum."""
    lon1, lat1 = np.array([-73.99, -73.98, -74.0]), np.array([40.75, 40.76, 40.72])
    lon2, lat2 = np.array([-73.95, -73.98, -73.97]), np.array([40.75, 40.80, 40.78])
    alone = [geometry.street_grid_km(*ride) for ride in zip(lon1, lat1, lon2, lat2, strict=True)]
    np.testing.assert_allclose(geometry.street_grid_km(lon1, lat1, lon2, lat2), alone, rtol=1e-12)


def test_axes_are_unit_vectors_at_compass_bearings():
    """Bearing 0 is north, 90 east, 180 south; 29 is an avenue: its east part is sin(29 deg), its north part cos."""
    avenue = np.radians(geometry.MANHATTAN_GRID_ROTATION_DEG)
    np.testing.assert_allclose(geometry.axes((0.0, 90.0, 180.0, geometry.MANHATTAN_GRID_ROTATION_DEG)),
                               [[0, 1, 0, np.sin(avenue)], [1, 0, -1, np.cos(avenue)]], atol=1e-12)


@pytest.mark.parametrize(("point", "new_jersey"), [
    ((-74.025, 40.70), 0), ((-74.02500001, 40.70), 1),  # on the longitude: not yet west of it
    ((-74.10, 40.64), 0), ((-74.10, 40.64000001), 1),  # on the latitude: not yet north of it
])
def test_new_jersey_starts_strictly_west_and_north_of_its_corner(point, new_jersey):
    """The corner's own lines belong to the city side (module docstring of NEW_JERSEY: west of, north of)."""
    assert trip_features(*point, *TIMES_SQUARE)["pickup_in_new_jersey"] == new_jersey


def test_the_first_features_are_the_ride_as_given_then_its_distances():
    """Coordinates and passengers pass through as float64; grid_ratio is the street-grid distance over the
    straight one (plus 50 m, so a ride that goes nowhere has a finite ratio)."""
    ride = trip_features(-73.78, 40.64, -74.17, 40.69)  # JFK to Newark airport
    assert [ride[name] for name in ("pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude",
                                    "passenger_count")] == [-73.78, 40.64, -74.17, 40.69, 1.0]
    assert ride["grid_ratio"] == pytest.approx(ride["grid_km"] / (ride["trip_km"] + 0.05), rel=1e-12)
    assert 1.0 < ride["grid_ratio"] < 1.5  # a grid route is longer than the straight line, by at most sqrt(2)


MAP_FLAWS = {  # a change to the default map -> its refusal, word for word
    "instants int32": ({"offset_instants": np.zeros(3, dtype=np.int32)}, "offset_instants must be a 1-d int64 array"),
    "offsets float": ({"offsets": np.zeros(3)}, "offsets must be a 1-d int64 array"),
    "points 1-d": ({"landmark_points": np.zeros(3)}, "landmark_points must be a 2-d float64 array"),
    "table lengths": ({"offsets": np.zeros(2, dtype=np.int64)}, "offset table: instants and offsets differ in length"),
    "empty table": ({"offsets": np.zeros(0, dtype=np.int64), "offset_instants": np.zeros(0, dtype=np.int64)},
                    "offset table: instants and offsets differ in length"),
    "names a list": ({"landmark_names": ["jfk"]}, "landmark_names must be a tuple of strings"),
    "a name not text": ({"landmark_names": ("jfk", 2)}, "landmark_names must be a tuple of strings"),
    "points per name": ({"landmark_points": np.zeros((1, 2))},
                        "landmark_points must hold one (longitude, latitude) per landmark"),
}


@pytest.mark.parametrize("flaw", MAP_FLAWS)
def test_a_malformed_feature_map_is_refused_saying_what_is_wrong(flaw):
    change, message = MAP_FLAWS[flaw]
    base = RideFeatureMap.build(landmarks={"jfk": (-73.78, 40.64), "ewr": (-74.17, 40.69)})
    fields = {"offset_instants": np.zeros(3, dtype=np.int64), "offsets": np.zeros(3, dtype=np.int64),
              "landmark_names": base.landmark_names, "landmark_points": base.landmark_points, **change}
    with pytest.raises(ValueError) as refused:
        RideFeatureMap(**fields).check()
    assert str(refused.value) == message


def test_landmarks_in_whole_degrees_make_a_valid_map():
    """Landmarks given as ints (a caller's own places) are kept as float64 coordinates: the map passes its check."""
    features = RideFeatureMap.build(landmarks={"north": (-74, 41), "south": (-73, 40)})
    features.check()
    assert features.landmark_points.tolist() == [[-74.0, 41.0], [-73.0, 40.0]]


def test_bearing_points_north_and_east():
    assert trip_features(-74.0, 40.7, -74.0, 40.8)["bearing_deg"] == pytest.approx(0.0)
    assert trip_features(-74.0, 40.7, -73.9, 40.7)["bearing_deg"] == pytest.approx(90.0)


@pytest.mark.parametrize(("place", "point", "manhattan", "new_jersey"), [
    ("the Battery", (-74.017, 40.703), 1, 0), ("Inwood", (-73.92, 40.87), 1, 0), ("East Harlem", (-73.94, 40.795), 1, 0),
    ("Jersey City", (-74.033, 40.716), 0, 1), ("Hoboken", (-74.03, 40.745), 0, 1), ("Newark airport", (-74.1745, 40.6895), 0, 1),
    ("Long Island City", (-73.95, 40.745), 0, 0), ("Brooklyn Heights", (-73.995, 40.696), 0, 0), ("JFK", JFK, 0, 0),
])
def test_places_are_told_apart(place, point, manhattan, new_jersey):
    ride = trip_features(*point, *TIMES_SQUARE)
    assert (ride["pickup_in_manhattan"], ride["pickup_in_new_jersey"]) == (manhattan, new_jersey), place
    assert ride["crosses_hudson"] == new_jersey and ride["leaves_manhattan"] == 1 - manhattan


@pytest.mark.parametrize(
    ("utc", "local_hour", "local_minute"),
    [
        ("2013-03-10 06:59:59", 1, 59),  # 01:59:59 EST, one second before spring forward
        ("2013-03-10 07:00:00", 3, 0),  # 03:00:00 EDT: 02:xx never happens
        ("2013-11-03 05:59:59", 1, 59),  # 01:59:59 EDT, first pass through 01:xx
        ("2013-11-03 06:00:00", 1, 0),  # 01:00:00 EST, clocks went back
        ("2013-07-06 21:18:00", 17, 18),  # summer: UTC-4
        ("2013-01-06 22:18:00", 17, 18),  # winter: UTC-5
    ],
)
def test_hour_is_new_york_local_across_dst_changes(utc, local_hour, local_minute):
    hour = features_by_name(rides(utc))["hour"][0]
    assert hour == pytest.approx(local_hour + local_minute / 60, abs=1 / 60)


@pytest.mark.parametrize(("lon1", "lat1", "lon2", "lat2"), [(-73.95, 40.78, -73.98, 40.77),
                                                        (-73.78, 40.64, -74.17, 40.69), (-74.0, 40.7, -74.0, 40.7)])
def test_the_midpoints_frames_are_halfway_between_the_ends(lon1, lat1, lon2, lat2):
    """Each frame is a rotation, which is linear: the route's midpoint sits halfway between the ends in every frame."""
    features = trip_features(lon1, lat1, lon2, lat2)
    angles = [name.removeprefix("midpoint_frame_") for name in features if name.startswith("midpoint_frame_")]
    assert len(angles) == 10
    for angle in angles:
        halfway = (features[f"pickup_frame_{angle}"] + features[f"dropoff_frame_{angle}"]) / 2
        assert features[f"midpoint_frame_{angle}"] == pytest.approx(halfway, abs=1e-9), angle


def test_every_kind_of_time_column_gives_the_same_utc_seconds_without_a_warning():
    """numpy datetime64 of any unit, pandas naive (UTC, the data's convention) or zone-aware, and Kaggle strings:
    the same int64 epoch seconds, read as datetimes (no string round trip, which numpy warns about for zones)."""
    expected = np.array([1373131080, 1388534400], dtype=np.int64)  # 2013-07-06 17:18:00 UTC, 2014-01-01 00:00:00 UTC
    naive = pd.Series(pd.to_datetime(["2013-07-06 17:18:00", "2014-01-01 00:00:00"]))
    columns = {
        "numpy seconds": naive.to_numpy(dtype="datetime64[s]"),
        "numpy nanoseconds": naive.to_numpy(dtype="datetime64[ns]"),
        "pandas naive": naive,
        "pandas UTC": naive.dt.tz_localize("UTC"),
        "pandas New York": naive.dt.tz_localize("UTC").dt.tz_convert("America/New_York"),
        "Kaggle strings": ["2013-07-06 17:18:00 UTC", "2014-01-01 00:00:00 UTC"],
        "ISO strings": np.array(["2013-07-06T17:18:00", "2014-01-01T00:00:00"]),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind, column in columns.items():
            seconds = utc_seconds(column)
            assert seconds.dtype == np.int64 and seconds.tolist() == expected.tolist(), kind


def test_a_time_column_that_is_not_times_names_the_column_and_the_format():
    with pytest.raises(ValueError) as refused:
        utc_seconds(["2013-07-06 17:18:00 UTC", "soon"])
    assert str(refused.value).startswith(
        "pickup_datetime: expected UTC times like '2013-07-06 21:18:00 UTC' (Error parsing datetime string \"soon\"")


def test_local_calendar_matches_pandas_on_random_instants():
    rng = np.random.default_rng(1)
    seconds = rng.integers(0, 4_000_000_000, 5000)
    instants, offsets = local_time.utc_offset_table("America/New_York")
    clock = local_time.civil_time(local_time.to_local_seconds(seconds, instants, offsets))
    expected = pd.to_datetime(seconds, unit="s", utc=True).tz_convert("America/New_York")
    np.testing.assert_array_equal(clock.year, expected.year)
    np.testing.assert_array_equal(clock.month, expected.month)
    np.testing.assert_array_equal(clock.weekday, expected.day_of_week)
    np.testing.assert_array_equal(clock.seconds_of_day, expected.hour * 3600 + expected.minute * 60 + expected.second)


def test_the_offset_table_starts_on_new_year_utc_and_changes_at_the_exact_second(monkeypatch):
    """New York's clocks change at 2:00 local (07:00 UTC in March, 06:00 in November), whatever the machine's zone."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # a naive datetime would be read in this zone
    time.tzset()
    try:
        instants, offsets = local_time.utc_offset_table("America/New_York", (2012, 2013))
    finally:
        monkeypatch.undo()
        time.tzset()
    utc = ["2012-01-01 00:00", "2012-03-11 07:00", "2012-11-04 06:00", "2013-03-10 07:00", "2013-11-03 06:00"]
    expected = [int(datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp()) for t in utc]
    assert instants.dtype == offsets.dtype == np.int64
    assert instants.tolist() == expected and offsets.tolist() == [-5 * 3600, -4 * 3600, -5 * 3600, -4 * 3600, -5 * 3600]


@pytest.mark.parametrize("zone", ["America/New_York", "Australia/Lord_Howe", "America/St_Johns", "Asia/Tehran",
                                  "America/Santiago"])
def test_every_offset_change_in_the_table_is_at_its_exact_second(zone):
    """Each entry starts where the zone's offset really changes, to the second, and holds the offset from then on:
    zones whose changes fall at other times of day than New York's (half-hour shifts, midnight changes) included."""
    instants, offsets = local_time.utc_offset_table(zone)
    tz = ZoneInfo(zone)

    def offset_at(t: int) -> int:
        return int(datetime.fromtimestamp(t, tz).utcoffset().total_seconds())

    assert len(instants) > 10
    for instant, offset, before in zip(instants[1:].tolist(), offsets[1:].tolist(), offsets[:-1].tolist(), strict=True):
        assert (offset_at(instant - 1), offset_at(instant)) == (before, offset), (zone, instant)


def test_rate_change_flag_switches_at_new_york_midnight_on_2012_09_04():
    flags = features_by_name(rides("2012-09-04 03:59:59", "2012-09-04 04:00:00"))["after_rate_change"]
    assert flags.tolist() == [0.0, 1.0]


def test_year_and_month_are_local():
    named = features_by_name(rides("2013-01-01 03:00:00"))  # 22:00 on New Year's Eve in New York
    assert (named["year"][0], named["month"][0]) == (2012, 12)


def test_dict_of_arrays_gives_the_same_features_as_a_dataframe():
    frame = rides("2013-07-06 21:18:00", "2014-12-31 23:59:00")
    columns = {name: frame[name].to_numpy() for name in INPUT_COLUMNS}
    columns["pickup_datetime"] = frame["pickup_datetime"].to_numpy(dtype="datetime64[s]")
    transformer = RideFeatures().fit(frame)
    np.testing.assert_array_equal(transformer.transform(frame), transformer.transform(columns))


def test_utc_seconds_reads_zoned_strings_and_aware_datetimes():
    expected = 1373145480  # 2013-07-06 21:18:00 UTC
    assert utc_seconds(np.array(["2013-07-06 21:18:00 UTC"], dtype=object))[0] == expected
    assert utc_seconds(pd.Series(pd.to_datetime(["2013-07-06 17:18:00"]).tz_localize("America/New_York")))[0] == expected
    assert utc_seconds(np.array(["2013-07-06T21:18:00"], dtype="datetime64[s]"))[0] == expected


def test_follows_the_estimator_api():
    transformer = RideFeatures(timezone="America/Chicago")
    assert clone(transformer).get_params() == {"timezone": "America/Chicago", "landmarks": None}
    frame = rides("2013-07-06 21:18:00")
    assert transformer.fit(frame) is transformer
    assert transformer.transform(frame).shape == (1, len(transformer.get_feature_names_out()))
    chicago_hour = features_by_name(frame)["hour"][0] - 1
    assert dict(zip(transformer.get_feature_names_out(), transformer.transform(frame)[0]))["hour"] == pytest.approx(chicago_hour)


def test_custom_landmarks_name_their_features():
    transformer = RideFeatures(landmarks={"home": (-73.95, 40.78)}).fit(None)
    names = list(transformer.get_feature_names_out())
    assert "pickup_to_home_km" in names and "pickup_to_jfk_km" not in names
    assert dict(zip(names, transformer.transform(rides("2013-07-06 21:18:00"))[0]))["pickup_to_home_km"] == pytest.approx(0.0)



def test_trip_km_alone_equals_the_feature(valid_rides):
    transformer = RideFeatures().fit(None)
    column = list(transformer.get_feature_names_out()).index("trip_km")
    np.testing.assert_array_equal(trip_km(valid_rides), transformer.transform(valid_rides)[:, column])
