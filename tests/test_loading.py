"""model.joblib loads without running code: only numpy arrays and the model's own classes resolve."""

import dataclasses
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from taxifare.model import loading
from taxifare.model.fare_model import FareModel
from taxifare.model.loading import MODEL_FILE


@pytest.fixture(scope="module")
def model_bytes(trained_model) -> bytes:
    out, _ = trained_model
    return (out / MODEL_FILE).read_bytes()


class RunsACommand:
    """What an attacker pickles: unpickling calls os.system(command)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_saved_model_round_trips(model_bytes):
    model = loading.loads(model_bytes)
    assert isinstance(model, FareModel)
    assert loading.dumps(model) == model_bytes


@pytest.mark.parametrize("payload", [
    RunsACommand("touch {marker}"),
    [1, 2, RunsACommand("touch {marker}")],
    {"model": RunsACommand("touch {marker}")},
], ids=["bare", "in-a-list", "in-a-dict"])
def test_a_file_naming_os_system_is_refused_before_it_runs(tmp_path, payload):
    marker = tmp_path / "payload-ran"

    def arm(value):
        if isinstance(value, RunsACommand):
            return RunsACommand(value.command.format(marker=marker))
        if isinstance(value, list):
            return [arm(v) for v in value]
        if isinstance(value, dict):
            return {k: arm(v) for k, v in value.items()}
        return value

    data = pickle.dumps(arm(payload), protocol=5)
    with pytest.raises(loading.ForbiddenGlobal, match=r"names (posix|os)\.system"):
        loading.loads(data)
    assert not marker.exists()
    pickle.loads(data)  # the same bytes, unrestricted: the payload does run (so the test above can fail)
    assert marker.exists()


@pytest.mark.parametrize(("module", "name"), [
    ("builtins", "eval"), ("builtins", "getattr"), ("subprocess", "Popen"), ("numpy", "load"),
    ("sklearn.pipeline", "Pipeline"), ("taxifare.model.storage", "read_bytes"),
    ("numpy._core.multiarray", "_reconstruct"),
])
def test_any_other_global_is_refused(module, name):
    data = pickle.PROTO + bytes([5]) + _global(module, name) + b")R."
    with pytest.raises(loading.ForbiddenGlobal, match=f"{module}.{name}"):
        loading.loads(data)


def _global(module: str, name: str) -> bytes:
    """Pickle opcodes pushing module.name (STACK_GLOBAL), as any pickler writes them."""
    def text(value: str) -> bytes:
        encoded = value.encode()
        return pickle.SHORT_BINUNICODE + bytes([len(encoded)]) + encoded
    return text(module) + text(name) + pickle.STACK_GLOBAL


def test_object_arrays_cannot_smuggle_objects():
    data = pickle.dumps(np.array([RunsACommand("true")], dtype=object), protocol=5)
    with pytest.raises(loading.ModelFileError):
        loading.loads(data)


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda data: data[: len(data) // 2], "corrupt"),
    (lambda data: b"", "corrupt"),
    (lambda data: pickle.dumps({"a": 1}, protocol=5), "holds a dict"),
    (lambda data: pickle.dumps(np.arange(3.0), protocol=5), "holds a ndarray"),
])
def test_bytes_that_are_not_a_model_are_refused_with_the_reason(model_bytes, spoil, message):
    with pytest.raises(loading.ModelFileError, match=message):
        loading.loads(spoil(model_bytes))


def test_a_refusal_keeps_the_underlying_error_as_its_cause_for_the_log(model_bytes):
    with pytest.raises(loading.ModelFileError) as truncated:
        loading.loads(model_bytes[:1000])
    assert str(truncated.value) == "model file is corrupt or not a taxifare model (UnpicklingError)"
    assert isinstance(truncated.value.__cause__, pickle.UnpicklingError)
    assert str(truncated.value.__cause__) == "pickle data was truncated"
    model = loading.loads(model_bytes)
    broken = dataclasses.replace(model, route_feature=10_000)
    with pytest.raises(loading.ModelFileError) as inconsistent:
        loading.loads(loading.dumps(broken))
    assert str(inconsistent.value) == f"model file is inconsistent: route_feature has indices outside 0..{len(model.feature_names()) - 1}"
    assert isinstance(inconsistent.value.__cause__, ValueError)


def test_a_model_with_inconsistent_arrays_is_refused_at_load_time(model_bytes):
    model = loading.loads(model_bytes)
    ensemble = model.fares[0]
    broken = dataclasses.replace(ensemble, children=ensemble.children + len(ensemble.value))  # points past the end
    with pytest.raises(loading.ModelFileError, match="children has indices outside"):
        loading.loads(loading.dumps(dataclasses.replace(model, fares=(broken,))))
    wrong_type = dataclasses.replace(ensemble, threshold=ensemble.threshold.astype(np.float32))
    with pytest.raises(loading.ModelFileError, match="threshold must be a 1-d float64 array"):
        loading.loads(loading.dumps(dataclasses.replace(model, fares=(wrong_type,))))


def test_a_model_of_another_format_version_is_refused(model_bytes):
    older = dataclasses.replace(loading.loads(model_bytes), format_version=0)
    with pytest.raises(loading.ModelFileError, match="format version 0.*retrain"):
        loading.loads(loading.dumps(older))


def test_a_model_file_without_a_format_version_is_refused(model_bytes):
    """A file from before versions were written: the class's default version must not vouch for it."""
    unversioned = object.__new__(FareModel)
    vars(unversioned).update({key: value for key, value in vars(loading.loads(model_bytes)).items()
                              if key != "format_version"})
    with pytest.raises(loading.ModelFileError, match="format version None.*retrain"):
        loading.loads(loading.dumps(unversioned))


def test_loading_imports_no_training_library(trained_model):
    out, _ = trained_model
    code = ("import sys; from taxifare.model import loading; "
            f"loading.loads(open({str(out / MODEL_FILE)!r}, 'rb').read()); "
            "print(sorted(m for m in ('sklearn', 'scipy', 'pandas', 'joblib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(("model_uri", "metadata"), [("model.joblib", "model.json"),
                                                     ("models/model.joblib", "models/model.json"),
                                                     ("gs://bucket/v1/model.joblib", "gs://bucket/v1/model.json")])
def test_model_json_is_looked_for_beside_the_model(model_uri, metadata):
    assert loading.metadata_uri(model_uri) == metadata
