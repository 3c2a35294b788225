"""Shared fixtures: the real shared rides, a model trained on them once, GCS and BigQuery emulators."""

import functools
import hashlib
import os
import pickle
import shutil
import tempfile
import threading
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pytest
from threadpoolctl import threadpool_limits

from taxifare.serving.model_store import LOADER_THREAD_NAME
from taxifare.training.cleaning import clean_rides
from taxifare.training.cli import DATA_DIR_ENV, SHARED_FILES, shared_data_dir
from taxifare.training.data import read_rides
from taxifare.training.sources import load_rides
from taxifare.training.train import TrainingResult, train_and_save
from tests.bigquery_emulator import KAGGLE_SCHEMA, TLC_SCHEMA, BigQueryEmulator, kaggle_csv, tlc_csv
from tests.gcs_emulator import EMULATOR_ENV, GcsEmulator

threadpool_limits(limits=1, user_api="openmp")
"""Fits in tests use one OpenMP thread, as the CLI does by default (--threads 1): on a shared or busy
machine more threads spin against each other, and a 20-second fit took over ten minutes."""

REPO = Path(__file__).resolve().parents[1]
TRAIN_CSV, EXTRA_CSV = (shared_data_dir() / name for name in SHARED_FILES)
MODEL_CACHE_ENV = "TAXIFARE_TEST_MODEL_CACHE"
"""A folder that keeps the session's trained model between pytest runs (`make mutate` sets it: a mutation run
starts pytest once per mutant, and training takes ~30 s). Unset, every session trains its own."""
MUTANT_ENV, MUTANT_MARK = "MUTANT_UNDER_TEST", "__mutmut_"
"""mutmut names the mutant a forked worker runs in this variable ("taxifare.serving.api.x_route__mutmut_3")."""
MUTMUT_STATS = "stats"
"""Its value while mutmut runs the tests unmutated to record which functions each test reaches."""
TRAINING_INPUTS = ("taxifare/*.py", "taxifare/model/**/*.py", "taxifare/model/**/*.geojson", "taxifare/training/**/*.py")
"""The code and package data a training run depends on (training never imports taxifare.serving: test_layers.py):
any change to them trains a new model."""


@pytest.fixture(scope="session")
def shared_csvs() -> list[str]:
    missing = [str(p) for p in (TRAIN_CSV, EXTRA_CSV) if not p.is_file()]
    if missing:
        pytest.fail(f"the shared NYC rides are missing: {missing} (set {DATA_DIR_ENV})")
    return [str(TRAIN_CSV), str(EXTRA_CSV)]


@pytest.fixture(scope="session")
def raw_rides(shared_csvs):
    return _read_and_clean(tuple(shared_csvs))[0]


@pytest.fixture(scope="session")
def valid_rides(shared_csvs):
    return _read_and_clean(tuple(shared_csvs))[1]


@functools.cache  # kept in memory, like cached_training, for the forked workers of a mutation run
def _read_and_clean(csvs: tuple[str, ...]):
    rides = read_rides(list(csvs)).rides
    return rides, clean_rides(rides).rides


@pytest.fixture(scope="session")
def trained_model(shared_csvs, tmp_path_factory):
    """(model folder, TrainingResult) of one training run on the 20k shared rides (kept in MODEL_CACHE_ENV if set)."""
    cache = os.environ.get(MODEL_CACHE_ENV)
    if cache:
        return cached_training(Path(cache), tuple(shared_csvs))
    out = tmp_path_factory.mktemp("model")
    return out, _train(shared_csvs, out)


def _train(csvs, out: Path) -> TrainingResult:
    with threadpool_limits(limits=1):  # as the CLI trains: more threads spin against each other on 2 shared cores
        return train_and_save(load_rides(csvs), out)


@functools.cache  # also in memory: mutmut forks a worker per mutant from the process that ran the suite once
def cached_training(cache: Path, csvs: tuple[str, ...]) -> tuple[Path, TrainingResult]:
    """The training run of `trained_model`, read from `cache` when the same code, data and libraries made it."""
    out = cache / training_key(csvs)
    if not out.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache, prefix="training-"))
        result = _train(list(csvs), staging)
        (staging / "training-result.pickle").write_bytes(pickle.dumps(result))
        try:
            staging.rename(out)  # whole or not at all: a run stopped midway leaves only its staging folder
        except OSError:  # another run finished the same training first
            shutil.rmtree(staging)
    return out, pickle.loads((out / "training-result.pickle").read_bytes())


def training_key(csvs: tuple[str, ...]) -> str:
    """A digest of everything that decides the trained model: the package's code, the rides, the libraries."""
    digest = hashlib.sha256()
    for path in sorted(path for pattern in TRAINING_INPUTS for path in REPO.glob(pattern)):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    for csv in csvs:
        digest.update(Path(csv).read_bytes())
    digest.update(" ".join(version(name) for name in ("numpy", "scikit-learn", "pandas")).encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session", autouse=True)
def uncached_under_a_mutant():
    """Under `make mutate`, empty the caches the unmutated code filled before mutmut forked this worker.

    Otherwise a mutant of a function whose result is cached (the OpenAPI spec, /docs, the hints) is never
    run, and survives whatever the tests check.
    """
    if MUTANT_MARK in os.environ.get(MUTANT_ENV, ""):
        clear_caches()


@pytest.fixture(autouse=True)
def uncached_while_mutmut_maps_tests():
    """While mutmut records which tests reach which function (MUTANT_UNDER_TEST=stats), each test starts uncached.

    Otherwise only the first test to build the OpenAPI spec (or /docs, the hints) is recorded as reaching the
    functions behind it, and mutmut runs that one test alone against all their mutants.
    """
    if os.environ.get(MUTANT_ENV) == MUTMUT_STATS:
        clear_caches()


def clear_caches() -> None:
    """Empty the caches of functions whose results depend only on the code (so a mutant of them is run)."""
    from taxifare.model.places import boroughs
    from taxifare.serving.docs_page import _leaflet_file, docs_html
    from taxifare.serving.hints import closest
    from taxifare.serving.openapi import openapi_spec

    for cached in (boroughs, docs_html, _leaflet_file, closest, openapi_spec):
        cached.cache_clear()


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
