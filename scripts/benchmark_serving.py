"""Benchmark the served function against the serving targets; prints a table of measured numbers.

    python scripts/benchmark_serving.py                # full run, about 1 minute
    python scripts/benchmark_serving.py --quick        # shorter wrk runs, 2 cold starts: a fast check

Everything runs over loopback against real `functions-framework --target predict --source main.py`
processes (gunicorn, not --debug) that this script starts on free ports with MODEL_URI=--model, and stops.
Load comes from `wrk` (/usr/bin/wrk) and from http.client; the server's JSON request log goes to a
temporary file, which is read for the server-side latency of the batch requests.

Targets: process start -> first 200 prediction <= 2 s (median of 5 fresh starts); one connection GET
median <= 2 ms; 16 connections >= 700 req/s; a 10,000-ride POST {"instances"} <= 150 ms; peak RSS of the
master and worker processes <= 250 MB each.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from taxifare.cli import SHARED_FILES, shared_data_dir  # noqa: E402

FUNCTIONS_FRAMEWORK = Path(sys.executable).parent / "functions-framework"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
DEFAULT_DATA = shared_data_dir() / SHARED_FILES[0]
EXAMPLE_QUERY = ("pickup_datetime=2013-07-06%2017:18:00&pickup_longitude=-73.950655&pickup_latitude=40.783282"
                 "&dropoff_longitude=-73.984365&dropoff_latitude=40.769802&passenger_count=1")
PREDICT_PATH = "/predict?" + EXAMPLE_QUERY
BATCH_ROWS = 10_000
START_TIMEOUT = 30.0
FIELDS = ("pickup_datetime", "pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude",
          "passenger_count")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One functions-framework process on a free loopback port; its output to `log_path` or /dev/null."""

    def __init__(self, model: Path, log_path: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path or os.devnull, "wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(FUNCTIONS_FRAMEWORK), "--target", "predict", "--source", str(REPO / "main.py"),
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO, env={**os.environ, "MODEL_URI": str(model)}, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,  # its own process group: stop() ends the workers too
        )

    def wait_first_prediction(self, timeout: float = START_TIMEOUT) -> float:
        """Seconds from Popen to the first 200 answer to the example GET /predict."""
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode} before answering")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                connection.request("GET", PREDICT_PATH)
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.005)
        raise RuntimeError(f"no 200 prediction within {timeout} s")

    def pids(self) -> dict[str, int]:
        """The master (the functions-framework process) and its children (gunicorn workers)."""
        found = {"master": self.process.pid}
        for index, child in enumerate(children_of(self.process.pid)):
            found[f"worker {index + 1}" if index else "worker"] = child
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self._log.close()


def children_of(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(p) for p in task.read_text().split()]
    return sorted(children)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text).groups()
    return float(number) * UNITS[unit]


def run_wrk(url: str, threads: int, connections: int, seconds: int) -> dict:
    """wrk --latency against `url`; its percentiles (ms), req/s and non-2xx/socket error counts."""
    command = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency", url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    percentiles = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.MULTILINE)}
    requests = int(re.search(r"^\s+(\d+) requests in", out, re.MULTILINE).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "p50": percentiles[50], "p99": percentiles[99], "requests": requests,
        "rps": float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE).group(1)),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def batch_body(data: Path) -> tuple[bytes, int]:
    """{"instances": [...]} of BATCH_ROWS valid real rides (repeated if cleaning leaves fewer); unique count."""
    from taxifare.cleaning import clean_rides
    from taxifare.data import read_rides

    rides = clean_rides(read_rides([str(data)]).rides).rides
    unique = min(len(rides), BATCH_ROWS)
    rides = rides.iloc[[i % len(rides) for i in range(BATCH_ROWS)]]
    columns = {name: rides[name].tolist() for name in FIELDS[1:]}
    columns["pickup_datetime"] = rides["pickup_datetime"].dt.strftime("%Y-%m-%d %H:%M:%S UTC").tolist()
    columns["passenger_count"] = [int(n) for n in columns["passenger_count"]]
    instances = [{name: columns[name][i] for name in FIELDS} for i in range(BATCH_ROWS)]
    return json.dumps({"instances": instances}).encode(), unique


def time_batches(port: int, body: bytes, repeat: int) -> list[float]:
    """Client wall seconds of `repeat` POSTs over one keep-alive connection (after 2 warm-ups)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    times = []
    try:
        for attempt in range(repeat + 2):
            started = time.perf_counter()
            connection.request("POST", "/predict", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                raise RuntimeError(f"batch POST answered {response.status}: {answer[:300]!r}")
            predictions = json.loads(answer)["predictions"]
            if len(predictions) != BATCH_ROWS:
                raise RuntimeError(f"batch POST returned {len(predictions)} predictions, expected {BATCH_ROWS}")
            if attempt >= 2:
                times.append(elapsed)
    finally:
        connection.close()
    return times


def logged_batch_latencies(log_path: Path, count: int) -> list[float]:
    """Server-side seconds (httpRequest.latency) of the last `count` logged 10,000-ride POSTs."""
    latencies = []
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        request = entry.get("httpRequest", {})
        if request.get("requestMethod") == "POST" and entry.get("rows") == BATCH_ROWS:
            latencies.append(float(request["latency"].rstrip("s")))
    return latencies[-count:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "model.joblib", help="model.joblib to serve")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Kaggle-schema CSV for the batch request")
    parser.add_argument("--quick", action="store_true", help="2 cold starts, 3 s wrk runs, 5 batch requests")
    args = parser.parse_args()

    model = args.model.resolve()
    if not model.is_file():
        print(f"no model at {model}: run `make train` first (or pass --model)", file=sys.stderr)
        return 2
    for tool, hint in ((FUNCTIONS_FRAMEWORK, "pip install -r requirements.txt"), (Path(WRK), "apt-get install wrk")):
        if not Path(tool).is_file():
            print(f"{tool} is missing: {hint}", file=sys.stderr)
            return 2
    if not args.data.is_file():
        print(f"no rides at {args.data}: pass --data or set TAXIFARE_DATA_DIR", file=sys.stderr)
        return 2
    starts, wrk_seconds, batches = (2, 3, 5) if args.quick else (5, 10, 10)

    print(f"model {model} ({model.stat().st_size / 1e6:.2f} MB); {os.cpu_count()} CPUs; loopback; "
          f"wrk {wrk_seconds} s per run{' (--quick)' if args.quick else ''}", flush=True)
    load_before = os.getloadavg()[0]
    if load_before > 0.5 * (os.cpu_count() or 1):
        print(f"warning: 1-minute load average {load_before:.2f} before the run: other processes share the CPUs "
              "with the server and wrk, so the numbers below are pessimistic", flush=True)

    start_times = []
    for _ in range(starts):
        server = Server(model)
        try:
            start_times.append(server.wait_first_prediction())
        finally:
            server.stop()
    print("cold starts (s): " + ", ".join(f"{t:.2f}" for t in start_times), flush=True)

    body, unique_rides = batch_body(args.data)
    with tempfile.TemporaryDirectory(prefix="taxifare-bench-") as folder:
        log_path = Path(folder) / "server.log"
        server = Server(model, log_path)
        try:
            server.wait_first_prediction()
            url = server.url + PREDICT_PATH
            run_wrk(url, 1, 4, 1)  # warm-up: threads, caches, branch predictors
            single = run_wrk(url, 1, 1, wrk_seconds)
            print(f"wrk 1 connection: {single}", flush=True)
            many = run_wrk(url, 2, 16, wrk_seconds)
            print(f"wrk 16 connections: {many}", flush=True)
            batch_times = time_batches(server.port, body, batches)
            print("batch POST client ms: " + ", ".join(f"{t * 1e3:.0f}" for t in batch_times), flush=True)
            time.sleep(0.2)  # let the last log line reach the file
            server_times = logged_batch_latencies(log_path, batches)
            rss = {name: peak_rss_mb(pid) for name, pid in server.pids().items()}
            log_lines = sum(1 for _ in log_path.open("rb"))
        finally:
            server.stop()

    errors = single["errors"] + many["errors"]
    rows = [
        (f"start -> first 200 prediction, median of {starts}", f"{statistics.median(start_times):.2f} s "
         f"(min {min(start_times):.2f}, max {max(start_times):.2f})", "<= 2 s",
         statistics.median(start_times) <= 2),
        ("GET 1 connection (wrk -t1 -c1): median", f"{single['p50']:.2f} ms", "<= 2 ms", single["p50"] <= 2),
        ("GET 1 connection: p99", f"{single['p99']:.2f} ms ({single['rps']:.0f} req/s)", "reference", None),
        ("GET 16 connections (wrk -t2 -c16): throughput", f"{many['rps']:.0f} req/s", ">= 700 req/s",
         many["rps"] >= 700),
        ("GET 16 connections: p50 / p99", f"{many['p50']:.2f} / {many['p99']:.2f} ms", "reference", None),
        ("wrk non-2xx responses + socket errors", f"{errors}", "0", errors == 0),
        (f"POST {BATCH_ROWS:,} instances ({len(body) / 1e6:.1f} MB, {unique_rides:,} unique rides): "
         f"client wall, median of {batches}", f"{statistics.median(batch_times) * 1e3:.0f} ms", "<= 150 ms",
         statistics.median(batch_times) <= 0.150),
        ("  same, server-logged httpRequest.latency median",
         f"{statistics.median(server_times) * 1e3:.0f} ms" if server_times else "not found in the log", "reference",
         None),
    ]
    rows += [(f"peak RSS (VmHWM), {name}", f"{mb:.0f} MB", "<= 250 MB", mb <= 250) for name, mb in rss.items()]
    rows.append(("peak RSS, master + workers", f"{sum(rss.values()):.0f} MB", "reference", None))

    print(f"\n(server log: {log_lines:,} JSON lines, discarded; 1-minute load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after)\n")
    width = max(len(r[0]) for r in rows) + 2
    value_width = max(len(r[1]) for r in rows) + 2
    print(f"{'measure':<{width}}{'measured':<{value_width}}{'target':<14}ok")
    for name, value, target, ok in rows:
        print(f"{name:<{width}}{value:<{value_width}}{target:<14}{'' if ok is None else 'yes' if ok else 'NO'}")
    return 0 if all(ok is not False for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
