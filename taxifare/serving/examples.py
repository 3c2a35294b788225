"""The example ride and the answers the README, /openapi.json and /docs show: one home for all three.

The answers are what `make run`'s model (trained on both shared files, seed 0) gives for these rides;
tests/test_examples.py fails when a retrained model or a new recipe moves them, and prints the values
to put here.
"""

from taxifare.model.schema import INPUT_COLUMNS
from taxifare.serving.ride_time import EXAMPLE

EXAMPLE_RIDE = {
    "pickup_datetime": EXAMPLE, "pickup_longitude": -73.950655, "pickup_latitude": 40.783282,
    "dropoff_longitude": -73.984365, "dropoff_latitude": 40.769802, "passenger_count": 1,
}
"""Upper East Side to Midtown West on a Saturday afternoon."""
AIRPORT_RIDE = {**EXAMPLE_RIDE, "pickup_longitude": -73.7781, "pickup_latitude": 40.6413, "passenger_count": 2}
"""JFK to Midtown West, two passengers."""
EXAMPLE_FARE = 12.47
EXAMPLE_RANGE = {"coverage": 80, "low": 10.15, "high": 13.31}
AIRPORT_FARE = 58.3


def as_call(ride: dict) -> list:
    """A ride as one BigQuery remote-function call: its six values in the function's argument order."""
    return [ride[name] for name in INPUT_COLUMNS]
