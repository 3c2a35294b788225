"""The command line, end to end, in a subprocess as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from taxifare.training.cli import DATA_DIR_ENV, main
from tests.conftest import REPO


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taxifare", *args], cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=300, env={**os.environ, **(env or {})})


def test_train_then_evaluate(shared_csvs, tmp_path):
    trained = run("train", "--data", shared_csvs[0], "--data", shared_csvs[1], "--sample", "0.5", "--out", str(tmp_path))
    assert trained.returncode == 0, trained.stderr
    assert "mean fare" in trained.stdout and "distance-only linear" in trained.stdout
    assert "taxifare pipeline" in trained.stdout
    assert "fitting on" in trained.stderr and "refitting on all" in trained.stderr  # progress on long steps
    metadata = json.loads((tmp_path / "model.json").read_text())
    assert list(metadata["data"]["rows_by_source"]) == ["train_10k.csv", "extra_10k.csv"]  # names, not paths

    evaluated = run("evaluate", "--model", str(tmp_path / "model.joblib"), "--data", shared_csvs[1])
    assert evaluated.returncode == 0, evaluated.stderr
    assert "valid rides" in evaluated.stdout and "RMSE" in evaluated.stdout
    table = table_rows(evaluated.stdout)  # what train prints, so a model can be judged on new rides
    assert set(table) == {"mean fare", "distance-only linear", "taxifare pipeline"}
    assert table["taxifare pipeline"][0] < table["distance-only linear"][0] < table["mean fare"][0]
    assert "fit on the model's training rides" in evaluated.stdout
    coverages = [line for line in evaluated.stdout.splitlines() if "% range: held the fare of" in line]
    assert len(coverages) == len(metadata["range_coverages"]) and all("mean width $" in line for line in coverages)


def table_rows(output: str) -> dict[str, list[float]]:
    """The score table's rows: name -> [RMSE, trips, short, MAE] (nan for "-")."""
    rows = {}
    for cells in (line.split() for line in output.splitlines()):
        *name, rmse, trips, short, mae = cells if len(cells) >= 5 else ["model", "", "", "", ""]
        if name != ["model"] and all(_number(cell) for cell in (rmse, trips, short, mae)):
            rows[" ".join(name)] = [float("nan") if cell == "-" else float(cell) for cell in (rmse, trips, short, mae)]
    return rows


def _number(cell: str) -> bool:
    return cell == "-" or cell.replace(".", "", 1).isdigit()


@pytest.fixture(scope="module")
def trained_without_data(shared_csvs, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """`train` given no data but the shared rides' directory: its run and its output directory (one training, which
    two tests read)."""
    out = tmp_path_factory.mktemp("default-data")
    return run("train", "--out", str(out), "--limit", "4000", env={DATA_DIR_ENV: os.path.dirname(shared_csvs[0])}), out


def test_without_data_it_trains_on_the_shared_rides(trained_without_data):
    result, out = trained_without_data
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "model.json").read_text())["data"]["sources"] == ["train_10k.csv"]


def test_without_any_real_data_it_says_it_trains_on_synthetic_rides(tmp_path):
    result = run("train", "--out", str(tmp_path), "--limit", "3000", env={DATA_DIR_ENV: str(tmp_path / "none")})
    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC" in result.stderr
    report = result.stdout.split("\nwrote ")[0]  # the scores, before the line naming the (tmp_path) file
    assert "real" not in report and "nan" not in report  # nothing synthetic called real; no nan cell
    assert all(len(scores) == 4 for scores in table_rows(result.stdout).values())
    assert json.loads((tmp_path / "model.json").read_text())["data"]["sources"] == ["synthetic"]


def test_synthesize_writes_kaggle_csv(tmp_path):
    out = tmp_path / "rides.csv"
    assert run("synthesize", "--rows", "500", "--out", str(out)).returncode == 0
    rides = pd.read_csv(out)
    assert len(rides) == 500 and list(rides.columns)[:3] == ["key", "fare_amount", "pickup_datetime"]


def no_google_credentials(tmp_path) -> dict:
    """An environment where google.auth finds nothing: no key, an empty gcloud config, no metadata server."""
    return {"GOOGLE_APPLICATION_CREDENTIALS": "", "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"), "NO_GCE_CHECK": "True",
            "STORAGE_EMULATOR_HOST": "", "HOME": str(tmp_path)}


NOT_A_MODEL = "a ride CSV given as the model"
WRONG_COLUMNS = "a CSV without the Kaggle columns"
MISTAKES = {  # what a newcomer types -> (exit status, what the one error line must say)
    "gs:// data without credentials": (["train", "--data", "gs://my-bucket/more.csv"], 1,
                                       ["gs://my-bucket/more.csv", "gcloud auth application-default login"]),
    "--upload without credentials": (["train", "--upload", "gs://my-bucket/models/", "--limit", "500"], 1,
                                     ["gs://my-bucket/models/", "gcloud auth application-default login"]),
    "a missing file": (["train", "--data", "missing.csv"], 1, ["missing.csv: no such file"]),
    "a directory as --data": (["train", "--data", "{tmp}"], 1, ["{tmp}: is a directory"]),
    "a missing --model": (["evaluate", "--model", "nowhere/model.joblib"], 1, ["nowhere/model.joblib: no such file"]),
    "a directory as --model": (["evaluate", "--model", "{tmp}"], 1, ["{tmp} is a directory"]),
    "--since after --until": (["train", "--since", "2014-01-01", "--until", "2013-01-01"], 1, ["must be before"]),
    "--since not a date": (["train", "--since", "last week"], 2, ["--since", "not a date or time: 'last week'"]),
    "a bq:// name that is no table id": (["train", "--data", "bq://rides"], 1, ["bq://rides", "PROJECT.DATASET.TABLE"]),
    NOT_A_MODEL: (["evaluate", "--model", "{shared}"], 1, ["{shared}", "neither a taxifare model.joblib"]),
    WRONG_COLUMNS: (["train", "--data", "{wrong}"], 1, ["{wrong}", "missing the column(s) key, fare_amount"]),
    "a negative --limit": (["train", "--limit", "-5"], 2, ["--limit", "must be at least 1, got -5"]),
    "--test-fraction over 1": (["train", "--test-fraction", "1.5"], 2, ["--test-fraction", "less than 1, got 1.5"]),
    "--test-fraction of 1": (["train", "--test-fraction", "1"], 2, ["--test-fraction", "less than 1, got 1"]),
    "--sample of 0": (["train", "--sample", "0"], 2, ["--sample", "more than 0 and at most 1"]),
    "negative --rows": (["synthesize", "--rows", "-3", "--out", "rides.csv"], 2, ["--rows", "at least 1, got -3"]),
    "--threads not a number": (["train", "--threads", "all"], 2, ["--threads", "not a whole number: 'all'"]),
}


def run_here(capsys, *args: str) -> tuple[int, str, str]:
    """`python -m taxifare ARGS` in this process, without an interpreter's start-up: (exit status, stdout, stderr)."""
    try:
        status = main(list(args))
    except SystemExit as usage:
        status = usage.code
    out, err = capsys.readouterr()
    return status, out, err


def mistake_args(mistake: str, shared_csvs, tmp_path) -> tuple[list[str], dict[str, str]]:
    """The mistake's command line, with its files filled in and a model directory to (not) write; the fill."""
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,price\n1,2.5\n")
    fill = {"shared": shared_csvs[0], "wrong": str(wrong), "tmp": str(tmp_path)}
    args = [arg.format(**fill) for arg in MISTAKES[mistake][0]]
    if args[0] == "train":
        args += ["--out", str(tmp_path / "model")]
    if args[0] == "evaluate":
        args += ["--data", shared_csvs[1]]
    return args, fill


def assert_one_error_line(mistake: str, args: list[str], fill: dict[str, str], answer: tuple[int, str, str],
                          tmp_path) -> None:
    """The mistake's exit status and one error line saying what it must, no traceback, nothing trained."""
    status, out, err = answer
    _, expected_status, said = MISTAKES[mistake]
    assert status == expected_status, err
    assert "Traceback" not in err and "Traceback" not in out
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    for words in said:
        assert words.format(**fill) in errors[0], errors[0]
    assert "[Errno" not in errors[0]
    assert not (tmp_path / "model" / "model.joblib").exists()  # --upload is checked before anything is trained
    if expected_status == 2:  # a usage error shows the command's own usage
        assert err.startswith(f"usage: python -m taxifare {args[0]} "), err


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_is_one_error_line_with_the_fix(mistake, shared_csvs, tmp_path, monkeypatch, capsys):
    for name, value in no_google_credentials(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    args, fill = mistake_args(mistake, shared_csvs, tmp_path)
    assert_one_error_line(mistake, args, fill, run_here(capsys, *args), tmp_path)


def test_a_mistake_in_its_own_process_is_one_error_line_too(shared_csvs, tmp_path):
    """As a user meets it: a fresh interpreter, where nothing was imported or configured before (the mistakes above
    run in the test's process, for speed)."""
    mistake = "--upload without credentials"
    args, fill = mistake_args(mistake, shared_csvs, tmp_path)
    result = run(*args, env=no_google_credentials(tmp_path))
    assert_one_error_line(mistake, args, fill, (result.returncode, result.stdout, result.stderr), tmp_path)


@pytest.mark.parametrize("command", [["train"], ["evaluate", "--model", "m.joblib"],
                                     ["synthesize", "--rows", "5", "--out", "rides.csv"]])
def test_an_unknown_option_shows_the_commands_own_usage(command):
    result = run(*command, "--bogus")
    assert result.returncode == 2
    assert result.stderr.startswith(f"usage: python -m taxifare {command[0]} "), result.stderr
    assert "unrecognized arguments: --bogus" in result.stderr


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["explain"], ["synthesize"]])
def test_help_imports_no_pandas_scikit_learn_or_cloud_client(command):
    """--help is what makes it slow or fast: 2.8 s when it imported scikit-learn, well under 0.5 s without."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "taxifare", *command, "--help"], cwd=REPO,
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0 and "usage: python -m taxifare" in result.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"pandas", "sklearn", "scipy", "joblib", "pyarrow", "google"}, sorted(imported)


def test_evaluate_help_says_what_the_seed_seeds_there():
    text = " ".join(run("evaluate", "--help").stdout.split())
    assert "--seed SEED random seed of the sampling" in text
    assert "split" not in text and "the model (default" not in text


def test_evaluate_warns_when_the_data_was_part_of_training(trained_without_data, shared_csvs):
    trained, out = trained_without_data  # on train_10k.csv only
    assert trained.returncode == 0, trained.stderr
    seen = run("evaluate", "--model", str(out / "model.joblib"), "--data", shared_csvs[0], "--limit", "2000")
    assert seen.returncode == 0 and "RMSE" in seen.stdout
    assert "train_10k.csv was part of this model's training data" in seen.stderr and "optimistic" in seen.stderr
    unseen = run("evaluate", "--model", str(out / "model.joblib"), "--data", shared_csvs[1], "--limit", "2000")
    assert unseen.returncode == 0 and "RMSE" in unseen.stdout
    assert "training data" not in unseen.stderr
