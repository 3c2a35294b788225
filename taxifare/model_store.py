"""Load the model once per instance, lazily, from a local path or GCS, and survive failures.

- One download, even when many threads hit a cold instance: a lock serialises loading and
  everyone else waits (up to two download deadlines plus 5 s) for the result.
- Loading starts in a background thread at import, so the download overlaps the interpreter's
  imports; the first request joins it instead of starting another.
- Failure (missing object, GCS down or slow, corrupt bytes, sha256 mismatch, another
  scikit-learn version) gives ModelUnavailable with a public reason and a Retry-After; the next
  attempt waits out a doubling backoff (1 s ... 30 s), so the instance recovers without restart.
- Once loaded, the model is kept: deleting or changing the object later changes nothing.
"""

import gc
import json
import math
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taxifare import storage
from taxifare.json_log import log_event

if TYPE_CHECKING:
    from taxifare.predictor import FarePredictor

MODEL_URI_ENV = "MODEL_URI"
MODEL_SHA256_ENV = "MODEL_SHA256"
DOWNLOAD_TIMEOUT_ENV = "MODEL_DOWNLOAD_TIMEOUT_SECONDS"
DEFAULT_MODEL_URI = "models/model.joblib"
DOWNLOAD_TIMEOUT_SECONDS = 20.0
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


_LOADING_STORES: "weakref.WeakSet[ModelStore]" = weakref.WeakSet()
"""Stores that started a background load, for the fork hooks below."""


def _settle_stores_before_fork() -> None:
    for store in list(_LOADING_STORES):
        store._settle_before_fork()


def _restart_stores_in_child() -> None:
    for store in list(_LOADING_STORES):
        store._restart_in_child()


os.register_at_fork(before=_settle_stores_before_fork, after_in_child=_restart_stores_in_child)


class ModelUnavailable(Exception):
    """The model cannot be served right now.

    `reason` is safe to show callers (no paths, no internals); `detail` is for the operator's log.
    """

    def __init__(self, reason: str, retry_after: int = 0, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.detail = detail


@dataclass(frozen=True)
class LoadedModel:
    """A ready predictor with its metadata (model.json, or what we could derive)."""

    predictor: "FarePredictor"
    metadata: dict

    @property
    def version(self) -> str:
        """model.json's version id (or one derived from the sha256 when model.json is absent)."""
        return self.metadata["model_version"]


class ModelStore:
    """The instance's single model, loaded on first need and retried with backoff on failure."""

    def __init__(self, uri: str, sha256: str | None = None, download_timeout: float = DOWNLOAD_TIMEOUT_SECONDS):
        self.uri = uri
        self.sha256 = sha256.strip().lower() if sha256 else None
        self.download_timeout = download_timeout
        self.load_wait = 2 * download_timeout + 5  # model.joblib and model.json, then unpickling
        self._model: LoadedModel | None = None
        self._lock = threading.Lock()
        self._failures = 0
        self._next_attempt = 0.0
        self._reason = "model not loaded yet"
        self._loader: threading.Thread | None = None

    @classmethod
    def from_environment(cls) -> "ModelStore":
        """MODEL_URI (default models/model.joblib), the optional MODEL_SHA256 pin, the download deadline."""
        timeout = os.environ.get(DOWNLOAD_TIMEOUT_ENV) or str(DOWNLOAD_TIMEOUT_SECONDS)
        try:
            download_timeout = float(timeout)
        except ValueError:
            raise ValueError(f"{DOWNLOAD_TIMEOUT_ENV} must be a number of seconds, got {timeout!r}") from None
        return cls(os.environ.get(MODEL_URI_ENV) or DEFAULT_MODEL_URI, os.environ.get(MODEL_SHA256_ENV) or None,
                   download_timeout)

    def start_loading(self) -> None:
        """Begin loading in the background; get() will wait for this same attempt.

        gunicorn imports main.py in its master process and then forks the worker: the thread
        does not survive the fork and its lock would stay held, so the child starts afresh.
        """
        _LOADING_STORES.add(self)
        self._loader = threading.Thread(target=self._load_quietly, name="model-loader", daemon=True)
        self._loader.start()

    def _settle_before_fork(self) -> None:
        """Let a running load finish (imports included) so the child inherits a consistent process."""
        if self._loader is not None and self._loader.is_alive():
            self._loader.join(self.load_wait)

    def _restart_in_child(self) -> None:
        """In the forked worker: a fresh lock (the parent's may look held) and a load if none finished."""
        self._lock = threading.Lock()
        if self._model is None:
            self._failures, self._next_attempt = 0, 0.0
            self.start_loading()

    @property
    def loaded(self) -> LoadedModel | None:
        """The model if it is already in memory; never waits or loads."""
        return self._model

    def get(self) -> LoadedModel:
        """The model, loading it if needed; ModelUnavailable if it cannot be served now."""
        model = self._model
        if model is not None:
            return model
        if not self._lock.acquire(timeout=self.load_wait):
            raise ModelUnavailable("model is still loading", retry_after=1)
        try:
            if self._model is None:
                self._attempt()
            return self._model
        finally:
            self._lock.release()

    def _load_quietly(self) -> None:
        try:
            self.get()
        except ModelUnavailable:
            pass

    def _attempt(self) -> None:
        """Load now unless backing off; called with the lock held."""
        wait = self._next_attempt - time.monotonic()
        if wait > 0:
            raise ModelUnavailable(self._reason, retry_after=math.ceil(wait))
        try:
            self._model = self._load()
            self._failures = 0
            gc.freeze()  # imports + model are permanent: full collections skip them (no ~50 ms pauses)
            return
        except ModelUnavailable as known:
            failure = known
        except Exception:  # a bug or an environment fault: still a 503 and a retry, never a crash
            log_event("ERROR", f"unexpected error loading the model from {self.uri}", with_traceback=True)
            failure = ModelUnavailable("model could not be loaded (server error)")
        self._failures += 1
        backoff = min(FIRST_BACKOFF_SECONDS * 2 ** (self._failures - 1), MAX_BACKOFF_SECONDS)
        self._next_attempt = time.monotonic() + backoff
        self._reason = failure.reason
        failure.retry_after = math.ceil(backoff)
        log_event("ERROR", f"model unavailable: {failure.reason}", model_uri=self.uri, detail=failure.detail,
                  failures=self._failures, retry_in_seconds=backoff)
        raise failure

    def _load(self) -> LoadedModel:
        # Imported here, in the loader thread, so they overlap main.py's own imports.
        from taxifare.artifacts import ModelVersionError, load_pipeline, metadata_uri, sha256_hex
        from taxifare.predictor import FarePredictor

        started = time.perf_counter()
        data = self._fetch(self.uri, "model")
        digest = sha256_hex(data)
        if self.sha256 and digest != self.sha256:
            raise ModelUnavailable(f"model bytes do not match the {MODEL_SHA256_ENV} pin; refusing to load",
                                   detail=f"sha256 {digest}, pinned {self.sha256}")
        try:
            predictor = FarePredictor(load_pipeline(data))
        except ModelVersionError as error:
            raise ModelUnavailable(str(error)) from None
        except Exception as error:  # unpickling garbage can raise almost anything
            raise ModelUnavailable("model file is corrupt or not a taxifare model", detail=repr(error)) from None
        metadata = self._metadata(metadata_uri(self.uri), digest)
        log_event("INFO", f"loaded model {metadata['model_version']} from {self.uri}", model_version=metadata["model_version"],
                  size_bytes=len(data), load_seconds=round(time.perf_counter() - started, 3))
        return LoadedModel(predictor=predictor, metadata=metadata)

    def _fetch(self, uri: str, what: str) -> bytes:
        try:
            return storage.read_bytes(uri, timeout=self.download_timeout)
        except FileNotFoundError:
            reason = f"{what} file not found at the configured {MODEL_URI_ENV}"
            detail = f"no {uri}"
        except Exception as error:  # GCS client errors, timeouts, refused connections, credentials
            reason = f"{what} storage error ({type(error).__name__})"
            detail = f"{uri}: {error!r}"
        raise ModelUnavailable(reason, detail=detail)

    def _metadata(self, uri: str, digest: str) -> dict:
        """model.json beside the model when it describes these exact bytes, else the essentials."""
        derived = {"model_version": f"sha256-{digest[:12]}", "sha256": digest}
        try:
            metadata = json.loads(self._fetch(uri, "metadata"))
        except (ModelUnavailable, ValueError) as error:
            log_event("WARNING", f"no usable model.json beside the model: {error}", metadata_uri=uri)
            return derived
        if not isinstance(metadata, dict) or metadata.get("sha256") != digest:
            log_event("WARNING", f"ignoring {uri}: it describes other model bytes")
            return derived
        return {**derived, **metadata}
