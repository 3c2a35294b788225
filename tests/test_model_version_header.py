"""X-Model-Version: every answer of an instance with a model says which model answered, in every shape."""

from urllib.parse import urlencode

import pytest

from taxifare.serving.openapi import openapi_spec
from taxifare.serving.request_parsing import MAX_BODY_BYTES, MAX_QUERY_BYTES, MAX_ROWS
from taxifare.serving.responses import MODEL_VERSION_HEADER
from tests.conftest import make_client
from tests.test_api import RIDE

CALL = [RIDE[name] for name in ("pickup_datetime", "pickup_longitude", "pickup_latitude", "dropoff_longitude",
                                "dropoff_latitude", "passenger_count")]
BIGQUERY = {"requestId": "r1", "caller": "//bigquery.googleapis.com/projects/p/jobs/j", "sessionUser": "a@b.c",
            "userDefinedContext": {}, "calls": [CALL, CALL]}

# (id, method, path, keyword arguments of the test client's call, expected status, top-level key of the answer)
PREDICTIONS = [
    ("GET /predict", "get", "/predict?" + urlencode(RIDE), {}, "fare"),
    ("GET / with a query", "get", "/?" + urlencode(RIDE), {}, "fare"),
    ("GET with range", "get", "/predict?" + urlencode({**RIDE, "range": 80}), {}, "range"),
    ("HEAD /predict", "head", "/predict?" + urlencode(RIDE), {}, None),
    ("POST one ride", "post", "/", {"json": RIDE}, "fare"),
    ("POST one ride with range", "post", "/", {"json": {**RIDE, "range": 80}}, "range"),
    ("POST a form", "post", "/predict", {"data": RIDE}, "fare"),
    ("POST instances", "post", "/", {"json": {"instances": [RIDE, RIDE]}}, "predictions"),
    ("POST instances with range", "post", "/", {"json": {"instances": [RIDE], "parameters": {"range": 80}}},
     "predictions"),
    ("KServe path", "post", "/v1/models/taxifare:predict", {"json": {"instances": [RIDE]}}, "predictions"),
    ("KServe path with range", "post", "/v1/models/taxifare:predict",
     {"json": {"instances": [RIDE], "parameters": {"range": 90}}}, "predictions"),
    ("BigQuery calls", "post", "/", {"json": BIGQUERY}, "replies"),
    ("BigQuery calls with range", "post", "/", {"json": {**BIGQUERY, "userDefinedContext": {"range": "80"}}},
     "replies"),
]
ERRORS = [
    ("invalid field", "get", "/predict?" + urlencode({**RIDE, "pickup_latitude": "abc"}), {}, 400),
    ("range not offered", "get", "/predict?" + urlencode({**RIDE, "range": 33}), {}, 400),
    ("invalid instance", "post", "/", {"json": {"instances": [{**RIDE, "passenger_count": 0}]}}, 400),
    ("BigQuery errorMessage", "post", "/", {"json": {"calls": [[1, 2, 3]]}}, 400),
    ("not JSON", "post", "/", {"data": b"{", "content_type": "application/json"}, 400),
    ("no such endpoint", "get", "/nowhere", {}, 404),
    ("method not allowed", "delete", "/predict", {}, 405),
    ("batch over the cap", "post", "/", {"json": {"instances": [RIDE] * (MAX_ROWS + 1)}}, 413),
    ("body over the cap", "post", "/", {"data": b" " * (MAX_BODY_BYTES + 1), "content_type": "application/json"}, 413),
    ("query string over the cap", "get", "/predict?" + urlencode({**RIDE, "key": "x" * MAX_QUERY_BYTES}), {}, 414),
]
PAGES = ["/", "/health", "/model", "/openapi.json", "/docs"]


@pytest.fixture(scope="module")
def version(trained_model) -> str:
    _, result = trained_model
    return result.metadata["model_version"]


@pytest.mark.parametrize(("method", "path", "kwargs", "key"), [case[1:] for case in PREDICTIONS],
                         ids=[case[0] for case in PREDICTIONS])
def test_every_prediction_shape_names_the_model(client, version, method, path, kwargs, key):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers[MODEL_VERSION_HEADER] == version
    if key == "range":
        assert "range" in response.get_json()
    elif key is not None:
        assert list(response.get_json()) == [key]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [case[1:] for case in ERRORS],
                         ids=[case[0] for case in ERRORS])
def test_errors_from_an_instance_with_a_model_name_it(client, version, method, path, kwargs, status):
    client.get("/health")  # the model is loaded: a refusal before the load finished would carry no version
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers[MODEL_VERSION_HEADER] == version


@pytest.mark.parametrize("path", PAGES)
def test_pages_name_the_model_and_health_agrees(client, version, path):
    client.get("/health")  # waits for the model: the greeting alone does not
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers[MODEL_VERSION_HEADER] == version
    if path == "/health":
        assert response.get_json()["model_version"] == version


def test_browsers_may_read_the_header_across_origins(client):
    response = client.get("/predict?" + urlencode(RIDE), headers={"Origin": "https://example.com"})
    assert MODEL_VERSION_HEADER in response.headers["Access-Control-Expose-Headers"]


def test_without_a_model_there_is_no_version_to_claim(monkeypatch, tmp_path):
    client = make_client(monkeypatch, str(tmp_path / "missing" / "model.joblib"))
    for response in (client.get("/health"), client.get("/predict?" + urlencode(RIDE)), client.get("/")):
        assert MODEL_VERSION_HEADER not in response.headers
    assert client.get("/health").status_code == 503


def test_openapi_documents_the_header_on_every_answer_that_carries_it():
    paths = openapi_spec()["paths"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                headers = response.get("headers", {})
                if status == "503":
                    assert MODEL_VERSION_HEADER not in headers, (path, method, status)
                elif path in ("/openapi.json", "/docs"):
                    continue
                else:
                    assert MODEL_VERSION_HEADER in headers, (path, method, status)
    for path, method in [("/predict", "get"), ("/predict", "post"), ("/v1/models/{model}:predict", "post"),
                         ("/health", "get"), ("/model", "get")]:
        assert paths[path][method]["responses"]["200"]["headers"][MODEL_VERSION_HEADER]["required"] is True
