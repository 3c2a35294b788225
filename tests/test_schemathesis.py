"""Schemathesis against the function's own /openapi.json, on a real functions-framework server.

Every documented operation gets generated requests, both ones that match the schema (positive) and
ones that break it (negative); each response must be no 5xx, carry a documented status code, content
type and required headers (X-Model-Version), and match the documented response schema. The schema is
fetched from the live server, so what is tested is what /docs shows callers.

Why not `schemathesis.pytest.from_fixture(...).parametrize()`: schemathesis 4.32.5's lazy loader
sets `request.node._nodeid`, which pytest 9 no longer has (AttributeError before any request is
made). So the test is parametrized over the operations itself and draws cases from schemathesis'
per-operation Hypothesis strategies (`APIOperation.as_strategy`), with the same checks.
"""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from taxifare.serving.openapi import openapi_spec

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
MAX_EXAMPLES = 60  # per operation and mode: ~1 s each on top of the shared model training
SPEC_PATHS = openapi_spec()["paths"]
SCHEMA_PATH = "/openapi.json"
"""Schemathesis never tests the document it loaded the schema from; tests/test_api.py checks that one."""
OPERATIONS = [(path, method) for path, item in SPEC_PATHS.items() for method in item if path != SCHEMA_PATH]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
SERVES_METADATA = {"/model"}  # model.json by design: its data sources are checked separately below


@pytest.fixture(scope="module")
def http(live_server):
    with requests.Session() as session:
        # Wait for the model: a 503 while it loads is documented, but would test loading, not the API.
        assert session.get(live_server + "/health", timeout=30).status_code == 200
        yield session


@pytest.fixture(scope="module")
def api_schema(live_server, http):
    return schemathesis.openapi.from_url(live_server + SCHEMA_PATH, timeout=10)


def test_served_spec_lists_the_operations_tested_here(api_schema):
    served = {(op.path, op.method.lower()) for op in (result.ok() for result in api_schema.get_all_operations())}
    assert served == set(OPERATIONS)


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_operation_conforms_to_its_own_openapi(api_schema, live_server, http, path, method, mode):
    operation = SPEC_PATHS[path][method]
    if mode is GenerationMode.NEGATIVE and not (operation.get("parameters") or operation.get("requestBody")):
        pytest.skip("no parameters or body: nothing to make invalid")
    strategy = api_schema[path][method].as_strategy(generation_mode=mode)

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        case = data.draw(strategy, label="case")
        response = case.call(base_url=live_server, session=http, timeout=30)
        case.validate_response(response, checks=CHECKS)
        assert "Traceback" not in response.text
        if path not in SERVES_METADATA:
            assert "/work/" not in response.text and ".py" not in response.text

    check()


def test_model_metadata_does_not_reveal_the_trainers_file_paths(live_server, http):
    metadata = http.get(live_server + "/model", timeout=10).json()
    sources = [*metadata["data"]["sources"], *metadata["data"]["rows_by_source"]]
    assert not [source for source in sources if source.startswith("/")]
