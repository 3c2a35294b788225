"""A real local BigQuery for tests: bqemulator (PyPI) on free loopback ports, REST and Storage Read (gRPC).

bqemulator runs DuckDB, which loads its spatial extension at start with `INSTALL spatial`, a
download. Offline (CI reaches package registries only) that fails, so `install_spatial_extension`
first installs the copy the `duckdb-extension-spatial` wheel ships, into DuckDB's extension folder.
"""

import decimal
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from taxifare.training.bigquery_options import EMULATOR_ENV, PROJECT_ENV, STORAGE_EMULATOR_ENV
from tests.gcs_emulator import free_port, wait_until_answering

PROJECT = "taxifare-test"
DATASET = "rides"
TOLL = decimal.Decimal("5.33")
"""The TLC-shaped copy splits this toll off every fare of $10 or more: fare_amount + tolls_amount = the Kaggle fare."""
NUMERIC_PLACES = decimal.Decimal("1e-9")


def install_spatial_extension() -> None:
    """Copy the wheel's DuckDB spatial extension where DuckDB looks for it (idempotent, offline)."""
    from duckdb_extensions import import_extension

    import_extension("spatial")


class BigQueryEmulator:
    """bqemulator in a subprocess, in memory, its log in a file; `env` points the CLI and the client at it."""

    def __init__(self) -> None:
        self.rest_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.rest_port}"
        self._log = tempfile.NamedTemporaryFile(prefix="bqemulator-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        return {EMULATOR_ENV: f"127.0.0.1:{self.rest_port}", STORAGE_EMULATOR_ENV: f"127.0.0.1:{self.grpc_port}",
                PROJECT_ENV: PROJECT}

    def start(self) -> "BigQueryEmulator":
        install_spatial_extension()
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "bqemulator"), "start", "--rest-port", str(self.rest_port),
             "--grpc-port", str(self.grpc_port), "--project", PROJECT, "--log-level", "warning"],
            stdout=self._log, stderr=subprocess.STDOUT)
        if wait_until_answering(f"{self.url}/healthz", timeout=60, alive=lambda: self.process.poll() is None):
            return self
        self.stop()
        raise RuntimeError(f"bqemulator did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def client(self):
        return client_for(self.url)

    @staticmethod
    def client_from_env():
        """A client of the emulator that EMULATOR_ENV names (in a child process)."""
        return client_for(f"http://{os.environ[EMULATOR_ENV]}")

    def load_csv(self, table: str, csv: bytes, schema: dict[str, str]) -> str:
        """Load CSV bytes (a header line, then rows) into PROJECT.DATASET.table; its bq:// URI."""
        from google.cloud import bigquery

        client = self.client()
        client.create_dataset(DATASET, exists_ok=True)
        config = bigquery.LoadJobConfig(schema=[bigquery.SchemaField(name, kind) for name, kind in schema.items()],
                                        skip_leading_rows=1, source_format="CSV", write_disposition="WRITE_TRUNCATE")
        client.load_table_from_file(io.BytesIO(csv), f"{PROJECT}.{DATASET}.{table}", job_config=config).result()
        return f"bq://{PROJECT}.{DATASET}.{table}"


def client_for(url: str):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=url))


KAGGLE_SCHEMA = {"key": "STRING", "fare_amount": "FLOAT64", "pickup_datetime": "TIMESTAMP",
                 "pickup_longitude": "FLOAT64", "pickup_latitude": "FLOAT64", "dropoff_longitude": "FLOAT64",
                 "dropoff_latitude": "FLOAT64", "passenger_count": "INT64"}
TLC_SCHEMA = {"vendor_id": "STRING", "pickup_datetime": "DATETIME", "pickup_longitude": "NUMERIC",
              "pickup_latitude": "NUMERIC", "dropoff_longitude": "NUMERIC", "dropoff_latitude": "NUMERIC",
              "passenger_count": "INT64", "fare_amount": "NUMERIC", "tolls_amount": "NUMERIC"}


def _read(paths: list[str]) -> pd.DataFrame:
    """The CSVs' rows as text, exactly as written."""
    return pd.concat([pd.read_csv(path, dtype=str, keep_default_na=False) for path in paths], ignore_index=True)


def kaggle_csv(paths: list[str], order_seed: int | None = None, numeric_points: bool = False) -> bytes:
    """The CSVs as one Kaggle-schema CSV: rows shuffled when `order_seed` is given; with `numeric_points`, the
    coordinates as a NUMERIC column holds them (9 decimals: the shared files have float32 ones with 15)."""
    rides = _read(paths)
    if order_seed is not None:
        rides = rides.sample(frac=1, random_state=order_seed)
    if numeric_points:
        rides = rides.assign(**_numeric_points(rides))
    return rides.to_csv(index=False).encode()


def _numeric_points(rides: pd.DataFrame) -> dict[str, pd.Series]:
    return {name: rides[name].map(lambda text: str(decimal.Decimal(text).quantize(NUMERIC_PLACES)))
            for name in ("pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude")}


def tlc_csv(paths: list[str]) -> bytes:
    """The same rides as a TLC yellow-trip table types them: tolls split off, DATETIME pickups, NUMERIC points."""
    rides = _read(paths)
    fares = rides["fare_amount"].map(decimal.Decimal)
    tolls = fares.map(lambda fare: TOLL if fare >= 10 else decimal.Decimal(0))
    tlc = pd.DataFrame({"vendor_id": "VTS", "pickup_datetime": rides["pickup_datetime"].str.removesuffix(" UTC"),
                        **_numeric_points(rides), "passenger_count": rides["passenger_count"],
                        "fare_amount": (fares - tolls).map(str), "tolls_amount": tolls.map(str)})
    return tlc.to_csv(index=False).encode()
