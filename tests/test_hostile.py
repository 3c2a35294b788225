"""Hostile traffic against a real functions-framework (gunicorn) server: bounded memory, no 5xx, clean logs.

Raw sockets send what HTTP libraries refuse to: malformed chunked encoding, uploads cut short,
bodies that never come, 256 MiB bodies, JSON and forms built to amplify memory or CPU. Every
answer must be a 4xx with our JSON error body, and the server log must hold only JSON lines and
no ERROR caused by a client. The figures behind these bounds come from scripts/benchmark_hostile.py.
"""

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from taxifare.serving.request_parsing import BODY_READ_TIMEOUT_SECONDS, MAX_BODY_BYTES
from tests.raw_http import WORST_CASES, at_once, exchange, post_body, post_head, send_huge, worker_memory_mb
from tests.servers import FunctionServer

pytestmark = pytest.mark.timeout(300)
WORST_CASE_STATUSES = {"empty-object batch": 413, "many-field form": 400, "deep JSON": 400, "many numbers": 413,
                       "256 MiB, chunked=False": 413, "256 MiB, chunked=True": 413}
"""Objects or values beyond what 10,000 rides need, or a body over the cap: 413; too many form fields, or JSON
nested deeper than Python parses: 400. Every client reads its answer, the 256 MiB uploads too (lingering_close.py)."""
RIDE_QUERY = ("pickup_datetime=2013-07-06%2017:18:00&pickup_longitude=-73.950655&pickup_latitude=40.783282"
              "&dropoff_longitude=-73.984365&dropoff_latitude=40.769802&passenger_count=1")


@pytest.fixture(scope="module")
def server(model_path, tmp_path_factory):
    server = FunctionServer({"MODEL_URI": model_path}, tmp_path_factory.mktemp("hostile") / "server.log")
    try:
        server.wait_listening()
        with urllib.request.urlopen(f"{server.url}/predict?{RIDE_QUERY}", timeout=30) as response:
            assert response.status == 200
        yield server
    finally:
        server.stop()


def test_a_malformed_chunk_size_is_a_400_not_a_500(server):
    status, body = exchange(server.port, post_head(chunked=True), (b"zz\r\n{}\r\n0\r\n\r\n",))
    assert status == 400, body
    assert body["error"] == "the request body could not be read"
    assert "InvalidChunkSize" in body["details"]["body"]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_an_upload_cut_short_is_a_400(server, chunked):
    head = post_head(chunked=True) if chunked else post_head(length=1000)
    part = b"40\r\n" + b"x" * 20 if chunked else b'{"pickup_datetime": "2013-07-06 17:18:00", "pick'
    status, body = exchange(server.port, head, (part,), close_write=True)
    assert status == 400, body
    assert body["details"]["body"].startswith("transfer failed")


def test_a_stalled_upload_is_refused_after_the_read_timeout(server):
    started = time.monotonic()
    status, body = exchange(server.port, post_head(length=1000), (b'{"pickup_datetime": "2013',),
                            timeout=BODY_READ_TIMEOUT_SECONDS + 20)
    assert status == 400, body
    assert body["details"]["body"] == f"not received within {BODY_READ_TIMEOUT_SECONDS:g} s"
    assert time.monotonic() - started < BODY_READ_TIMEOUT_SECONDS + 10


def test_a_declared_oversize_body_gets_its_413_before_sending_it(server):
    """Only the headers are sent: the 413 must not wait for the 9 MB the client announced."""
    status, body = exchange(server.port, post_head(length=9_000_000), timeout=5)
    assert status == 413, body
    assert body["error"] == (f"a body of 9,000,000 bytes is over the limit of {MAX_BODY_BYTES:,} bytes: one request "
                             "takes at most 10,000 rides")


def ordinary_traffic(server: FunctionServer, rounds: int = 4) -> None:
    """Ordinary requests, 8 at a time: every server thread started (each with its own malloc arena).

    After hostile uploads it also lets Python's cyclic garbage collector run, as any traffic does:
    gunicorn's chunked-body parser keeps its buffers in a reference cycle until then.
    """
    def price() -> int:
        with urllib.request.urlopen(f"{server.url}/predict?{RIDE_QUERY}", timeout=30) as response:
            return response.status
    for _ in range(rounds):
        assert at_once(8, price) == [200] * 8


def test_eight_concurrent_worst_case_bodies_keep_memory_bounded_and_answer_4xx(server):
    ordinary_traffic(server)
    idle, peak_before = worker_memory_mb(server)
    statuses = {name: at_once(8, post_body, server.port, content_type, make())
                for name, (content_type, make) in WORST_CASES.items()}
    for chunked in (False, True):
        statuses[f"256 MiB, chunked={chunked}"] = at_once(8, send_huge, server.port, chunked)
    assert statuses == {name: [status] * 8 for name, status in WORST_CASE_STATUSES.items()}
    _, peak_after = worker_memory_mb(server)
    assert peak_after - peak_before < 64, f"worker peak rose {peak_after - peak_before:.0f} MB: {statuses}"
    ordinary_traffic(server, rounds=13)
    after, _ = worker_memory_mb(server)
    assert after - idle < 16, f"worker holds {after - idle:.0f} MB more than when idle"


def test_the_function_keeps_answering_while_eight_worst_case_bodies_are_parsed(server):
    content_type, make = WORST_CASES["empty-object batch"]
    body = make()
    with ThreadPoolExecutor(8) as pool:
        hostile = [pool.submit(post_body, server.port, content_type, body) for _ in range(8)]
        started = time.monotonic()
        with urllib.request.urlopen(f"{server.url}/", timeout=30) as response:
            assert response.status == 200
        greeting_seconds = time.monotonic() - started
        assert [future.result() for future in hostile] == [WORST_CASE_STATUSES["empty-object batch"]] * 8
    assert greeting_seconds < 2, greeting_seconds  # scripts/benchmark_hostile.py measures the real figure


def test_no_client_input_left_an_error_or_a_non_json_line_in_the_log(server):
    exchange(server.port, post_head(chunked=True), (b"zz\r\n{}\r\n0\r\n\r\n",))
    status, _ = exchange(server.port, b"GET /" + b"a" * 300_000 + b" HTTP/1.1\r\nHost: test\r\n\r\n")
    assert status == 404
    lines = server.log().splitlines()
    assert lines
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert [e for e in entries if e["severity"] == "ERROR"] == []
    assert all(len(line) < 8_192 for line in lines)
