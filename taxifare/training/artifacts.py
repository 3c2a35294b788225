"""The files a training run ships: model.joblib, pipeline.joblib and model.json.

- model.joblib: the compiled FareModel the function serves (numpy only, loads without running code);
- pipeline.joblib: the fitted scikit-learn pipeline, for evaluation, inspection and refits. It is a
  joblib pickle: loading it runs code, so only load your own (the function never does);
- model.json: one version id for both, their sha256s, and what the run learned and measured.
"""

import io
import json
import platform
import warnings
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import joblib
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.pipeline import Pipeline

from taxifare.model import loading, storage
from taxifare.model.fare_model import FareModel
from taxifare.model.loading import METADATA_FILE, MODEL_FILE, sha256_hex

PIPELINE_FILE = "pipeline.joblib"
LATEST = "latest"
LIBRARIES = ("numpy", "scikit-learn", "pandas", "joblib")
CONTENT_TYPES = {MODEL_FILE: "application/octet-stream", PIPELINE_FILE: "application/octet-stream",
                 METADATA_FILE: "application/json"}


class ModelVersionError(ValueError):
    """The pipeline was pickled by another scikit-learn version; its predictions cannot be trusted."""


def library_versions() -> dict[str, str]:
    """Versions the training run used (the compiled model itself needs only a compatible numpy)."""
    return {"python": platform.python_version(), **{name: version(name) for name in LIBRARIES}}


def save_model(model: FareModel, pipeline: Pipeline, metadata: dict, out_dir: Path) -> dict:
    """Write model.joblib, pipeline.joblib and model.json to out_dir; return the metadata written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model_bytes = loading.dumps(model)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    pipeline_bytes = buffer.getvalue()
    created = datetime.now(timezone.utc)
    digest = sha256_hex(model_bytes)
    metadata = {
        "model_version": f"{created:%Y%m%d-%H%M%S}-{digest[:8]}",
        "created_at": created.isoformat(timespec="seconds"),
        **metadata,
        "libraries": library_versions(),
        "size_bytes": len(model_bytes),
        "sha256": digest,
        "pipeline": {"file": PIPELINE_FILE, "size_bytes": len(pipeline_bytes), "sha256": sha256_hex(pipeline_bytes)},
    }
    (out_dir / MODEL_FILE).write_bytes(model_bytes)
    (out_dir / PIPELINE_FILE).write_bytes(pipeline_bytes)
    (out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def upload_model(out_dir: Path, prefix: str, model_version: str) -> list[str]:
    """Copy the three files to PREFIX/<version>/ and PREFIX/latest/; return the URIs written."""
    uris = []
    for folder in (model_version, LATEST):
        for name, content_type in CONTENT_TYPES.items():
            uri = f"{prefix.rstrip('/')}/{folder}/{name}"
            storage.copy_file(out_dir / name, uri, content_type)
            uris.append(uri)
    return uris


def load_pipeline(data: bytes) -> Pipeline:
    """Unpickle a pipeline.joblib (runs code: your own files only), refusing another scikit-learn version."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return joblib.load(io.BytesIO(data))
        except InconsistentVersionWarning as mismatch:
            raise ModelVersionError(
                f"pipeline trained with scikit-learn {mismatch.original_sklearn_version}, this environment runs "
                f"{mismatch.current_sklearn_version}: retrain it, or install the version it was trained with"
            ) from None


def load_predictor(data: bytes) -> FareModel | Pipeline:
    """Whatever a local file holds: a compiled model.joblib, or else a pipeline.joblib (trusted: yours)."""
    try:
        return loading.loads(data)
    except loading.ModelFileError:
        try:
            return load_pipeline(data)
        except ModelVersionError:
            raise
        except Exception as error:  # joblib fails on foreign bytes with anything from KeyError to EOFError
            # the cause is joblib's failure, the last reading tried; its context keeps why it is no model.joblib
            raise loading.ModelFileError("neither a taxifare model.joblib nor a pipeline.joblib") from error
