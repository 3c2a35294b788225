"""Measure the function under hostile traffic, against the hardening targets; prints a table.

    python scripts/benchmark_hostile.py

Real functions-framework (gunicorn) servers on free loopback ports, started and stopped here,
fed by raw sockets (tests/raw_http.py): worst-case bodies at the body cap (objects, fields, depth,
numbers), 256 MiB uploads, malformed and aborted uploads, bodies declared and never sent, and a
FIFO, a device and a 2 GB file as MODEL_URI; and by the common clients (urllib, requests, httpx,
curl) posting batches over the cap, which must each read their 413 (the lingering close). Memory
is the worker's RSS / peak RSS from /proc.
"""

import json
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.report import print_targets
from tests.raw_http import (
    WORST_CASES,
    at_once,
    exchange,
    post_body,
    post_head,
    read_response,
    send_huge,
    worker_memory_mb,
)
from tests.servers import FunctionServer
from tests.test_api import RIDE
from tests.test_lingering_close import CLIENTS, RIDES

PREDICT = ("/predict?pickup_datetime=2013-07-06%2017:18:00&pickup_longitude=-73.950655&pickup_latitude=40.783282"
           "&dropoff_longitude=-73.984365&dropoff_latitude=40.769802&passenger_count=1")


def get(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    return status, time.perf_counter() - started


def ordinary_traffic(server: FunctionServer, rounds: int = 4) -> None:
    """Ordinary requests, 8 at a time: all server threads started; garbage cycles collected as any traffic does."""
    for _ in range(rounds):
        at_once(8, lambda: get(server.url + PREDICT)[0])


def logged_seconds(server: FunctionServer, count: int) -> list[float]:
    """Server-side latency of the last `count` logged requests."""
    entries = [json.loads(line) for line in server.log().splitlines() if '"httpRequest"' in line]
    return [float(e["httpRequest"]["latency"].rstrip("s")) for e in entries[-count:]]


def model_uri_rows(folder: Path) -> list[tuple[str, str, str, bool | None]]:
    """A FIFO, /dev/zero and a sparse 2 GB file as MODEL_URI: seconds to the 503, and the worker's peak RSS."""
    fifo, huge = folder / "fifo.joblib", folder / "huge.joblib"
    os.mkfifo(fifo)
    with open(huge, "wb") as sparse:
        sparse.truncate(2 * 1024**3)
    rows = []
    for name, uri in (("a FIFO", fifo), ("/dev/zero", Path("/dev/zero")), ("a 2 GB file", huge)):
        server = FunctionServer({"MODEL_URI": str(uri), "MODEL_DOWNLOAD_TIMEOUT_SECONDS": "2"},
                                folder / f"{huge.stem}.log").wait_listening()
        try:
            status, seconds = get(server.url + "/health")
            _, peak = worker_memory_mb(server)
        finally:
            server.stop()
        rows.append((f"MODEL_URI = {name}: /health", f"{status} in {seconds * 1e3:.0f} ms, worker peak {peak:.0f} MB",
                     "503 < 2 s", status == 503 and seconds < 2))
    return rows


def too_large_rows(server: FunctionServer, folder: Path) -> list[tuple[str, str, str, bool | None]]:
    """Batches over the cap from the common clients: each must read its 413; memory; threads held after."""
    rows, batches = [], {}
    for rides in RIDES:
        body = json.dumps({"instances": [RIDE] * rides}).encode()
        path = folder / f"{rides}.json"
        path.write_bytes(body)
        batches[rides] = body, str(path)
    for rides in RIDES:
        for chunked in (False, True):
            answers = []
            for name, send in CLIENTS.items():
                started = time.perf_counter()
                try:
                    status = send(server.url + "/predict", *batches[rides], chunked)[0]
                except Exception as failure:  # what a client reports when it never reads the answer
                    status = type(failure).__name__
                answers.append((name, status, time.perf_counter() - started))
            rows.append((f"{rides:,} rides ({len(batches[rides][0]) / 1e6:.1f} MB, "
                         f"{'chunked' if chunked else 'Content-Length'}): urllib, requests, httpx, curl",
                         ", ".join(f"{status} {seconds * 1e3:.0f} ms" for _, status, seconds in answers), "413 each",
                         all(status == 413 for _, status, _ in answers)))
    ordinary_traffic(server)
    _, peak_before = worker_memory_mb(server)
    body, path = batches[max(RIDES)]
    statuses = at_once(8, lambda: CLIENTS["urllib"](server.url + "/", body, path, False)[0])
    rise = worker_memory_mb(server)[1] - peak_before
    rows.append((f"8 x urllib {max(RIDES):,} rides at once: statuses; worker peak RSS rise", f"{sorted(set(statuses))};"
                 f" {rise:+.1f} MB", "413; < 64 MB", set(statuses) == {413} and rise < 64))
    times = []
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            started = time.perf_counter()
            sock.sendall(post_head(length=2 * 1024**3))
            status, _ = read_response(sock)
            times.append((status, time.perf_counter() - started))
    slowest = max(seconds for _, seconds in times)
    rows.append(("Content-Length: 2 GB and no body sent: the answer, median (max) of 20",
                 f"{times[0][0]} in {statistics.median(s for _, s in times) * 1e3:.1f} ms ({slowest * 1e3:.1f})",
                 "413 < 100 ms", {status for status, _ in times} == {413} and slowest < 0.1))
    sessions = [requests.Session() for _ in range(8)]  # each keeps its connection open after the 413
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda session: session.post(server.url, data=batches[min(RIDES)][0], timeout=30), sessions))
    status, seconds = get(server.url + "/")
    for session in sessions:
        session.close()
    rows.append(("GET / right after 8 x 413 to requests.Session (kept open: each holds a thread for "
                 "LINGER_IDLE_SECONDS)", f"{status} in {seconds * 1e3:.0f} ms", "documented", None))
    return rows


def main() -> int:
    model = REPO / "models" / "model.joblib"
    if not model.is_file():
        print(f"no model at {model}: run `make train` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="taxifare-hostile-") as folder:
        server = FunctionServer({"MODEL_URI": str(model)}, Path(folder) / "server.log").wait_listening()
        try:
            ordinary_traffic(server)
            idle, peak_idle = worker_memory_mb(server)
            rows, rises, parse_seconds = [], {}, {}
            for name, (content_type, make) in WORST_CASES.items():
                body = make()
                status = post_body(server.port, content_type, body)
                parse_seconds[name] = logged_seconds(server, 1)[0]
                _, before = worker_memory_mb(server)
                statuses = at_once(8, post_body, server.port, content_type, body)
                rises[name] = worker_memory_mb(server)[1] - peak_idle
                rows.append((f"8 x {name} ({len(body) / 1e6:.1f} MB): status; parse time alone",
                             f"{sorted(set(statuses))}; {parse_seconds[name] * 1e3:.1f} ms", "4xx; < 200 ms",
                             status < 500 and max(statuses) < 500 and parse_seconds[name] < 0.2))
            for chunked in (False, True):
                statuses = at_once(8, send_huge, server.port, chunked)
                rows.append((f"8 x 256 MiB upload ({'chunked' if chunked else 'Content-Length'}): status",
                             f"{sorted(set(statuses))}", "413", set(statuses) == {413}))
            _, peak = worker_memory_mb(server)
            ordinary_traffic(server, rounds=13)
            after, _ = worker_memory_mb(server)
            rows.append(("worker peak RSS rise over idle, all of the above",
                         f"{peak - peak_idle:.0f} MB (idle {idle:.0f} MB, peak {peak:.0f} MB)", "< 64 MB",
                         peak - peak_idle < 64))
            rows.append(("worker RSS after, vs idle (after ordinary requests)", f"{after - idle:+.1f} MB", "< 16 MB",
                         after - idle < 16))

            content_type, make = WORST_CASES["empty-object batch"]
            body = make()
            greeting_times = []
            for _ in range(5):
                with ThreadPoolExecutor(8) as pool:
                    hostile = [pool.submit(post_body, server.port, content_type, body) for _ in range(8)]
                    greeting_times.append(get(server.url + "/")[1])
                    [future.result() for future in hostile]
            rows.append(("GET / during 8 worst-case bodies, median of 5", f"{statistics.median(greeting_times) * 1e3:.0f}"
                         f" ms (max {max(greeting_times) * 1e3:.0f})", "< 500 ms", max(greeting_times) < 0.5))

            started = time.perf_counter()
            status, _ = exchange(server.port, post_head(length=9_000_000), timeout=10)
            oversize = time.perf_counter() - started
            rows.append(("Content-Length: 9,000,000 and no body sent: the answer", f"{status} in {oversize * 1e3:.1f} ms",
                         "413 < 100 ms", status == 413 and oversize < 0.1))
            for megabytes in (1, 4):
                started = time.perf_counter()
                status, _ = exchange(server.port, b"GET /?" + b"a" * (megabytes << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                rows.append((f"a {megabytes} MiB URL (gunicorn parses the request line before our code)",
                             f"{status} in {(time.perf_counter() - started) * 1e3:,.0f} ms", "documented", None))
            malformed = exchange(server.port, post_head(chunked=True), (b"zz\r\n{}\r\n0\r\n\r\n",))[0]
            aborted = exchange(server.port, post_head(length=1000), (b'{"pick',), close_write=True)[0]
            rows.append(("malformed chunk size; upload cut short", f"{malformed}; {aborted}", "400; 400",
                         (malformed, aborted) == (400, 400)))
            rows += too_large_rows(server, Path(folder))
            lines = server.log().splitlines()
        finally:
            server.stop()
        entries = [json.loads(line) for line in lines]
        errors = sum(e["severity"] == "ERROR" for e in entries)
        rows.append(("server log: lines, ERROR lines, longest line", f"{len(lines):,}, {errors}, "
                     f"{max(map(len, lines)):,} chars", "all JSON, 0 ERROR", errors == 0))
        rows += model_uri_rows(Path(folder))

    return print_targets(rows)


if __name__ == "__main__":
    sys.exit(main())
