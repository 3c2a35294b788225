"""A second floor for scripts/benchmark_serving.py: our whole request path with a model that costs nothing.

Routing, query parsing, field validation, the JSON answer and the log line run exactly as in main.py;
only the model is replaced by a constant fare (no features, no trees). So, in one run:
function - this = what the model costs per request; this - the empty handler = what our HTTP path costs.
"""

import functions_framework
import numpy as np

from taxifare.model.schema import PICKUP_LONGITUDE
from taxifare.serving import api
from taxifare.serving.model_store import LoadedModel

CONSTANT_FARE = 12.05


class ConstantFare:
    """Stands in for FareModel where api.price uses it: the same fare for every ride, no range."""

    range_coverages: tuple[int, ...] = ()

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
