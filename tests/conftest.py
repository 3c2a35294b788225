"""Shared fixtures: the real shared rides, a model trained on them once, a GCS emulator."""

import os
from pathlib import Path

import pytest

from taxifare.cleaning import clean_rides
from taxifare.data import read_rides
from taxifare.training import train_and_save
from tests.gcs_emulator import EMULATOR_ENV, GcsEmulator

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TAXIFARE_DATA_DIR", REPO.parent / "shared" / "data"))
TRAIN_CSV = SHARED_DATA / "train_10k.csv"
EXTRA_CSV = SHARED_DATA / "extra_10k.csv"


@pytest.fixture(scope="session")
def shared_csvs() -> list[str]:
    missing = [str(p) for p in (TRAIN_CSV, EXTRA_CSV) if not p.is_file()]
    if missing:
        pytest.fail(f"the shared NYC rides are missing: {missing} (set TAXIFARE_DATA_DIR)")
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
    out = tmp_path_factory.mktemp("model")
    return out, train_and_save(read_rides(shared_csvs), out)


@pytest.fixture
def gcs(monkeypatch):
    """A running fake-gcs-server with STORAGE_EMULATOR_HOST pointing at it."""
    emulator = GcsEmulator().start()
    monkeypatch.setenv(EMULATOR_ENV, emulator.url)
    yield emulator
    emulator.stop()
