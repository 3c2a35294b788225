"""Long trips: fares keep growing with distance out to the edge of the area, past the longest training trips."""

import numpy as np
import pandas as pd
import pytest

from taxifare.model import geometry
from taxifare.model.loading import loads
from taxifare.model.long_trips import LongTrips, cut_rides

MIDTOWN = geometry.LANDMARKS["midtown"]
DISTANCES_KM = (10.0, 20.0, 30.0, 40.0)
BEARINGS_DEG = tuple(range(0, 360, 18))
"""20 lines from Midtown, every 18 degrees: the Bronx, Westchester, Queens, the ocean, Staten Island, New Jersey."""
TIMES = ("2010-03-02T08:00:00", "2013-07-06T21:18:00", "2015-06-30T03:00:00")


@pytest.fixture(scope="module")
def model(model_path):
    return loads(open(model_path, "rb").read())


def ride_along(bearing_deg: float, distances_km, when: str = TIMES[1], passengers: int = 1) -> dict:
    """Rides from Midtown to points `distances_km` away along one compass bearing, as numpy columns."""
    distances = np.asarray(distances_km, dtype=np.float64)
    bearing = np.radians(bearing_deg)
    n = len(distances)
    return {"pickup_datetime": np.full(n, np.datetime64(when, "s")),
            "pickup_longitude": np.full(n, MIDTOWN[0]), "pickup_latitude": np.full(n, MIDTOWN[1]),
            "dropoff_longitude": MIDTOWN[0] + distances * np.sin(bearing) / geometry.KM_PER_DEGREE_LONGITUDE,
            "dropoff_latitude": MIDTOWN[1] + distances * np.cos(bearing) / geometry.KM_PER_DEGREE_LATITUDE,
            "passenger_count": np.full(n, passengers)}


def edge_km(model, bearing_deg: float) -> float:
    """How far from Midtown the line stays inside the model's area, to 100 m."""
    steps = np.arange(0.1, 80, 0.1)
    inside = model.service_area.ends_inside(ride_along(bearing_deg, steps)).all(axis=0)
    return float(steps[np.argmin(inside) - 1]) if not inside.all() else float(steps[-1])


@pytest.mark.parametrize("when", TIMES)
def test_fares_never_fall_along_a_line_out_to_the_edge_of_the_area(model, when):
    lengths = []
    for bearing in BEARINGS_DEG:
        edge = edge_km(model, bearing)
        distances = [d for d in DISTANCES_KM if d < edge] + [edge]
        fares = model.predict(ride_along(bearing, distances, when))
        assert np.all(np.diff(fares) >= 0), (bearing, dict(zip(distances, fares)))
        lengths.append(edge)
    assert min(lengths) > 15 and sum(length > 30 for length in lengths) >= 5  # the lines cross the city and beyond


@pytest.mark.parametrize("bearing", BEARINGS_DEG)
def test_past_the_reach_a_ride_costs_at_least_the_line_at_the_reach_plus_the_rate(model, bearing):
    floor = model.long_trips
    beyond = np.array([0.5, 5.0, 20.0, 60.0])
    fares = model.predict(ride_along(bearing, np.concatenate([[floor.reach_km], floor.reach_km + beyond])))
    assert np.all(fares[1:] >= fares[0] + floor.rate * beyond - 1e-9)


def test_the_long_trip_rate_is_learned_from_the_longest_trips_and_published(model, trained_model):
    _, result = trained_model
    assert 15 < model.long_trips.reach_km < 30  # all but the longest 0.5% of the shared trips
    assert 1.5 < model.long_trips.rate < 3.5  # dollars per straight-line km: the meter's rate, detours and tolls
    assert result.metadata["long_trips"]["reach_km"] == round(model.long_trips.reach_km, 2)
    assert result.metadata["long_trips"]["dollars_per_km"] == round(model.long_trips.rate, 3)


def test_a_long_ride_alone_and_in_a_batch_get_the_same_fare(model):
    rides = ride_along(234, [5.0, 25.0, 35.0, 45.0])
    batch = model.predict(rides)
    alone = [model.predict({name: values[[i]] for name, values in rides.items()})[0] for i in range(4)]
    np.testing.assert_allclose(batch, alone, rtol=0, atol=1e-9)


def test_long_rides_cost_the_same_from_lists_numpy_columns_or_a_dataframe(model):
    """FareModel takes a DataFrame or a dict of columns (numpy arrays or lists, numbers or their text): the floor
    reprices the long rides' cut copies from whichever it was given."""
    rides = ride_along(234, [5.0, 25.0, 35.0, 45.0])
    expected = model.predict(rides)
    as_lists = {name: [str(v) for v in values] if name == "pickup_datetime" else values.tolist()
                for name, values in rides.items()}
    np.testing.assert_allclose(model.predict(as_lists), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.predict(pd.DataFrame(rides)), expected, rtol=0, atol=1e-9)
    as_text = {name: [str(v) for v in values] for name, values in rides.items()}  # numbers as a CSV reader left them
    np.testing.assert_allclose(model.predict(as_text), expected, rtol=0, atol=1e-9)


def test_cut_rides_keep_each_column_as_it_came():
    """A pandas column stays one with its dtype (a zone-aware time is not turned into Python objects); lists
    become arrays; only the dropoff moves."""
    when = pd.Series(pd.to_datetime(["2013-07-06 17:18", "2013-07-06 18:00", "2014-01-01 09:00"], utc=True))
    rides = pd.DataFrame({"pickup_datetime": when, "pickup_longitude": [-73.98, -73.98, -73.9],
                          "pickup_latitude": [40.75, 40.75, 40.7], "dropoff_longitude": [-73.58, -73.78, -73.5],
                          "dropoff_latitude": [40.95, 40.85, 41.1], "passenger_count": [1, 2, 3]})
    rows = np.array([True, False, True])
    cut = cut_rides(rides, rows, np.array([0.5, 0.25]))
    assert isinstance(cut["pickup_datetime"], pd.Series) and cut["pickup_datetime"].dtype == when.dtype
    assert cut["pickup_datetime"].tolist() == [when[0], when[2]]
    np.testing.assert_allclose(cut["dropoff_longitude"], [-73.78, -73.9 + 0.4 * 0.25])
    np.testing.assert_allclose(cut["dropoff_latitude"], [40.85, 40.7 + 0.4 * 0.25])
    listed = cut_rides({name: rides[name].tolist() for name in rides.columns}, rows, np.array([0.5, 0.25]))
    assert isinstance(listed["passenger_count"], np.ndarray) and listed["passenger_count"].tolist() == [1, 3]
    assert listed["pickup_latitude"].tolist() == [40.75, 40.7]


@pytest.mark.parametrize(("change", "message"), [
    ({"column": -1}, "long_trips.column must be a feature index"),
    ({"column": 59}, "long_trips.column must be a feature index"),
    ({"column": 3.0}, "long_trips.column must be a feature index"),
    ({"reach_km": float("nan")}, "long_trips' reach and rate must be finite, non-negative floats"),
    ({"rate": float("inf")}, "long_trips' reach and rate must be finite, non-negative floats"),
    ({"rate": -0.5}, "long_trips' reach and rate must be finite, non-negative floats"),
    ({"reach_km": 30}, "long_trips' reach and rate must be finite, non-negative floats"),  # an int: not as trained
])
def test_a_malformed_floor_is_refused_naming_the_part(change, message):
    with pytest.raises(ValueError) as refused:
        LongTrips(**{"column": 5, "reach_km": 30.0, "rate": 1.5, **change}).check(n_features=59)
    assert str(refused.value) == message


@pytest.mark.parametrize("edge", [{"column": 0}, {"column": 58}, {"reach_km": 0.0}, {"rate": 0.0}])
def test_a_floor_at_the_edges_of_what_is_valid_passes_the_check(edge):
    LongTrips(**{"column": 5, "reach_km": 30.0, "rate": 1.5, **edge}).check(n_features=59)
