"""Cloud Functions (gen2) entry point: `functions-framework --target predict`.

Wiring only. The model starts loading in the background as soon as this module is imported, so
the download overlaps the remaining imports; taxifare/api.py answers the requests.
"""

import functions_framework

from taxifare.model_store import ModelStore

store = ModelStore.from_environment()
store.start_loading()

from taxifare import api  # noqa: E402  (imported after the load starts, to overlap it)


@functions_framework.http
def predict(request):
    """Every path and method: greeting, fares (GET, POST, batches, BigQuery), health, docs."""
    return api.handle(request, store)
