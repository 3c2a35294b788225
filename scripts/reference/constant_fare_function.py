"""A second floor for scripts/benchmark_serving.py: our whole request path with a model that costs nothing.

Routing, query parsing, field validation, the JSON answer and the log line run exactly as in main.py;
only the model is replaced by a constant fare (no features, no trees). So, in one run:
function - this = what the model costs per request; this - the empty handler = what our HTTP path costs.
"""

import functions_framework
import numpy as np

from taxifare.model import local_time
from taxifare.model.schema import LATITUDE_RANGE, LONGITUDE_RANGE, PICKUP_LONGITUDE, TIMEZONE
from taxifare.model.service_area import ServiceArea
from taxifare.serving import api
from taxifare.serving.model_store import LoadedModel

CONSTANT_FARE = 12.05
WIDTH, HEIGHT = LONGITUDE_RANGE[1] - LONGITUDE_RANGE[0], LATITUDE_RANGE[1] - LATITUDE_RANGE[0]


class NewYorkTime:
    """Stands in for the feature map where api uses it: New York's UTC-offset table, for a batch's naive times."""

    offset_table = local_time.utc_offset_table(TIMEZONE)


class ConstantFare:
    """Stands in for FareModel where api uses it: the same fare for every ride, no range, the whole box served.

    Its service area is one cell, the service box, inside a ring of cells outside: the area check costs
    what it costs with a trained model's grid.
    """

    range_coverages: tuple[int, ...] = ()
    features = NewYorkTime()
    service_area = ServiceArea(LONGITUDE_RANGE[0] - WIDTH, LATITUDE_RANGE[0] - HEIGHT, WIDTH, HEIGHT,
                               np.array([[False] * 3, [False, True, False], [False] * 3]))

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        return np.full(len(columns[PICKUP_LONGITUDE]), CONSTANT_FARE)


class ConstantStore:
    """Stands in for ModelStore where api.handle uses it: always loaded, never fails."""

    loaded = LoadedModel(ConstantFare(), {"model_version": "constant", "sha256": "none"})

    def get(self) -> LoadedModel:
        return self.loaded


store = ConstantStore()


@functions_framework.http
def predict(request):
    return api.handle(request, store)
