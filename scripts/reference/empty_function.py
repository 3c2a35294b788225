"""The floor for scripts/benchmark_serving.py: a functions-framework handler that does no work.

Same server, same answer shape as the real function ({"fare": ...}), no parsing and no model:
whatever the real function costs above this is ours.
"""

import functions_framework


@functions_framework.http
def predict(request):
    return {"fare": 12.05}
