"""Cloud Functions (gen2) entry point: `functions-framework --target predict`.

Wiring only. The model starts loading in the background as soon as this module is imported, so
the load overlaps the rest of the server's start-up; taxifare/serving/api.py answers the requests.
"""

import flask
import functions_framework

from taxifare.serving import memory
from taxifare.serving.model_store import ModelStore

memory.pin_mmap_threshold()  # before gunicorn forks its worker, which inherits the setting
store = ModelStore.from_environment()
store.start_loading()

from taxifare.serving import api  # noqa: E402  (imported after the load starts, to overlap it)


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    """Every path and method: greeting, fares (GET, POST, batches, BigQuery), health, docs."""
    return api.handle(request, store)


@functions_framework.errorhandler(404)
def unroutable(error: Exception) -> flask.Response:
    """Paths Flask's router cannot match (a newline in the path) get our JSON 404, not Flask's HTML page."""
    return api.handle(flask.request, store)
