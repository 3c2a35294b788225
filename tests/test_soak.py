"""Bounded load on a real server: zero errors and flat memory. The 50,000-request run is opt-in."""

import pytest

from scripts.soak import report, soak
from tests.servers import FunctionServer


def run(model_path, tmp_path, requests: int):
    server = FunctionServer({"MODEL_URI": model_path}, tmp_path / "server.log").wait_listening()
    try:
        soak(server.port, server.process.pid, 500, 8, windows=1)  # warm up: first requests allocate caches
        return report(soak(server.port, server.process.pid, requests, 16))
    finally:
        server.stop()


def test_short_load_has_no_errors_and_flat_memory(model_path, tmp_path):
    errors, growth = run(model_path, tmp_path, 3_000)
    assert errors == 0
    assert growth < 0.10


@pytest.mark.soak
def test_soak_50k_requests(model_path, tmp_path):
    errors, growth = run(model_path, tmp_path, 50_000)
    assert errors == 0
    assert growth < 0.10
