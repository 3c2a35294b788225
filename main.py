"""Cloud Functions (gen2) entry point: `functions-framework --target predict`.

Wiring only. The model starts loading in the background as soon as this module is imported, so
the download overlaps the remaining imports; taxifare/api.py answers the requests.
"""

import os

# The server's threads are the parallelism: OpenMP threads inside one batch prediction would only
# fight them (and spin: 10x slower on a busy core). Set before scikit-learn loads its OpenMP runtime.
OPENMP_THREADS_ENV = "OMP_NUM_THREADS"
os.environ.setdefault(OPENMP_THREADS_ENV, "1")

import flask  # noqa: E402
import functions_framework  # noqa: E402

from taxifare.model_store import ModelStore  # noqa: E402

store = ModelStore.from_environment()
store.start_loading()

from taxifare import api  # noqa: E402  (imported after the load starts, to overlap it)


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    """Every path and method: greeting, fares (GET, POST, batches, BigQuery), health, docs."""
    return api.handle(request, store)
