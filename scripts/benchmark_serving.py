"""Benchmark the served function against the serving targets; prints a table of measured numbers.

    python scripts/benchmark_serving.py            # full run, about 3 minutes
    python scripts/benchmark_serving.py --quick    # shorter runs, fewer cold starts: a fast check
    python scripts/benchmark_serving.py --baseline ../previous   # also the previous release, alternately

`--baseline DIR` serves another checkout's main.py (a `git worktree add ../previous <commit>` of the
previous release, with its own models/model.joblib from its own `make train`) in the same runs, so a
change is measured before and after under the same noise.

Every server is started fresh by this script on a free loopback port, and stopped after:
- the function: `functions-framework --target predict --source main.py` (gunicorn), MODEL_URI=--model
  (a local file, or the same model in a fake-gcs-server for the gs:// rows);
- the floor: the same server with a handler that does nothing (scripts/reference/empty_function.py);
- our HTTP path alone: main.py's request handling with a constant-fare model
  (scripts/reference/constant_fare_function.py), which splits the function's cost above the floor
  into what the model costs and what parsing, validation, the answer and the log line cost;
- the reference: a bootcamp-style FastAPI API on uvicorn with the scikit-learn pipeline.joblib
  (scripts/reference/bootcamp_fastapi.py).
Servers that are compared run in the same session, alternating, so machine noise hits them alike.
Load comes from wrk (Debian's wrk) and http.client; memory is each process's peak RSS (VmHWM).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.report import print_targets  # noqa: E402
from taxifare.training.cli import SHARED_FILES, shared_data_dir  # noqa: E402
from tests.gcs_emulator import EMULATOR_ENV, GcsEmulator, free_port  # noqa: E402

BIN = Path(sys.executable).parent
WRK = shutil.which("wrk") or "/usr/bin/wrk"
DEFAULT_DATA = shared_data_dir() / SHARED_FILES[0]
RIDE = {"pickup_datetime": "2013-07-06 17:18:00", "pickup_longitude": -73.950655, "pickup_latitude": 40.783282,
        "dropoff_longitude": -73.984365, "dropoff_latitude": 40.769802, "passenger_count": 1}
PREDICT_PATH = "/predict?" + "&".join(f"{k}={v}".replace(" ", "%20") for k, v in RIDE.items())
BATCH_ROWS = 10_000
CONCURRENT_BATCHES = 8
START_TIMEOUT = 60.0
FIELDS = tuple(RIDE)
FUNCTION_SOURCES = {"function": "main.py", "empty": "scripts/reference/empty_function.py",
                    "constant": "scripts/reference/constant_fare_function.py"}


class Server:
    """One server process (and its workers) on a free loopback port; its output to `log_path` or /dev/null."""

    def __init__(self, kind: str, model: Path, env: dict[str, str] | None = None, log_path: Path | None = None,
                 root: Path = REPO):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path or os.devnull, "wb")
        if kind == "fastapi":
            command = [str(BIN / "uvicorn"), "scripts.reference.bootcamp_fastapi:app", "--host", "127.0.0.1",
                       "--port", str(self.port), "--log-level", "warning"]
        else:
            command = [str(BIN / "functions-framework"), "--target", "predict",
                       "--source", str(root / FUNCTION_SOURCES.get(kind, "main.py")),
                       "--host", "127.0.0.1", "--port", str(self.port)]
        environment = {**os.environ, "MODEL_URI": str(model), "PIPELINE_PATH": str(model.parent / "pipeline.joblib"),
                       "PYTHONPATH": str(root), **(env or {})}  # the references import taxifare from the repo
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, cwd=root, env=environment, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_first_prediction(self, timeout: float = START_TIMEOUT) -> float:
        """Seconds from Popen to the first 200 answer to the example GET /predict."""
        while time.perf_counter() < self.started + timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.process.returncode} before answering")
            try:
                if request(self.port, "GET", PREDICT_PATH, timeout=2)[0] == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"{self.kind}: no 200 prediction within {timeout} s")

    def peak_rss_mb(self) -> dict[str, float]:
        """VmHWM of the server process and of each child (gunicorn's worker)."""
        pids = {"master": self.process.pid}
        for index, child in enumerate(children_of(self.process.pid)):
            pids[f"worker {index + 1}" if index else "worker"] = child
        return {name: peak_rss_mb(pid) for name, pid in pids.items()}

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process and its workers have used so far."""
        return sum(cpu_seconds(pid) for pid in (self.process.pid, *children_of(self.process.pid)))

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


def request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 60) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def children_of(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(p) for p in task.read_text().split()]
    return sorted(children)


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (/proc/PID/stat fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    percentiles = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.MULTILINE)}
    if set(percentiles) != {50, 75, 90, 99}:
        raise RuntimeError(f"unexpected wrk output for {url}:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "p50": percentiles[50], "p99": percentiles[99],
        "rps": float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE).group(1)),
        "requests": int(re.search(r"^\s+(\d+) requests in", out, re.MULTILINE).group(1)),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def every_request_shape(port: int) -> None:
    """One request of each kind the function serves; raises unless each answers 200."""
    ride = json.dumps(RIDE).encode()
    shapes = [("GET", "/", None), ("GET", PREDICT_PATH, None), ("POST", "/", ride),
              ("POST", "/", json.dumps({"instances": [RIDE, RIDE]}).encode()),
              ("POST", "/v1/models/taxifare:predict", json.dumps({"instances": [RIDE]}).encode()),
              ("POST", "/", json.dumps({"calls": [list(RIDE.values())]}).encode()),
              ("GET", "/health", None), ("GET", "/model", None), ("GET", "/docs", None), ("GET", "/openapi.json", None)]
    for method, path, body in shapes:
        status, answer = request(port, method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path} answered {status}: {answer[:200]!r}")


def batch_body(data: Path) -> bytes:
    """{"instances": [...]} of BATCH_ROWS valid real rides (repeated if cleaning leaves fewer)."""
    from taxifare.training.cleaning import clean_rides
    from taxifare.training.data import read_rides

    rides = clean_rides(read_rides([str(data)]).rides).rides
    rides = rides.iloc[[i % len(rides) for i in range(BATCH_ROWS)]]
    columns = {name: rides[name].tolist() for name in FIELDS[1:]}
    columns["pickup_datetime"] = rides["pickup_datetime"].dt.strftime("%Y-%m-%d %H:%M:%S UTC").tolist()
    columns["passenger_count"] = [int(n) for n in columns["passenger_count"]]
    return json.dumps({"instances": [{name: columns[name][i] for name in FIELDS} for i in range(BATCH_ROWS)]}).encode()


def time_batches(port: int, body: bytes, repeat: int) -> list[float]:
    """Client wall seconds of `repeat` batch POSTs (after 2 warm-ups)."""
    times = []
    for attempt in range(repeat + 2):
        started = time.perf_counter()
        status, answer = request(port, "POST", "/predict", body)
        elapsed = time.perf_counter() - started
        if status != 200 or len(json.loads(answer)["predictions"]) != BATCH_ROWS:
            raise RuntimeError(f"batch POST answered {status}: {answer[:300]!r}")
        if attempt >= 2:
            times.append(elapsed)
    return times


def concurrent_batches(port: int, body: bytes) -> None:
    """CONCURRENT_BATCHES batch POSTs at once (one per server thread); raises unless all answer 200."""
    with ThreadPoolExecutor(CONCURRENT_BATCHES) as pool:
        statuses = list(pool.map(lambda _: request(port, "POST", "/predict", body)[0], range(CONCURRENT_BATCHES)))
    if statuses != [200] * CONCURRENT_BATCHES:
        raise RuntimeError(f"concurrent batches answered {statuses}")


def cold_starts(model: Path, kinds: list[str], starts: int) -> dict[str, list[float]]:
    """Start -> first 200 prediction, `starts` fresh processes per kind, alternating kinds."""
    seconds = {kind: [] for kind in kinds}
    for _ in range(starts):
        for kind in kinds:
            server = Server(kind, model)
            try:
                seconds[kind].append(server.wait_first_prediction())
            finally:
                server.stop()
    return seconds


def gcs_model_row(model: Path) -> tuple[float, dict[str, float]]:
    """Cold start and peak RSS of the function serving the model from a fake-gcs-server."""
    emulator = GcsEmulator().start()
    try:
        emulator.create_bucket("bench")
        for name in ("model.joblib", "model.json"):
            emulator.upload(f"gs://bench/m/{name}", (model.parent / name).read_bytes())
        server = Server("function", model, {"MODEL_URI": "gs://bench/m/model.joblib", EMULATOR_ENV: emulator.url})
        try:
            start = server.wait_first_prediction()
            every_request_shape(server.port)
            return start, server.peak_rss_mb()
        finally:
            server.stop()
    finally:
        emulator.stop()


def alternate_wrk(servers: dict[str, Server], threads: int, connections: int, seconds: int, rounds: int) -> dict:
    """wrk against each server in turn, `rounds` times; the median of each measure per server.

    "cpu_ms": the server's CPU time per request. On this 2-core machine wrk competes with the server, so
    req/s moves with whatever else runs; the server's own cost per request moves much less.
    """
    runs = {name: [] for name in servers}
    for _ in range(rounds):
        for name, server in servers.items():
            before = server.cpu_seconds()
            run = run_wrk(server.url + PREDICT_PATH, threads, connections, seconds)
            runs[name].append({**run, "cpu_ms": (server.cpu_seconds() - before) * 1e3 / max(run["requests"], 1)})
    return {name: {key: statistics.median(run[key] for run in results) if key != "errors"
                   else sum(run[key] for run in results) for key in results[0]}
            for name, results in runs.items()}


def median_text(values: list[float], unit: str = "s") -> str:
    return f"{statistics.median(values):.2f} {unit} (min {min(values):.2f}, max {max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "model.joblib", help="model.joblib to serve")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Kaggle-schema CSV for the batch request")
    parser.add_argument("--quick", action="store_true", help="3 cold starts, 3 s wrk runs, 5 batch requests")
    parser.add_argument("--baseline", type=Path, help="another checkout (the previous release) served alternately")
    args = parser.parse_args()

    model = args.model.resolve()
    missing = [(path, hint) for path, hint in (
        (model, "run `make train` first (or pass --model)"),
        (model.parent / "pipeline.joblib", "the FastAPI reference serves it: train with this version"),
        (Path(WRK), "apt-get install wrk (scripts/system-packages.sh)"),
        (BIN / "uvicorn", "pip install -r requirements-dev.txt"),
        (args.data, "pass --data or set TAXIFARE_DATA_DIR"),
    ) if not path.is_file()]
    if missing:
        for path, hint in missing:
            print(f"{path} is missing: {hint}", file=sys.stderr)
        return 2
    starts, wrk_seconds, rounds, batches = (3, 3, 1, 5) if args.quick else (7, 8, 2, 10)
    print(f"model {model} ({model.stat().st_size / 1e6:.2f} MB); {os.cpu_count()} CPUs; loopback; wrk {wrk_seconds} s "
          f"per run, {rounds} alternating round(s){' (--quick)' if args.quick else ''}", flush=True)
    load_before = os.getloadavg()[0]

    starts_by_kind = cold_starts(model, ["function", "empty", "fastapi"], starts)
    print("cold starts (s): " + "; ".join(f"{kind} " + ", ".join(f"{t:.2f}" for t in times)
                                          for kind, times in starts_by_kind.items()), flush=True)
    gcs_start, gcs_rss = gcs_model_row(model)
    print(f"gs:// model: first prediction {gcs_start:.2f} s, peak RSS {gcs_rss}", flush=True)

    body = batch_body(args.data)
    with tempfile.TemporaryDirectory(prefix="taxifare-bench-") as folder:
        servers = {"function": Server("function", model, log_path=Path(folder) / "server.log"),
                   "constant": Server("constant", model), "empty": Server("empty", model),
                   "fastapi": Server("fastapi", model)}
        if args.baseline:
            baseline = args.baseline.resolve()
            servers["baseline"] = Server("baseline", baseline / "models" / "model.joblib", root=baseline)
        try:
            for server in servers.values():
                server.wait_first_prediction()
            every_request_shape(servers["function"].port)
            shapes_rss = servers["function"].peak_rss_mb()
            fastapi_rss = servers["fastapi"].peak_rss_mb()
            for server in servers.values():
                run_wrk(server.url + PREDICT_PATH, 1, 4, 1)  # warm-up
            compared = {name: server for name, server in servers.items() if name != "fastapi"}
            single = alternate_wrk({**compared, "fastapi": servers["fastapi"]}, 1, 1, wrk_seconds, rounds)
            print(f"wrk 1 connection: {single}", flush=True)
            many = alternate_wrk(compared, 2, 16, wrk_seconds, rounds)
            print(f"wrk 16 connections: {many}", flush=True)
            batch_times = time_batches(servers["function"].port, body, batches)
        finally:
            for server in servers.values():
                server.stop()
    batch_server = Server("function", model)
    try:
        batch_server.wait_first_prediction()
        idle_rss = batch_server.peak_rss_mb()["worker"]
        concurrent_batches(batch_server.port, body)
        batch_rss = batch_server.peak_rss_mb()["worker"]
    finally:
        batch_server.stop()

    ours, reference = (statistics.median(starts_by_kind[k]) for k in ("function", "fastapi"))
    ratio = many["function"]["rps"] / many["empty"]["rps"]
    below = single["fastapi"]["p50"] / single["function"]["p50"]
    errors = sum(run["errors"] for runs in (single, many) for run in runs.values())
    rows = [
        (f"start -> first 200 prediction, median of {starts}", median_text(starts_by_kind["function"]), "<= 0.5 s",
         ours <= 0.5),
        ("  empty functions-framework handler (floor)", median_text(starts_by_kind["empty"]), "reference", None),
        ("  bootcamp FastAPI + scikit-learn (reference)", median_text(starts_by_kind["fastapi"]), "reference", None),
        ("  reference / function", f"{reference / ours:.1f}x sooner", ">= 3x", reference / ours >= 3),
        ("start -> first 200 prediction, gs:// model (fake-gcs-server)", f"{gcs_start:.2f} s", "reference", None),
        *[(f"peak RSS after every request shape, {name}", f"{mb:.0f} MB", "<= 80 MB", mb <= 80)
          for name, mb in shapes_rss.items()],
        *[(f"peak RSS after every request shape, gs:// model, {name}", f"{mb:.0f} MB", "<= 100 MB", mb <= 100)
          for name, mb in gcs_rss.items()],
        ("peak RSS, FastAPI reference", f"{max(fastapi_rss.values()):.0f} MB", "reference", None),
        (f"peak RSS, worker, {CONCURRENT_BATCHES} concurrent {BATCH_ROWS:,}-ride batches",
         f"{batch_rss:.0f} MB (idle {idle_rss:.0f})", "<= 256 MB", batch_rss <= 256),
        ("GET 1 connection (wrk -t1 -c1): median", f"{single['function']['p50']:.2f} ms", "reference", None),
        ("  FastAPI reference's median / function's", f"{single['fastapi']['p50']:.2f} ms; {below:.1f}x", ">= 6x",
         below >= 6),
        ("  p99; empty handler's median", f"{single['function']['p99']:.2f}; {single['empty']['p50']:.2f} ms",
         "reference", None),
        ("  our HTTP path with a constant-fare model: median", f"{single['constant']['p50']:.2f} ms", "reference",
         None),
        ("GET 16 connections (wrk -t2 -c16): throughput", f"{many['function']['rps']:.0f} req/s", "reference", None),
        ("  empty handler; function / empty", f"{many['empty']['rps']:.0f} req/s; {ratio:.2f}x", ">= 0.45x",
         ratio >= 0.45),
        ("  our HTTP path with a constant-fare model; / empty",
         f"{many['constant']['rps']:.0f} req/s; {many['constant']['rps'] / many['empty']['rps']:.2f}x", "reference",
         None),
        ("  server CPU per request (master + worker): function; empty handler",
         f"{many['function']['cpu_ms']:.2f}; {many['empty']['cpu_ms']:.2f} ms", "reference", None),
        ("wrk non-2xx responses + socket errors", f"{errors}", "0", errors == 0),
        (f"POST {BATCH_ROWS:,} instances ({len(body) / 1e6:.1f} MB): client wall, median of {batches}",
         f"{statistics.median(batch_times) * 1e3:.0f} ms", "<= 150 ms", statistics.median(batch_times) <= 0.150),
    ]
    if args.baseline:
        rows += [
            ("previous release (--baseline): GET 1 connection median", f"{single['baseline']['p50']:.2f} ms",
             "not faster", single["function"]["p50"] <= single["baseline"]["p50"] * 1.05),
            ("previous release: 16 connections", f"{many['baseline']['rps']:.0f} req/s", "not more",
             many["function"]["rps"] >= many["baseline"]["rps"] * 0.95),
            ("previous release: server CPU per request, 16 connections", f"{many['baseline']['cpu_ms']:.2f} ms",
             "not less", many["function"]["cpu_ms"] <= many["baseline"]["cpu_ms"] * 1.05),
        ]
    print(f"\n(1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)\n")
    return print_targets(rows)


if __name__ == "__main__":
    sys.exit(main())
