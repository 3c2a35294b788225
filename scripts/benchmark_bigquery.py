"""Benchmark training from BigQuery at scale, against a local BigQuery (bqemulator); prints the figures.

    python scripts/benchmark_bigquery.py                    # 1,000,000 synthetic rides
    python scripts/benchmark_bigquery.py --rows 5000000

1. `python -m taxifare synthesize` writes the rides; they are loaded into an emulated table (Kaggle schema).
2. `python -m taxifare train --data bq://...` runs as a user runs it: its peak RSS (the process's own, from
   wait4), the time to query and read the rows (until its "read N rows" line) and the fitting time (model.json).
3. The rides query's result is written to a table, then read into the chunked pipeline twice, each in a
   process of its own: through the Storage Read API (gRPC, Arrow) and in REST pages (JSON): rows per
   second and peak RSS of each. (The emulator's Storage Read API reads tables, not anonymous query
   results, so the CLI itself reads the emulator's results in REST pages; BigQuery's results it reads
   through the Storage Read API.)
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from taxifare.training.bigquery_options import TABLE_SCHEME  # noqa: E402
from tests.bigquery_emulator import DATASET, KAGGLE_SCHEMA, PROJECT, BigQueryEmulator  # noqa: E402

RESULT_TABLE = "rides_result"


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stderr) of a child process, its own peak only (wait4)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:
        child = subprocess.Popen(args, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    if child.returncode:
        raise SystemExit(f"{' '.join(args[:4])} failed:\n{stderr[-3000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, stderr


def read_once(api: str, table: str) -> None:
    """Child mode: read a marked-rides table through one API into cleaned rides; print rows and seconds."""
    from google.cloud import bigquery

    from taxifare.training.bigquery import rest_batches, rides_from_batches, storage_batches, storage_read_client
    from tests.bigquery_emulator import BigQueryEmulator as Emulator

    client = Emulator.client_from_env()
    ref = bigquery.TableReference.from_string(table)
    started = time.perf_counter()
    if api == "storage":
        batches = storage_batches(storage_read_client(None), ref, client.project)
    else:
        batches = rest_batches(client.query(f"SELECT * FROM `{table}`"))
    result = rides_from_batches(batches, table, 0, lambda message: None)
    print(json.dumps({"rows": result.rows_in, "valid": len(result.rides), "seconds": time.perf_counter() - started}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--read-once", nargs=2, metavar=("API", "TABLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_once:
        read_once(*args.read_once)
        return

    emulator = BigQueryEmulator().start()
    env = emulator.env
    figures = Figures(f"BigQuery benchmark, {args.rows:,} synthetic rides, local BigQuery (bqemulator), this machine")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "rides.csv"
            seconds, _, _ = run_measured([sys.executable, "-m", "taxifare", "synthesize", "--rows", str(args.rows),
                                          "--out", str(csv)], {})
            figures.append(("synthesize", f"{seconds:.0f} s"))
            started = time.perf_counter()
            uri = emulator.load_csv("synthetic", csv.read_bytes(), KAGGLE_SCHEMA)
            figures.append(("load into the emulator", f"{time.perf_counter() - started:.0f} s"))

            out = Path(tmp) / "model"
            seconds, rss, stderr = run_measured([sys.executable, "-m", "taxifare", "train", "--data", uri,
                                                 "--out", str(out)], env)
            read_done = re.search(r"\[\s*([\d.]+)s\] \S+: read ([\d,]+) rows in ([\d.]+)s", stderr)
            metadata = json.loads((out / "model.json").read_text())
            figures += [
                (f"train --data {uri}: wall", f"{seconds:.0f} s"),
                ("  query + read (until the rows are in)", f"{float(read_done.group(1)):.0f} s "
                                                             f"({read_done.group(2)} rows, read {read_done.group(3)} s)"),
                ("  fitting (model.json fit_seconds)", f"{metadata['fit_seconds']:.0f} s"),
                ("  peak RSS", f"{rss:,.0f} MB"),
                ("  held-out RMSE", f"{metadata['metrics']['fares']['taxifare pipeline']['rmse']:.3f}"),
            ]

            from taxifare.training.bigquery_sql import KAGGLE, rides_query, table_sql
            from taxifare.training.bigquery import query_config
            from taxifare.training.data import Selection

            sql, params = rides_query(table_sql(uri.removeprefix(TABLE_SCHEME)), KAGGLE, KAGGLE_SCHEMA, Selection(),
                                      None)
            result = f"{PROJECT}.{DATASET}.{RESULT_TABLE}"
            emulator.client().query(f"CREATE OR REPLACE TABLE `{result}` AS {sql}",
                                    job_config=query_config(params)).result()
            for api in ("storage", "rest"):
                seconds, rss, _ = run_measured([sys.executable, __file__, "--read-once", api, result], env)
                figures.append((f"read {args.rows:,} marked rows: {api}", f"{seconds:.0f} s "
                                f"({args.rows / seconds:,.0f} rows/s, process included), peak RSS {rss:,.0f} MB"))
    finally:
        emulator.stop()


class Figures(list):
    """Measured lines, each printed as soon as it is measured (a long run that fails late keeps its figures)."""

    def __init__(self, title: str) -> None:
        super().__init__()
        print(title, flush=True)

    def append(self, figure: tuple[str, str]) -> None:
        super().append(figure)
        print(f"{figure[0]:<48}{figure[1]}", flush=True)

    def __iadd__(self, figures: list[tuple[str, str]]) -> "Figures":
        for figure in figures:
            self.append(figure)
        return self


if __name__ == "__main__":
    main()
