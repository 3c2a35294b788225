"""Shared fixtures: the real shared rides, a model trained on them once, GCS and BigQuery emulators."""

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from threadpoolctl import threadpool_limits

from taxifare.serving.model_store import LOADER_THREAD_NAME
from taxifare.training.cleaning import clean_rides
from taxifare.training.cli import DATA_DIR_ENV, SHARED_FILES, shared_data_dir
from taxifare.training.data import read_rides
from taxifare.training.sources import load_rides
from taxifare.training.train import train_and_save
from tests.bigquery_emulator import KAGGLE_SCHEMA, TLC_SCHEMA, BigQueryEmulator, kaggle_csv, tlc_csv
from tests.gcs_emulator import EMULATOR_ENV, GcsEmulator

threadpool_limits(limits=1, user_api="openmp")
"""Fits in tests use one OpenMP thread, as the CLI does by default (--threads 1): on a shared or busy
machine more threads spin against each other, and a 20-second fit took over ten minutes."""

REPO = Path(__file__).resolve().parents[1]
TRAIN_CSV, EXTRA_CSV = (shared_data_dir() / name for name in SHARED_FILES)


@pytest.fixture(scope="session")
def shared_csvs() -> list[str]:
    missing = [str(p) for p in (TRAIN_CSV, EXTRA_CSV) if not p.is_file()]
    if missing:
        pytest.fail(f"the shared NYC rides are missing: {missing} (set {DATA_DIR_ENV})")
    return [str(TRAIN_CSV), str(EXTRA_CSV)]


@pytest.fixture(scope="session")
def raw_rides(shared_csvs):
    return read_rides(shared_csvs).rides


@pytest.fixture(scope="session")
def valid_rides(raw_rides):
    return clean_rides(raw_rides).rides


@pytest.fixture(scope="session")
def trained_model(shared_csvs, tmp_path_factory):
    """(model folder, TrainingResult) of one training run on the 20k shared rides."""
    from threadpoolctl import threadpool_limits

    out = tmp_path_factory.mktemp("model")
    with threadpool_limits(limits=1):  # as the CLI trains: more threads spin against each other on 2 shared cores
        return out, train_and_save(load_rides(shared_csvs), out)


@pytest.fixture
def gcs(monkeypatch):
    """A running fake-gcs-server with STORAGE_EMULATOR_HOST pointing at it."""
    emulator = GcsEmulator().start()
    monkeypatch.setenv(EMULATOR_ENV, emulator.url)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def bigquery_emulator(shared_csvs):
    """One local BigQuery for the session, the shared rides loaded three ways.

    `kaggle`: the Kaggle schema, file order; `shuffled`: the same rows in another order; `tlc`: the same
    rides shaped like an NYC TLC yellow-trip table (tolls apart, DATETIME pickups, NUMERIC coordinates).
    """
    emulator = BigQueryEmulator().start()
    try:
        emulator.tables = SimpleNamespace(
            kaggle=emulator.load_csv("kaggle", kaggle_csv(shared_csvs), KAGGLE_SCHEMA),
            shuffled=emulator.load_csv("shuffled", kaggle_csv(shared_csvs, order_seed=7), KAGGLE_SCHEMA),
            tlc=emulator.load_csv("tlc", tlc_csv(shared_csvs), TLC_SCHEMA))
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def bigquery(bigquery_emulator, monkeypatch):
    """The session's local BigQuery, with this process's environment pointing at it."""
    for name, value in bigquery_emulator.env.items():
        monkeypatch.setenv(name, value)
    return bigquery_emulator


@pytest.fixture(scope="session")
def model_path(trained_model) -> str:
    """model.joblib trained on the shared rides (model.json beside it)."""
    out, _ = trained_model
    return str(out / "model.joblib")


def make_client(monkeypatch, model_uri: str, sha256: str | None = None):
    """An in-process test client of main.py, configured like a deployment, model loaded."""
    import functions_framework

    monkeypatch.setenv("MODEL_URI", model_uri)
    if sha256 is None:
        monkeypatch.delenv("MODEL_SHA256", raising=False)
    else:
        monkeypatch.setenv("MODEL_SHA256", sha256)
    return functions_framework.create_app(target="predict", source=str(REPO / "main.py")).test_client()


@pytest.fixture
def client(monkeypatch, model_path):
    """The function with the shared-rides model, loaded: the load and its log line end inside this setup.

    (pytest stops capturing between a test's setup and its call: a loader thread that logs in between
    printed its line into the progress output.)
    """
    app = make_client(monkeypatch, model_path)
    join_model_loads()
    return app


def join_model_loads() -> None:
    """Wait for the background model loads in flight."""
    for thread in threading.enumerate():
        if thread.name == LOADER_THREAD_NAME:
            thread.join(timeout=30)


@pytest.fixture(autouse=True)
def finish_model_loads():
    """Let a test's background model loads end inside it, so their log lines stay in its captured output."""
    yield
    join_model_loads()


@pytest.fixture(scope="session")
def live_server(model_path, tmp_path_factory):
    """Base URL of a real functions-framework (gunicorn) server serving the shared-rides model."""
    from tests.servers import FunctionServer

    server = FunctionServer({"MODEL_URI": model_path}, tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield server.wait_listening().url
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    """A line nobody can miss when tests were skipped for want of a Debian package (Chromium, curl)."""
    from tests.test_docs_page import BROWSER_MISSING
    from tests.test_lingering_close import CURL_MISSING

    for missing, what, packages in ((BROWSER_MISSING, "/docs browser", "chromium chromium-driver"),
                                    (CURL_MISSING, "curl client", "curl")):
        skipped = [report for report in terminalreporter.stats.get("skipped", [])
                   if missing in str(getattr(report, "longrepr", ""))]
        if skipped:
            terminalreporter.write_sep("!", f"{len(skipped)} {what} tests SKIPPED: {missing}; "
                                            f"sudo apt-get install {packages}", red=True, bold=True)
