"""A single ride is priced without letting go of the GIL.

functions-framework serves with gunicorn's threaded worker: whenever a request's thread releases
the GIL (numpy's take() and searchsorted() do, on any size), a sibling request's thread can keep it
for up to the 5 ms switch interval.
"""

import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from taxifare.model import loading
from taxifare.model.loading import MODEL_FILE
from taxifare.model.sorted_lookup import position_right
from taxifare.serving.validation import validate_records

RIDE = {"pickup_datetime": "2013-07-06 17:18:00", "pickup_longitude": "-73.950655",
        "pickup_latitude": "40.783282", "dropoff_longitude": "-73.984365", "dropoff_latitude": "40.769802",
        "passenger_count": "1"}


def gil_handoffs(work: Callable[[], object], seconds: float = 0.3) -> int:
    """Run `work` again and again for `seconds`; how often a waiting thread got the GIL meanwhile.

    The waiting thread asks for the GIL again as soon as it has it; with a 10 s switch interval it
    can only get it when `work` lets go of it. A release lasts microseconds and the waiting
    thread does not win every one, so `work` runs long enough to let many releases show.
    """
    interval = sys.getswitchinterval()
    woken, stop = [0], threading.Event()

    def waiter() -> None:
        while not stop.is_set():
            time.sleep(0)
            woken[0] += 1

    sys.setswitchinterval(10.0)
    thread = threading.Thread(target=waiter, daemon=True)
    try:
        thread.start()
        time.sleep(0.01)
        before, deadline = woken[0], time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            work()
        return woken[0] - before
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


@pytest.fixture(scope="module")
def model(trained_model):
    out, _ = trained_model
    return loading.loads((out / MODEL_FILE).read_bytes())


def test_the_detector_sees_a_call_that_releases_the_gil():
    edges, value = np.arange(10.0), np.array([3.5])
    assert gil_handoffs(lambda: np.searchsorted(edges, value)) > 0


def test_one_ride_is_validated_and_priced_with_its_range_without_releasing_the_gil(model):
    coverage = model.range_coverages[0]

    def one_ride() -> None:
        columns = validate_records([RIDE])
        model.predict(columns)
        model.predict_range(columns, coverage)

    assert gil_handoffs(one_ride) == 0


@pytest.mark.parametrize("edges", [np.array([0.1]), np.array([1.0, 2.0, 2.0, 3.0]), np.linspace(-3, 3, 50)])
@pytest.mark.parametrize("n", [1, 2, 9, 1000])
def test_position_right_is_searchsorted_right_on_numbers(edges, n):
    rng = np.random.default_rng(n)
    values = rng.normal(scale=4, size=n)
    values[::3] = edges[rng.integers(0, len(edges), len(values[::3]))]  # ties: right of equal edges
    values[1:2] = np.nan  # after every edge, as searchsorted sorts NaN
    np.testing.assert_array_equal(position_right(edges, values), np.searchsorted(edges, values, side="right"))
    pairs = np.stack([values, values[::-1]])  # a ride's two ends at once: any shape, as searchsorted
    np.testing.assert_array_equal(position_right(edges, pairs), np.searchsorted(edges, pairs, side="right"))


@pytest.mark.parametrize("n", [1, 2, 1000])
def test_position_right_is_searchsorted_right_on_instants(n):
    edges = np.arange(0, 2600, 10)  # like a time zone's offset table: int64 seconds
    values = np.random.default_rng(n).integers(-50, 2700, n)
    np.testing.assert_array_equal(position_right(edges, values), np.searchsorted(edges, values, side="right"))
