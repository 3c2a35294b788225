"""Soak a running function with a bounded loopback load; report errors, latency and RSS over time.

    python scripts/soak.py                     # starts its own server on the default model, 50,000 requests
    python scripts/soak.py --requests 5000 --connections 16

Loopback only, bounded in requests and time. Exit status 1 on any error or RSS growth >= 10%.
"""

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import FunctionServer  # noqa: E402

PATH = ("/predict?pickup_datetime=2013-07-06%2017:18:00&pickup_longitude=-73.950655&pickup_latitude=40.783282"
        "&dropoff_longitude=-73.984365&dropoff_latitude=40.769802&passenger_count=1")
MAX_SECONDS = 600


def rss_kb(pid: int) -> int:
    """Memory of a process and its children (gunicorn master + worker) as the container sees it.

    Summed PSS: pages the forked worker still shares with the master count once, not twice.
    """
    total = 0
    for proc in [pid, *_children(pid)]:
        for line in Path(f"/proc/{proc}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@dataclass
class Window:
    """Latencies and errors of one slice of the run, with RSS at its end."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    rss_kb: int = 0


def soak(port: int, pid: int, requests: int, connections: int, windows: int = 10) -> list[Window]:
    """Send `requests` GETs over `connections` keep-alive connections; split results into windows."""
    per_window = requests // windows
    results = [Window() for _ in range(windows)]
    sent = iter(range(requests))
    lock = threading.Lock()
    deadline = time.monotonic() + MAX_SECONDS

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < deadline:
            with lock:
                index = next(sent, None)
            if index is None:
                return
            window = results[min(index // per_window, windows - 1)]
            started = time.perf_counter()
            try:
                conn.request("GET", PATH)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            elapsed = time.perf_counter() - started
            with lock:
                window.latencies.append(elapsed)
                window.errors += not ok
                if len(window.latencies) + window.errors == per_window:
                    window.rss_kb = rss_kb(pid)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def report(results: list[Window]) -> tuple[int, float]:
    """Print the table; return (errors, RSS growth from the first window to the last)."""
    print(f"{'window':>6} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>8}")
    for i, window in enumerate(results):
        ordered = sorted(window.latencies)
        p50 = statistics.median(ordered) * 1e3 if ordered else float("nan")
        p99 = ordered[int(len(ordered) * 0.99) - 1] * 1e3 if ordered else float("nan")
        print(f"{i:>6} {len(ordered):>9} {window.errors:>7} {p50:>8.2f} {p99:>8.2f} {window.rss_kb / 1024:>8.1f}")
    rss = [w.rss_kb for w in results if w.rss_kb]
    growth = (rss[-1] - rss[0]) / rss[0] if len(rss) > 1 else 0.0
    errors = sum(w.errors for w in results)
    print(f"errors: {errors}; RSS growth first -> last window: {growth:+.1%}")
    return errors, growth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--model", default="models/model.joblib")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = FunctionServer({"MODEL_URI": str(Path(args.model).resolve())}, Path(folder) / "server.log")
        try:
            server.wait_listening()
            errors, growth = report(soak(server.port, server.process.pid, args.requests, args.connections))
        finally:
            server.stop()
    return 0 if errors == 0 and growth < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
