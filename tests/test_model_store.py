"""Model loading from GCS against a real fake-gcs-server: lazy, once, and self-healing."""

import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from taxifare.model import loading
from taxifare.model.loading import METADATA_FILE, MODEL_FILE
from tests.conftest import REPO, make_client
from tests.gcs_emulator import EMULATOR_ENV, GcsEmulator, TricklingProxy
from tests.servers import FunctionServer

BUCKET = "models-bucket"
MODEL_URI = f"gs://{BUCKET}/taxifare/v1/{MODEL_FILE}"
METADATA_URI = f"gs://{BUCKET}/taxifare/v1/{METADATA_FILE}"
PREDICT = ("/predict?pickup_datetime=2013-07-06%2017:18:00&pickup_longitude=-73.950655&pickup_latitude=40.783282"
           "&dropoff_longitude=-73.984365&dropoff_latitude=40.769802&passenger_count=1")


@pytest.fixture
def model_bytes(model_path) -> bytes:
    return Path(model_path).read_bytes()


@pytest.fixture
def metadata(model_path) -> dict:
    return json.loads((Path(model_path).parent / METADATA_FILE).read_text())


@pytest.fixture
def bucket(gcs, model_bytes, metadata):
    """The emulator with an empty bucket; `publish()` uploads the model and its model.json."""
    gcs.create_bucket(BUCKET)

    def publish(data: bytes = model_bytes) -> None:
        gcs.upload(METADATA_URI, json.dumps(metadata).encode())
        gcs.upload(MODEL_URI, data)

    gcs.publish = publish
    return gcs


def wait_for(client, path: str, status: int, timeout: float = 40):
    """Poll until `path` answers `status` (the store retries on its own backoff)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def assert_unavailable(response, reason: str):
    assert response.status_code == 503, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) >= 1
    body = response.get_json()
    assert reason in body["details"]["model"], body
    assert "/work/" not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)


def test_loads_lazily_from_gcs_with_its_metadata(monkeypatch, bucket, metadata, model_bytes, capsys):
    bucket.publish()
    client = make_client(monkeypatch, MODEL_URI)
    assert client.get(PREDICT).status_code == 200
    assert client.get("/model").get_json() == metadata
    assert bucket.downloads(MODEL_URI) == 1
    logged = [entry for entry in map(json.loads, capsys.readouterr().out.splitlines())
              if entry.get("message", "").startswith("loaded model")]
    assert len(logged) == 1 and logged[0]["severity"] == "INFO"  # the operator's record of what serves, and its cost
    assert logged[0]["message"] == f"loaded model {metadata['model_version']} from {MODEL_URI}"
    assert (logged[0]["model_version"], logged[0]["size_bytes"]) == (metadata["model_version"], len(model_bytes))
    seconds = logged[0]["load_seconds"]
    assert isinstance(seconds, float) and 0 < seconds < 60 and seconds == round(seconds, 3)


def test_missing_object_is_503_then_serves_once_uploaded_without_restart(monkeypatch, bucket, capsys):
    client = make_client(monkeypatch, MODEL_URI)
    assert_unavailable(client.get(PREDICT), "not found")
    failures = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "model unavailable" in line]
    assert failures and failures[0]["severity"] == "ERROR" and failures[0]["model_uri"] == MODEL_URI
    assert client.get("/health").status_code == 503
    bucket.publish()
    assert wait_for(client, PREDICT, 200).status_code == 200
    assert client.get("/health").get_json()["status"] == "ok"


def test_retries_are_spaced_by_backoff_not_hammered(monkeypatch, bucket):
    client = make_client(monkeypatch, MODEL_URI)
    for _ in range(20):
        client.get(PREDICT)
    assert bucket.downloads(MODEL_URI) <= 2


def test_sha256_pin_refuses_other_bytes_and_accepts_its_own(monkeypatch, bucket, metadata, capsys):
    bucket.publish()
    refused = make_client(monkeypatch, MODEL_URI, sha256="0" * 64)
    assert_unavailable(refused.get(PREDICT), "MODEL_SHA256")
    logged = next(json.loads(line) for line in capsys.readouterr().out.splitlines() if "model unavailable" in line)
    assert logged["detail"] == f"sha256 {metadata['sha256']}, pinned {'0' * 64}"  # which bytes came, which were pinned
    pinned = make_client(monkeypatch, MODEL_URI, sha256=metadata["sha256"])
    assert pinned.get(PREDICT).status_code == 200


@pytest.mark.parametrize(("spoil", "reason"), [
    (lambda data: data[: len(data) // 2], "corrupt"),
    (lambda data: b"this is not a pickle", "corrupt"),
    (lambda data: b"", "corrupt"),
])
def test_corrupt_objects_are_503_and_recover_when_replaced(monkeypatch, bucket, model_bytes, spoil, reason):
    bucket.publish(spoil(model_bytes))
    client = make_client(monkeypatch, MODEL_URI)
    assert_unavailable(client.get(PREDICT), reason)
    bucket.publish()
    assert wait_for(client, PREDICT, 200).status_code == 200


def test_model_json_without_a_version_still_serves_with_a_derived_one(monkeypatch, bucket, metadata, model_bytes):
    bucket.upload(METADATA_URI, json.dumps({k: v for k, v in metadata.items() if k != "model_version"}).encode())
    bucket.upload(MODEL_URI, model_bytes)
    client = make_client(monkeypatch, MODEL_URI)
    assert client.get(PREDICT).status_code == 200
    assert client.get("/health").get_json()["model_version"] == f"sha256-{metadata['sha256'][:12]}"


def model_json_warnings(out: str) -> list[dict]:
    """The log's WARNING lines about model.json (which the store reads after the model itself)."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line["severity"] == "WARNING" and "model.json" in line["message"]]


@pytest.mark.parametrize("published", ["of other bytes", "missing", "not JSON"])
def test_a_model_json_that_does_not_describe_the_model_is_ignored_with_a_warning(monkeypatch, bucket, metadata,
                                                                                  model_bytes, capsys, published):
    """The model serves under a version derived from its bytes, never under another model's description; the operator
    is told why (a WARNING: the service works, its /model says less)."""
    if published == "of other bytes":
        bucket.upload(METADATA_URI, json.dumps({**metadata, "sha256": "0" * 64}).encode())
    elif published == "not JSON":
        bucket.upload(METADATA_URI, b"{model")
    bucket.upload(MODEL_URI, model_bytes)
    client = make_client(monkeypatch, MODEL_URI)
    assert client.get(PREDICT).status_code == 200
    derived = {"model_version": f"sha256-{metadata['sha256'][:12]}", "sha256": metadata["sha256"]}
    assert client.get("/model").get_json() == derived
    warnings = model_json_warnings(capsys.readouterr().out)
    assert len(warnings) == 1, warnings
    said = {"of other bytes": f"ignoring {METADATA_URI}: it describes other model bytes",
            "missing": "no usable model.json beside the model: metadata file not found at the configured MODEL_URI",
            "not JSON": "no usable model.json beside the model: Expecting property name enclosed in double quotes: "
                        "line 1 column 2 (char 1)"}
    assert warnings[0]["message"] == said[published]
    assert warnings[0].get("metadata_uri") == (None if published == "of other bytes" else METADATA_URI)


def test_object_deleted_while_warm_keeps_serving(monkeypatch, bucket):
    bucket.publish()
    client = make_client(monkeypatch, MODEL_URI)
    assert client.get(PREDICT).status_code == 200
    bucket.delete(MODEL_URI)
    assert [client.get(PREDICT).status_code for _ in range(5)] == [200] * 5


def test_storage_down_at_cold_start_is_503_then_recovers(monkeypatch, gcs, model_bytes, metadata):
    gcs.stop()
    monkeypatch.setenv("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "2")  # refused connections are retried until this deadline
    client = make_client(monkeypatch, MODEL_URI)
    assert_unavailable(client.get(PREDICT), "storage error")
    revived = GcsEmulator(port=gcs.port).start()
    try:
        revived.create_bucket(BUCKET)
        revived.upload(METADATA_URI, json.dumps(metadata).encode())
        revived.upload(MODEL_URI, model_bytes)
        assert wait_for(client, PREDICT, 200).status_code == 200
    finally:
        revived.stop()


def test_storage_too_slow_is_503_within_the_deadline(monkeypatch):
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    monkeypatch.setenv(EMULATOR_ENV, f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setenv("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "1")
    try:
        client = make_client(monkeypatch, MODEL_URI)
        started = time.monotonic()
        assert_unavailable(client.get(PREDICT), "storage error")
        assert time.monotonic() - started < 15
    finally:
        silent.close()


def test_cold_start_storm_on_a_real_server_downloads_once(bucket, tmp_path):
    """64 concurrent requests as soon as a fresh gunicorn instance listens: all 200, one download.

    The load starts when gunicorn's master imports main.py and the worker inherits it, so the
    storm meets an in-flight or finished load; test_concurrent_cold_gets_share_one_download
    covers threads racing a store that has not started.
    """
    bucket.publish()
    server = FunctionServer({"MODEL_URI": MODEL_URI, EMULATOR_ENV: bucket.url}, tmp_path / "server.log")
    try:
        barrier = threading.Barrier(64)

        def call(_):
            barrier.wait(timeout=60)
            try:
                with urllib.request.urlopen(server.url + PREDICT, timeout=60) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code
            except OSError:
                return None  # not listening yet: retried below

        statuses = []
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(64) as pool:
            while time.monotonic() < deadline:
                statuses = list(pool.map(call, range(64)))
                if None not in statuses:
                    break
                barrier.reset()
                time.sleep(0.1)
        assert statuses == [200] * 64, (statuses, server.log()[-2000:])
        assert bucket.downloads(MODEL_URI) == 1
    finally:
        server.stop()


def test_concurrent_cold_gets_share_one_download(bucket):
    """32 threads on a store that has not started loading: one download, one model object."""
    from taxifare.serving.model_store import ModelStore

    bucket.publish()
    store = ModelStore(MODEL_URI)
    with ThreadPoolExecutor(32) as pool:
        models = list(pool.map(lambda _: store.get(), range(32)))
    assert len({id(model) for model in models}) == 1
    assert bucket.downloads(MODEL_URI) == 1


FORK_SCRIPT = """
import os, shutil, sys, time
from taxifare.serving.model_store import ModelStore
model, target = sys.argv[1], sys.argv[2]
store = ModelStore(target)
store.start_loading()          # in flight (or failed: the file is absent) when we fork
pid = os.fork()
if pid == 0:
    if not os.path.exists(target):
        shutil.copy(model, target)  # the fault clears after the fork: the child must load by itself
    for _ in range(100):
        try:
            store.get()
            os._exit(0)
        except Exception:
            time.sleep(0.1)
    os._exit(3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("present_before_fork", [True, False])
def test_a_forked_worker_serves_whether_or_not_the_parent_finished_loading(model_path, tmp_path, present_before_fork):
    """gunicorn forks its worker after main.py started loading in the master: the worker must end up serving."""
    import subprocess
    import sys

    target = tmp_path / "model.joblib"
    if present_before_fork:
        target.write_bytes(Path(model_path).read_bytes())
    result = subprocess.run([sys.executable, "-c", FORK_SCRIPT, model_path, str(target)], cwd=Path(__file__).parents[1],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_a_slow_download_in_flight_at_the_fork_happens_once(bucket, tmp_path):
    """The master starts the download, gunicorn forks while it trickles in: the worker inherits it."""
    bucket.publish()
    proxy = TricklingProxy(bucket.port, chunk=16_384, pause=0.1)  # ~1.5 s for the model
    server = FunctionServer({"MODEL_URI": MODEL_URI, EMULATOR_ENV: proxy.url}, tmp_path / "server.log")
    try:
        server.wait_listening(timeout=60)
        with urllib.request.urlopen(server.url + PREDICT, timeout=30) as response:
            assert response.status == 200
        assert bucket.downloads(MODEL_URI) == 1, server.log()
        assert_clean_log(server.log())
    finally:
        server.stop()
        proxy.stop()


def assert_clean_log(log: str) -> None:
    """Every line the server wrote is one JSON object (nothing like a fork-time traceback)."""
    lines = log.splitlines()
    assert lines, "the server logged nothing"
    for line in lines:
        assert isinstance(json.loads(line), dict), line


@pytest.mark.parametrize("start", range(3))
def test_a_server_start_logs_only_json_lines(model_path, tmp_path, start):
    server = FunctionServer({"MODEL_URI": model_path}, tmp_path / "server.log")
    try:
        server.wait_listening()
        with urllib.request.urlopen(server.url + PREDICT, timeout=30) as response:
            assert response.status == 200
    finally:
        server.stop()
    log = server.log()
    assert "loaded model" in log
    assert_clean_log(log)


def test_a_model_file_naming_code_is_503_and_never_runs(monkeypatch, bucket, tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    bucket.publish(pickle.dumps(Payload(), protocol=5))
    client = make_client(monkeypatch, MODEL_URI)
    assert_unavailable(client.get(PREDICT), "names posix.system")
    assert not marker.exists()
    bucket.publish()
    assert wait_for(client, PREDICT, 200).status_code == 200


@pytest.mark.parametrize("kind", ["fifo", "device", "huge file", "directory"])
def test_a_local_path_that_is_not_a_model_file_fails_fast(monkeypatch, tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "model.joblib"
        os.mkfifo(path)  # no writer: reading it would wait forever
    elif kind == "device":
        path = Path("/dev/zero")  # reading it would never end
    elif kind == "huge file":
        path = tmp_path / "model.joblib"
        with open(path, "wb") as sparse:
            sparse.truncate(2 * 1024**3)
    else:
        path = tmp_path
    started = time.monotonic()
    client = make_client(monkeypatch, str(path))
    reason = {"fifo": "not a regular file", "device": "not a regular file", "huge file": "MODEL_MAX_BYTES limit",
              "directory": "storage error (IsADirectoryError)"}[kind]
    assert_unavailable(client.get(PREDICT), reason)
    assert time.monotonic() - started < 2


def test_a_gcs_object_over_the_size_cap_is_refused_while_reading(monkeypatch, bucket, model_bytes, capsys):
    """Callers read which setting refused it; the operator's log line also says which object and what limit."""
    bucket.publish()
    limit = len(model_bytes) // 2
    monkeypatch.setenv("MODEL_MAX_BYTES", str(limit))
    assert_unavailable(make_client(monkeypatch, MODEL_URI).get(PREDICT), "over the MODEL_MAX_BYTES limit")
    errors = [entry for entry in map(json.loads, capsys.readouterr().out.splitlines()) if entry["severity"] == "ERROR"]
    assert f"ObjectTooLarge('{MODEL_URI} is over the {limit:,}-byte limit')" in errors[0]["detail"]


def test_a_fork_while_a_download_is_in_flight_waits_for_it_so_the_child_has_the_model(monkeypatch, bucket):
    """In-process (the before-fork handler runs here): the child inherits the finished load, nothing is downloaded
    twice. The wait is bounded by the download deadline plus the unpickling allowance, here 3 + 5 s."""
    from taxifare.serving.model_store import ModelStore

    bucket.publish()
    proxy = TricklingProxy(bucket.port, chunk=256 * 1024, pause=0.1)  # ~0.7 s for the model
    monkeypatch.setenv(EMULATOR_ENV, proxy.url)
    try:
        store = ModelStore(MODEL_URI, download_timeout=3.0)
        store.start_loading()
        assert store.loaded is None  # still trickling in
        pid = os.fork()
        if pid == 0:  # the child: the model, and a store that still takes work (its lock is its own)
            code = 1
            try:
                store.start_loading()
                code = 0 if store.loaded is not None and store.get() is store.loaded else 2
            finally:
                os._exit(code)  # never back into pytest
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.loaded is not None
        assert bucket.downloads(MODEL_URI) == 1
    finally:
        proxy.stop()


def test_a_trickling_download_stops_at_the_deadline_however_fast_each_read_is(monkeypatch, bucket):
    """Every read succeeds (a piece each 0.1 s), but the whole takes ~1.5 s: over a 0.5 s deadline."""
    bucket.publish()
    proxy = TricklingProxy(bucket.port, chunk=16_384, pause=0.1)
    monkeypatch.setenv(EMULATOR_ENV, proxy.url)
    monkeypatch.setenv("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "0.5")
    try:
        started = time.monotonic()
        assert_unavailable(make_client(monkeypatch, MODEL_URI).get(PREDICT), "took longer than")
        assert time.monotonic() - started < 0.5 + 5  # the deadline, plus the wait for unpickling
    finally:
        proxy.stop()


@pytest.mark.parametrize(("variable", "value"), [
    ("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "soon"), ("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "nan"),
    ("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "inf"), ("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "-inf"),
    ("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "-5"), ("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "0"),
    ("MODEL_MAX_BYTES", "-1"), ("MODEL_MAX_BYTES", "1.5"), ("MODEL_MAX_BYTES", "0"), ("MODEL_MAX_BYTES", "inf"),
])
def test_malformed_limits_are_refused_at_start_in_one_line_naming_the_variable(monkeypatch, variable, value):
    """nan would never time out, inf never either: a start-up error, not a server whose loads can hang."""
    from taxifare.serving.model_store import ModelStore

    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as refused:
        ModelStore.from_environment()
    whole = "whole " if variable == "MODEL_MAX_BYTES" else ""
    assert str(refused.value) == f"{variable} must be a positive, finite {whole}number, got {value!r}"


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "2.5", 2.5), ("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "", 20.0),
    ("MODEL_MAX_BYTES", "1000", 1000), ("MODEL_MAX_BYTES", "", 64 * 1024 * 1024),
])
def test_limits_come_from_the_environment_or_their_defaults(monkeypatch, variable, value, expected):
    from taxifare.serving.model_store import ModelStore

    monkeypatch.setenv(variable, value)
    store = ModelStore.from_environment()
    limit = store.download_timeout if variable == "MODEL_DOWNLOAD_TIMEOUT_SECONDS" else store.max_bytes
    assert (limit, type(limit)) == (expected, type(expected))


def test_the_backoff_doubles_from_one_second_up_to_thirty():
    from taxifare.serving.model_store import backoff_seconds

    assert [backoff_seconds(failures) for failures in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_failed_loads_log_their_backoff_and_the_next_attempt_waits_it_out(monkeypatch, tmp_path, capsys):
    client = make_client(monkeypatch, str(tmp_path / "model.joblib"))
    first = client.get(PREDICT)
    assert_unavailable(first, "model file not found at the configured MODEL_URI")
    assert first.headers["Retry-After"] == "1"
    assert client.get(PREDICT).headers["Retry-After"] == "1"  # within the backoff: no second attempt
    time.sleep(1.05)
    second = client.get(PREDICT)  # the second attempt, then two seconds of backoff
    assert_unavailable(second, "not found")
    assert second.headers["Retry-After"] == "2"
    assert client.get(PREDICT).headers["Retry-After"] == "2"  # within that backoff: what is left of it, rounded up
    failures = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "model unavailable" in line]
    assert [(entry["failures"], entry["retry_in_seconds"]) for entry in failures] == [(1, 1.0), (2, 2.0)]


def test_a_refused_model_file_keeps_its_cause_in_the_log_and_out_of_the_answer(monkeypatch, tmp_path, model_path,
                                                                                capsys):
    truncated = tmp_path / "model.joblib"
    truncated.write_bytes(Path(model_path).read_bytes()[:1000])
    response = make_client(monkeypatch, str(truncated)).get(PREDICT)
    assert_unavailable(response, "model file is corrupt or not a taxifare model (UnpicklingError)")
    assert "truncated" not in response.get_data(as_text=True)
    logged = next(json.loads(line) for line in capsys.readouterr().out.splitlines() if "model unavailable" in line)
    assert logged["detail"] == "UnpicklingError('pickle data was truncated')"


def test_a_bug_while_loading_is_a_plain_503_logged_with_its_traceback_then_retried(monkeypatch, model_path, capsys):
    """Not a known failure (storage, a refused file) but a fault in our own code: callers get the safe reason, the
    operator the traceback, and the store retries after its backoff like any failure instead of dying."""
    real_loads, calls = loading.loads, []

    def buggy_once(data: bytes):
        calls.append(len(data))
        if len(calls) == 1:
            raise RuntimeError("a bug in the loader")
        return real_loads(data)

    monkeypatch.setattr(loading, "loads", buggy_once)
    client = make_client(monkeypatch, model_path)
    response = client.get(PREDICT)
    assert_unavailable(response, "model could not be loaded (server error)")
    assert response.get_json()["details"] == {"model": "model could not be loaded (server error)"}
    assert response.headers["Retry-After"] == "1" and "a bug" not in response.get_data(as_text=True)
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    bug, failure, answered = (entry for entry in logged if entry["severity"] == "ERROR")
    assert bug["message"].startswith(f"unexpected error loading the model from {model_path}\nTraceback")
    assert "RuntimeError: a bug in the loader" in bug["message"]
    assert failure["message"] == "model unavailable: model could not be loaded (server error)"
    assert (failure["detail"], failure["failures"], failure["retry_in_seconds"]) == ("", 1, 1.0)
    assert answered["httpRequest"]["status"] == 503  # the request's own line
    assert wait_for(client, PREDICT, 200, timeout=10).status_code == 200 and len(calls) == 2


def test_a_load_past_its_deadline_is_503_still_loading_then_its_model_serves(monkeypatch, model_path):
    """A request waits for a load in flight no longer than the download deadline plus UNPICKLE_SECONDS, then gets a
    503 to retry in a second; the same attempt's model serves as soon as it lands."""
    from taxifare.serving import model_store

    release, real_loads = threading.Event(), loading.loads

    def stuck(data: bytes):
        release.wait(10)
        return real_loads(data)

    monkeypatch.setattr(loading, "loads", stuck)
    monkeypatch.setattr(model_store, "UNPICKLE_SECONDS", 0.2)
    monkeypatch.setenv("MODEL_DOWNLOAD_TIMEOUT_SECONDS", "0.1")
    client = make_client(monkeypatch, model_path)
    started = time.monotonic()
    response = client.get(PREDICT)
    assert time.monotonic() - started < 1.0  # 0.3 s at most, the deadline having started at import
    assert_unavailable(response, "model is still loading")
    assert response.get_json()["details"] == {"model": "model is still loading"}
    assert response.headers["Retry-After"] == "1"
    release.set()
    assert wait_for(client, PREDICT, 200, timeout=10).status_code == 200


def test_a_download_in_flight_never_holds_the_process_at_exit():
    """The loader is a daemon thread: a worker shutting down (or a script importing main) exits at once instead of
    waiting out a hung download's deadline."""
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    env = {**os.environ, EMULATOR_ENV: f"http://127.0.0.1:{silent.getsockname()[1]}", "MODEL_URI": MODEL_URI,
           "MODEL_DOWNLOAD_TIMEOUT_SECONDS": "30"}
    try:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", "import main"], check=False, cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=90)
        assert proc.returncode == 0, proc.stderr
        assert time.monotonic() - started < 15
    finally:
        silent.close()


def test_a_fork_waits_no_longer_than_the_loads_deadline_and_the_child_loads_again(monkeypatch, model_path, capfd):
    """A load stuck past its deadline plus UNPICKLE_SECONDS does not hold gunicorn's fork for long, and the child,
    whose copy of that load will never finish, says so and loads again by itself."""
    from taxifare.serving import model_store

    parent, real_loads = os.getpid(), loading.loads

    def stuck_in_the_parent(data: bytes):
        if os.getpid() == parent:
            time.sleep(2)
        return real_loads(data)

    monkeypatch.setattr(loading, "loads", stuck_in_the_parent)
    monkeypatch.setattr(model_store, "UNPICKLE_SECONDS", 0.3)
    store = model_store.ModelStore(model_path, download_timeout=0.2)
    store.start_loading()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            code = 0 if store.get() is store.loaded is not None else 2
        finally:
            sys.stdout.flush()
            os._exit(code)  # never back into pytest
    forked_after = time.monotonic() - started
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert forked_after < 1.1  # the deadline plus the allowance (0.5 s), not the load's 2 s
    until = time.monotonic() + 10
    while store.loaded is None and time.monotonic() < until:  # the parent's own load ends too, inside this test
        time.sleep(0.05)
    assert store.loaded is not None
    logged = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [entry for entry in logged if entry.get("model_uri") == model_path and entry["severity"] == "WARNING"] == [
        {"severity": "WARNING", "message": "the model load in flight at fork outlived its deadline: loading again",
         "model_uri": model_path}]
