"""model.joblib and model.json: writing, fingerprinting, uploading and loading them.

joblib files are pickles: loading one runs code, so only load bytes from a location the
operator configured, and pin them with their sha256 where it matters (see SECURITY.md).
"""

import hashlib
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

from taxifare import storage

MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"
LATEST = "latest"
LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib")


class ModelVersionError(RuntimeError):
    """The model was pickled by another scikit-learn version; its predictions cannot be trusted."""


def library_versions() -> dict[str, str]:
    """Versions that must match between training and serving for a pickle to load identically."""
    return {"python": platform.python_version(), **{name: version(name) for name in LIBRARIES}}


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of bytes, the pin for MODEL_SHA256."""
    return hashlib.sha256(data).hexdigest()


def save_model(pipeline: Pipeline, metadata: dict, out_dir: Path) -> dict:
    """Write model.joblib and model.json (metadata + version id + sha256) to out_dir; return the metadata."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    data = buffer.getvalue()
    created = datetime.now(timezone.utc)
    digest = sha256_hex(data)
    metadata = {
        "model_version": f"{created:%Y%m%d-%H%M%S}-{digest[:8]}",
        "created_at": created.isoformat(timespec="seconds"),
        **metadata,
        "libraries": library_versions(),
        "size_bytes": len(data),
        "sha256": digest,
    }
    (out_dir / MODEL_FILE).write_bytes(data)
    (out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def upload_model(out_dir: Path, prefix: str, model_version: str) -> list[str]:
    """Copy both files to PREFIX/<version>/ and PREFIX/latest/; return the URIs written."""
    uris = []
    for folder in (model_version, LATEST):
        for name, content_type in ((MODEL_FILE, "application/octet-stream"), (METADATA_FILE, "application/json")):
            uri = f"{prefix.rstrip('/')}/{folder}/{name}"
            storage.copy_file(out_dir / name, uri, content_type)
            uris.append(uri)
    return uris


def load_pipeline(data: bytes) -> Pipeline:
    """Unpickle a model, refusing one pickled by another scikit-learn version."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return joblib.load(io.BytesIO(data))
        except InconsistentVersionWarning as mismatch:
            raise ModelVersionError(
                f"model trained with scikit-learn {mismatch.original_sklearn_version}, this server runs "
                f"{mismatch.current_sklearn_version}: retrain it, or pin the training version in requirements.txt"
            ) from None


def metadata_uri(model_uri: str) -> str:
    """model.json beside a model.joblib (local path or gs:// URI)."""
    return model_uri.rpartition("/")[0] + "/" + METADATA_FILE if "/" in model_uri else METADATA_FILE
