"""Too-large requests: every common client reads its 413, at once, and the lingering close stays bounded.

Against a real functions-framework (gunicorn) server: urllib, requests, httpx and curl post batches of
30,000 and 200,000 rides (5.8 MB and 38 MB, over the 3 MiB cap), with a Content-Length and chunked,
and must each read the 413 JSON, not "Broken pipe"; eight such uploads at once must not grow the
worker's memory; a 2 GB body that is declared and never sent gets its 413 at once. The bounds of the
lingering close itself (peer closed, declared body read, idle, total time, total size) are checked on
a real loopback TCP connection.
"""

import io
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import httpx
import pytest
import requests
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from taxifare.serving import lingering_close
from taxifare.serving.lingering_close import LINGER_IDLE_SECONDS, Ending, discard_rest
from taxifare.serving.request_parsing import MAX_BODY_BYTES, MAX_ROWS, finish_body, read_body
from tests.raw_http import at_once, post_head, read_response, send_huge, worker_memory_mb
from tests.servers import FunctionServer
from tests.test_api import RIDE
from tests.test_hostile import ordinary_traffic

pytestmark = pytest.mark.timeout(300)  # the first test may train the shared model
CURL_MISSING = "curl is missing"
THREADS = 8
"""deploy.sh's server threads, so the thread-holding test means the same everywhere."""
RIDES = (30_000, 200_000)


@pytest.mark.parametrize(("method", "headers", "body", "read", "may_still_send"), [
    ("GET", {}, None, False, False),  # no body declared (gunicorn sets no CONTENT_LENGTH): keep the connection
    ("POST", {}, b'{"instances": []}', True, False),  # read to its end: nothing left
    ("POST", {}, b'{"instances": []}', False, True),  # declared and never read (a 404, a 405): linger
    ("POST", {"Content-Length": "0"}, None, False, False),  # declared empty
    ("POST", {"Transfer-Encoding": "chunked"}, None, False, True),  # chunked, never read: linger
], ids=["get", "read", "unread", "empty", "chunked-unread"])
def test_only_a_body_left_unread_makes_the_connection_linger(method, headers, body, read, may_still_send):
    """A GET, or a body read to its end, keeps the connection alive; only what the client may still send lingers."""
    environ = EnvironBuilder(method=method, headers=headers, data=body).get_environ()
    if body is None and "Content-Length" not in headers:
        environ.pop("CONTENT_LENGTH", None)
    request = Request(environ)
    if read:
        read_body(request)
    assert finish_body(request) is may_still_send
    assert request.stream.read() == b""  # functions-framework's own read after the answer finds nothing


def test_an_empty_content_length_is_no_body():
    """PEP 3333: CONTENT_LENGTH "may be empty or absent"; a server that writes it empty sent no body to discard."""
    environ = EnvironBuilder(method="GET").get_environ()
    environ["CONTENT_LENGTH"] = ""
    assert finish_body(Request(environ)) is False


def too_large(size: int | None) -> dict:
    """The exact 413 for a body of `size` bytes declared (None: streamed in chunks past the cap)."""
    what = "the body" if size is None else f"a body of {size:,} bytes"
    return {"error": f"{what} is over the limit of {MAX_BODY_BYTES:,} bytes: one request takes at most "
                     f"{MAX_ROWS:,} rides",
            "details": {"body": f"at most {MAX_BODY_BYTES:,} bytes; split the rides into requests of at most "
                                f"{MAX_ROWS:,}"}}


@pytest.fixture(scope="module")
def server(model_path, tmp_path_factory):
    server = FunctionServer({"MODEL_URI": model_path, "THREADS": str(THREADS)},
                            tmp_path_factory.mktemp("lingering") / "server.log")
    try:
        yield server.wait_listening()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def batches(tmp_path_factory) -> dict[int, tuple[bytes, str]]:
    """Each too-large batch as bytes, and as a file for curl."""
    folder = tmp_path_factory.mktemp("batches")
    made = {}
    for rides in RIDES:
        body = json.dumps({"instances": [RIDE] * rides}).encode()
        path = folder / f"{rides}.json"
        path.write_bytes(body)
        made[rides] = body, str(path)
    return made


def pieces(body: bytes) -> Iterator[bytes]:
    """A body as a generator: requests and httpx then send it chunked, with no Content-Length."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start:start + 64 * 1024]


def with_urllib(url: str, body: bytes, path: str, chunked: bool) -> tuple[int, dict]:
    data = pieces(body) if chunked else body  # an iterable without a length: urllib sends it chunked
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def with_requests(url: str, body: bytes, path: str, chunked: bool) -> tuple[int, dict]:
    response = requests.post(url, data=pieces(body) if chunked else body, headers={"Content-Type": "application/json"},
                             timeout=30)
    return response.status_code, response.json()


def with_httpx(url: str, body: bytes, path: str, chunked: bool) -> tuple[int, dict]:
    response = httpx.post(url, content=pieces(body) if chunked else body, headers={"Content-Type": "application/json"},
                          timeout=30)
    return response.status_code, response.json()


def with_curl(url: str, body: bytes, path: str, chunked: bool) -> tuple[int, dict]:
    curl = shutil.which("curl")
    if curl is None:
        reason = f"{CURL_MISSING}: install the Debian package curl (scripts/system-packages.sh test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    framing = ["-H", "Transfer-Encoding: chunked"] if chunked else []
    done = subprocess.run([curl, "-sS", "-H", "Content-Type: application/json", *framing, "--data-binary", f"@{path}",
                           "-w", "\n%{http_code}", url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(answer)


CLIENTS: dict[str, Callable[[str, bytes, str, bool], tuple[int, dict]]] = {
    "urllib": with_urllib, "requests": with_requests, "httpx": with_httpx, "curl": with_curl}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("rides", RIDES)
@pytest.mark.parametrize("client", CLIENTS)
def test_every_common_client_reads_the_413_of_a_too_large_batch(server, batches, client, rides, chunked):
    body, path = batches[rides]
    status, answer = CLIENTS[client](server.url + "/predict", body, path, chunked)
    assert (status, answer) == (413, too_large(None if chunked else len(body)))


def test_eight_too_large_uploads_at_once_keep_the_worker_memory_bounded(server, batches):
    ordinary_traffic(server)  # every server thread started, with its malloc arena
    _, peak_before = worker_memory_mb(server)
    body, path = batches[max(RIDES)]
    answers = at_once(8, lambda: with_urllib(server.url + "/", body, path, chunked=False))
    assert answers == [(413, too_large(len(body)))] * 8
    _, peak_after = worker_memory_mb(server)
    assert peak_after - peak_before < 64, f"worker peak rose {peak_after - peak_before:.0f} MB"


def test_refused_chunked_uploads_leave_no_memory_behind(server):
    """gunicorn's chunked parser holds its read-ahead in a reference cycle: the lingering close ends it."""
    ordinary_traffic(server)
    idle, _ = worker_memory_mb(server)
    for _ in range(3):
        assert at_once(8, send_huge, server.port, True) == [413] * 8
        ordinary_traffic(server, rounds=13)
    after, _ = worker_memory_mb(server)
    assert after - idle < 16, f"worker holds {after - idle:.0f} MB more than when idle"


def test_a_declared_2_gb_body_that_never_comes_gets_its_413_at_once(server):
    declared = 2 * 1024**3
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.perf_counter()
        sock.sendall(post_head(length=declared))
        status, answer = read_response(sock)
        seconds = time.perf_counter() - started
    assert (status, answer) == (413, too_large(declared))
    assert seconds < 0.1, f"{seconds * 1e3:.0f} ms"


def test_clients_that_stall_after_their_413_free_their_threads_after_the_idle_bound(server):
    """The worst a lingering connection costs the others: THREADS uploads that stop sending but stay open."""
    stalled = []
    try:
        for _ in range(THREADS):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(post_head(length=MAX_BODY_BYTES * 4) + b"[" * 1000)
            assert read_response(sock)[0] == 413
            stalled.append(sock)
        started = time.perf_counter()
        with urllib.request.urlopen(server.url + "/", timeout=30) as response:
            assert response.status == 200
        seconds = time.perf_counter() - started
    finally:
        for sock in stalled:
            sock.close()
    assert seconds < LINGER_IDLE_SECONDS + 1, f"a greeting waited {seconds:.2f} s for a thread"


# --- the bounds of discard_rest, on a real loopback TCP connection ------------------------------

@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(server side, client side) of one loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        served, _ = listener.accept()
    with served, client:
        yield served, client


def send_then(client: socket.socket, size: int, close: bool, pause: float = 0.0) -> threading.Thread:
    """Send `size` bytes in the background (pausing `pause` s between 64 KiB blocks), then close or stay open."""
    def run() -> None:
        block = b"x" * (64 * 1024)
        try:
            for start in range(0, size, len(block)):
                client.sendall(block[:size - start])
                time.sleep(pause)
            if close:
                client.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server gave up on us: what the bounds are for
    sender = threading.Thread(target=run, daemon=True)
    sender.start()
    return sender


def test_discarding_stops_when_the_client_closes_and_the_client_sees_the_end(connection):
    served, client = connection
    send_then(client, 5_000_000, close=True)
    assert discard_rest(served, None) is Ending.PEER_CLOSED
    client.settimeout(5)
    assert client.recv(1) == b""  # the server's side is closed: the answer before it was complete


def test_discarding_stops_as_soon_as_the_declared_body_is_read(connection):
    served, client = connection
    send_then(client, 3_000_000, close=False)
    started = time.perf_counter()
    assert discard_rest(served, 3_000_000) is Ending.BODY_READ
    assert time.perf_counter() - started < LINGER_IDLE_SECONDS / 2  # no wait for the silence after it


def test_discarding_stops_after_the_idle_bound(connection):
    served, client = connection
    send_then(client, 100_000, close=False)
    started = time.perf_counter()
    assert discard_rest(served, 10_000_000) is Ending.IDLE
    assert LINGER_IDLE_SECONDS <= time.perf_counter() - started < LINGER_IDLE_SECONDS + 0.5


def test_discarding_stops_at_the_time_bound_however_steadily_bytes_trickle(connection, monkeypatch):
    monkeypatch.setattr(lingering_close, "LINGER_SECONDS", 0.5)
    served, client = connection
    send_then(client, 100 * 64 * 1024, close=False, pause=0.05)  # steadier than the idle bound, for 5 s
    started = time.perf_counter()
    assert discard_rest(served, None) is Ending.TIME_LIMIT
    assert 0.5 <= time.perf_counter() - started < 0.5 + LINGER_IDLE_SECONDS / 2


@pytest.mark.parametrize("declared", [None, 8 * 1024 * 1024])
def test_discarding_stops_at_the_size_bound_whatever_the_client_declared(connection, monkeypatch, declared):
    monkeypatch.setattr(lingering_close, "LINGER_MAX_BYTES", 1024 * 1024)
    served, client = connection
    send_then(client, 8 * 1024 * 1024, close=True)
    assert discard_rest(served, declared) is Ending.SIZE_LIMIT


@pytest.mark.parametrize("declared", [1024 * 1024, 1024 * 1024 - 1])
def test_a_declared_body_up_to_the_size_bound_is_read_to_its_end(connection, monkeypatch, declared):
    monkeypatch.setattr(lingering_close, "LINGER_MAX_BYTES", 1024 * 1024)
    served, client = connection
    send_then(client, declared, close=False)
    assert discard_rest(served, declared) is Ending.BODY_READ


class CountingSocket(socket.socket):
    """A real socket that counts the bytes its owner reads."""

    received = 0

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        count = super().recv_into(buffer, nbytes, flags)
        self.received += count
        return count


@pytest.mark.parametrize(("declared", "ending", "read"), [
    (None, Ending.SIZE_LIMIT, 100_000), (150_000, Ending.SIZE_LIMIT, 100_000), (70_000, Ending.BODY_READ, 70_000)])
def test_discarding_reads_exactly_up_to_its_bound_not_a_buffer_more(connection, monkeypatch, declared, ending, read):
    monkeypatch.setattr(lingering_close, "LINGER_MAX_BYTES", 100_000)  # not a multiple of the 64 KiB buffer
    served, client = connection
    counting = CountingSocket(fileno=served.detach())
    with counting:
        send_then(client, 1024 * 1024, close=False)
        assert discard_rest(counting, declared) is ending
        assert counting.received == read


def test_discarding_drains_what_the_server_holds_of_the_body_and_gives_the_socket_its_timeout_back(connection):
    served, client = connection
    served.settimeout(7.0)
    held = io.BytesIO(b"x" * 200_000)  # what gunicorn read ahead of the socket: its parser lets go only at the end
    send_then(client, 1000, close=True)
    assert discard_rest(served, 1000, held) is Ending.BODY_READ
    assert held.read() == b""
    assert served.gettimeout() == 7.0
    served.close()
    client.settimeout(5)
    assert client.recv(1) == b""  # every declared byte was read: the close is clean, not a reset


# --- linger_after: which answers linger, in-process through the function's test client ------------------------

def refused_unread(client, served: socket.socket, protocol: str = "HTTP/1.1", chunked: bool = False,
                   held: io.BytesIO | None = None):
    """A PUT (405: its body is never read) whose connection is `served`, as gunicorn's environ gives it."""
    environ = {"gunicorn.socket": served, "SERVER_PROTOCOL": protocol, "wsgi.input": held or io.BytesIO()}
    if not chunked:
        environ["CONTENT_LENGTH"] = "100000"
    response = client.put("/predict", headers={"Transfer-Encoding": "chunked"} if chunked else {},
                          environ_overrides=environ)
    response.close()  # gunicorn calls it once the answer is written
    return response


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_answer_before_the_body_was_read_discards_it_then_closes(client, connection, chunked):
    served, peer = connection
    held = io.BytesIO(b"x" * 5000)
    send_then(peer, 100_000, close=chunked)  # a chunked body's end is the client's close
    started = time.perf_counter()
    response = refused_unread(client, served, chunked=chunked, held=held)
    assert response.status_code == 405
    assert time.perf_counter() - started < LINGER_IDLE_SECONDS / 2  # stopped at the declared end, not the silence
    assert held.read() == b""
    peer.settimeout(5)
    assert peer.recv(1) == b""  # the connection's end, after the answer


def test_an_http2_connection_is_never_touched(client, connection):
    """HTTP/2 multiplexes streams on one socket: the rest of it belongs to other requests."""
    served, peer = connection
    peer.sendall(b"x" * 1000)
    assert refused_unread(client, served, protocol="HTTP/2").status_code == 405
    served.settimeout(1)
    assert served.recv(2000) == b"x" * 1000
    peer.settimeout(0.1)
    with pytest.raises(TimeoutError):
        peer.recv(1)  # still open


def test_the_test_clients_own_requests_have_no_socket_to_linger_on(client):
    """Under the Flask test client (no gunicorn.socket) an unread body is simply left: nothing to discard."""
    assert client.put("/predict", data=b"x" * 1000).status_code == 405
