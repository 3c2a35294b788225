"""The deployed function carries only what serving needs; layers point one way.

taxifare.model (numpy) <- taxifare.serving (HTTP) and taxifare.model <- taxifare.training.
Serving and the model layer never import scikit-learn, scipy, pandas or joblib, and serving
and training never import each other. Checked twice: statically, every import statement in the
package; and dynamically, a real function process answering every kind of request.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.gcs_emulator import EMULATOR_ENV

PACKAGE = REPO / "taxifare"
TRAINING_ONLY = {"sklearn", "scipy", "pandas", "joblib"}
ALLOWED = {
    "model": {"numpy", "google", "taxifare.model"},
    "serving": {"numpy", "google", "flask", "werkzeug", "functions_framework", "taxifare.model", "taxifare.serving"},
    "training": {"numpy", "google", "grpc", "pyarrow", "sklearn", "scipy", "pandas", "joblib", "threadpoolctl",
                 "taxifare.model", "taxifare.training"},
}
"""Besides the standard library, what each subpackage may import."""


def imports_of(path: Path) -> set[str]:
    """Every module an import statement in `path` names (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{alias.name}" if node.module == "taxifare" else node.module
                         for alias in node.names)
    return names


def allowed(module: str, layer: str) -> bool:
    if module.split(".")[0] in sys.stdlib_module_names or module == "taxifare.__version__":
        return True
    return any(module == name or module.startswith(name + ".") for name in ALLOWED[layer])


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_what_it_may(layer):
    files = sorted((PACKAGE / layer).glob("*.py"))
    assert files
    wrong = {f"{path.relative_to(REPO)}: {module}" for path in files for module in imports_of(path)
             if not allowed(module, layer)}
    assert not wrong, f"imports outside the {layer} layer's allowance: {sorted(wrong)}"


def test_main_imports_only_serving():
    assert all(allowed(module, "serving") for module in imports_of(REPO / "main.py"))


def test_requirements_txt_is_what_serving_imports():
    pinned = {line.split("==")[0].lower() for line in (REPO / "requirements.txt").read_text().splitlines()
              if line and not line.startswith("#")}
    assert pinned == {"functions-framework", "flask", "werkzeug", "numpy", "google-cloud-storage"}
    assert all("==" in line for line in (REPO / "requirements.txt").read_text().splitlines()
               if line and not line.startswith("#"))
    assert not TRAINING_ONLY & {name.replace("-", "_") for name in pinned}


SERVE_EVERYTHING = """
import json, os, sys
import functions_framework
client = functions_framework.create_app(target="predict", source="main.py").test_client()
ride = {"pickup_datetime": "2013-07-06 17:18:00", "pickup_longitude": -73.950655, "pickup_latitude": 40.783282,
        "dropoff_longitude": -73.984365, "dropoff_latitude": 40.769802, "passenger_count": 1}
statuses = {
    "GET": client.get("/predict", query_string=ride).status_code,
    "POST": client.post("/", json=ride).status_code,
    "instances": client.post("/", json={"instances": [ride, ride]}).status_code,
    "calls": client.post("/", json={"calls": [list(ride.values())]}).status_code,
    "health": client.get("/health").status_code,
    "model": client.get("/model").status_code,
    "docs": client.get("/docs").status_code,
    "openapi": client.get("/openapi.json").status_code,
}
print(json.dumps({"statuses": statuses, "loaded": sorted(m for m in %r if m in sys.modules)}))
""" % sorted(TRAINING_ONLY)


def serve_everything(env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", SERVE_EVERYTHING], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={**__import__("os").environ, **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_a_function_process_serves_every_request_without_training_libraries(model_path):
    answer = serve_everything({"MODEL_URI": model_path})
    assert set(answer["statuses"].values()) == {200}, answer
    assert answer["loaded"] == []


def test_a_gcs_model_brings_no_training_library_either(gcs, model_path):
    gcs.create_bucket("layers")
    for name in ("model.joblib", "model.json"):
        gcs.upload(f"gs://layers/m/{name}", (Path(model_path).parent / name).read_bytes())
    answer = serve_everything({"MODEL_URI": "gs://layers/m/model.joblib", EMULATOR_ENV: gcs.url})
    assert set(answer["statuses"].values()) == {200}, answer
    assert answer["loaded"] == []
