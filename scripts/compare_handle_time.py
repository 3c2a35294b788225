"""In-process time of one GET through `api.handle`: this tree against another git revision, alternating.

A change to the request path must not make the single GET slower. This measures exactly that code,
without the server and the network: each tree (this checkout, and REF from `git archive`) runs in a
worker process of its own, loads the same model, and answers the same GET inside a Flask request
context. The parent asks the two workers for batches in turn, each going first every other round, so
noise on a busy machine hits both alike. It prints the median, p10 and p90 of every timing, and the
median of the per-round differences (this tree's batch median minus the base's in the same round).

    .venv/bin/python scripts/compare_handle_time.py --base main --model models/model.joblib
"""

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUERY = ("/predict?pickup_datetime=2013-07-06%2017:18:00&pickup_longitude=-73.950655&pickup_latitude=40.783282"
         "&dropoff_longitude=-73.984365&dropoff_latitude=40.769802&passenger_count=1")


class Discard(io.TextIOBase):
    """A stdout that writes nothing, as cheaply as a write can be."""

    def write(self, text: str) -> int:
        return len(text)


def worker(tree: str, model: str) -> None:
    """Answer "N" lines with N handle times (seconds, JSON) for the tree's own taxifare package."""
    sys.path.insert(0, tree)
    import flask

    from taxifare.serving import api
    from taxifare.serving.model_store import ModelStore

    channel, sys.stdout = sys.stdout, Discard()  # log lines (the model's, each request's) go nowhere
    store = ModelStore(model)
    store.start_loading()
    store.get()
    app = flask.Flask("timing")
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            with app.test_request_context(QUERY):
                request = flask.request._get_current_object()
                started = time.perf_counter()
                response = api.handle(request, store)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.get_data(as_text=True)
        channel.write(json.dumps(times) + "\n")
        channel.flush()


def export_tree(ref: str, into: Path) -> Path:
    """taxifare/ as it is at `ref`, unpacked under `into`."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "taxifare"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="git revision to compare with (default main)")
    parser.add_argument("--model", default=str(REPO / "models" / "model.joblib"), help="a model.joblib")
    parser.add_argument("--rounds", type=int, default=200, help="alternations (default 200)")
    parser.add_argument("--batch", type=int, default=50, help="GETs per worker per round (default 50)")
    parser.add_argument("--worker", nargs=2, metavar=("TREE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    with tempfile.TemporaryDirectory() as tmp:
        trees = {args.base: export_tree(args.base, Path(tmp)), "this tree": REPO}
        workers = {name: subprocess.Popen([sys.executable, __file__, "--worker", str(tree), args.model],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                   for name, tree in trees.items()}
        times: dict[str, list[float]] = {name: [] for name in workers}
        differences = []
        for round_number in range(args.rounds):
            medians = {}
            order = list(workers) if round_number % 2 == 0 else list(reversed(workers))  # neither always goes first
            for name in order:
                workers[name].stdin.write(f"{args.batch}\n")
                workers[name].stdin.flush()
                batch = json.loads(workers[name].stdout.readline())
                times[name] += batch
                medians[name] = statistics.median(batch)
            differences.append(medians["this tree"] - medians[args.base])
        for process in workers.values():
            process.stdin.close()
            process.wait()
    for name, found in times.items():
        found = found[args.batch:]  # the first batch warms caches
        deciles = statistics.quantiles(found, n=10)
        print(f"{name:>10}: median {statistics.median(found) * 1e6:6.1f} us, p10 {deciles[0] * 1e6:6.1f}, "
              f"p90 {deciles[-1] * 1e6:6.1f} ({len(found):,} GETs)")
    quartiles = statistics.quantiles(differences[1:], n=4)
    print(f"this tree - {args.base}, per round: median {statistics.median(differences[1:]) * 1e6:+.1f} us "
          f"(quartiles {quartiles[0] * 1e6:+.1f} to {quartiles[-1] * 1e6:+.1f}, {len(differences) - 1} rounds)")


if __name__ == "__main__":
    main()
