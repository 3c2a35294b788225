"""Load the model once per instance, in the background, from a local path or GCS, and survive failures.

- One load at a time, in one background thread. Requests never read storage themselves: they
  wait (at most the load deadline) for the attempt in flight, so a cold-start storm loads once.
- The first attempt starts when main.py is imported, overlapping the server's start-up. gunicorn
  then forks its worker: the fork waits for an attempt in flight (bounded by its deadline), so the
  worker inherits the loaded model, or the failure and its backoff, and never loads it again.
  Everything the loader needs is imported before it starts: an import in the loader thread
  while gunicorn forks would break other modules' fork handlers.
- Each attempt has one deadline for model.joblib and model.json together and a size cap
  (MODEL_MAX_BYTES) enforced while reading; a FIFO or a device fails at once.
- Failure (missing object, storage down or slow, oversized, corrupt bytes, a file naming code,
  a sha256 mismatch) gives ModelUnavailable with a public reason and a Retry-After; the next
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
from dataclasses import dataclass, field
from functools import cached_property

from taxifare.model import loading, storage
from taxifare.model.fare_model import FareModel
from taxifare.serving.json_log import log_event

MODEL_URI_ENV = "MODEL_URI"
MODEL_SHA256_ENV = "MODEL_SHA256"
DOWNLOAD_TIMEOUT_ENV = "MODEL_DOWNLOAD_TIMEOUT_SECONDS"
MAX_BYTES_ENV = "MODEL_MAX_BYTES"
DEFAULT_MODEL_URI = "models/model.joblib"
DOWNLOAD_TIMEOUT_SECONDS = 20.0
MAX_BYTES = 64 * 1024 * 1024
"""A compiled model is well under 8 MB; the cap only stops a wrong MODEL_URI from filling memory."""
UNPICKLE_SECONDS = 5.0
"""What a request waits beyond the download deadline, for unpickling and checking the model."""
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
LOADER_THREAD_NAME = "model-loader"


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
    """A ready model with its metadata (model.json, or what we could derive)."""

    model: FareModel
    metadata: dict

    @property
    def version(self) -> str:
        """model.json's version id (or one derived from the sha256 when model.json is absent)."""
        return self.metadata["model_version"]

    @cached_property
    def area_geojson(self) -> dict | None:
        """The model's service area as a GeoJSON Feature (traced on first use), or None if it has none."""
        area = self.model.service_area
        if area is None:
            return None
        return area.to_geojson({"model_version": self.version, "cell_degrees": [area.cell_lon, area.cell_lat],
                                "description": "where this model prices rides: a pickup or dropoff outside is "
                                               "refused (400)"})


@dataclass(eq=False)
class _Attempt:
    """One load in the background: done once it succeeded or failed (then `failure` says why)."""

    deadline: float
    done: threading.Event = field(default_factory=threading.Event)
    failure: ModelUnavailable | None = None


_STORES: "weakref.WeakSet[ModelStore]" = weakref.WeakSet()
"""Stores that started loading, for the fork handlers below."""


def _settle_before_fork() -> None:
    for store in list(_STORES):
        store._wait_for_attempt_in_flight()


def _restart_in_child() -> None:
    for store in list(_STORES):
        store._after_fork_in_child()


os.register_at_fork(before=_settle_before_fork, after_in_child=_restart_in_child)


class ModelStore:
    """The instance's single model, loaded in the background and retried with backoff on failure."""

    def __init__(self, uri: str, sha256: str | None = None, download_timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
                 max_bytes: int = MAX_BYTES):
        self.uri = uri
        self.sha256 = sha256.strip().lower() if sha256 else None
        self.download_timeout = download_timeout
        self.max_bytes = max_bytes
        self._model: LoadedModel | None = None
        self._attempt: _Attempt | None = None
        self._guard = threading.Lock()  # held for bookkeeping only, never while reading storage
        self._failures = 0
        self._next_attempt = 0.0
        self._reason = "model not loaded yet"

    @classmethod
    def from_environment(cls) -> "ModelStore":
        """MODEL_URI (default models/model.joblib), the optional MODEL_SHA256 pin, the deadline and size cap."""
        return cls(os.environ.get(MODEL_URI_ENV) or DEFAULT_MODEL_URI, os.environ.get(MODEL_SHA256_ENV) or None,
                   _positive_number(DOWNLOAD_TIMEOUT_ENV, DOWNLOAD_TIMEOUT_SECONDS, float),
                   _positive_number(MAX_BYTES_ENV, MAX_BYTES, int))

    @property
    def loaded(self) -> LoadedModel | None:
        """The model if it is already in memory; never waits or loads."""
        return self._model

    def start_loading(self) -> None:
        """Begin loading in the background, unless loaded or an attempt is in flight."""
        with self._guard:
            if self._model is None and not self._in_flight():
                self._start_attempt()

    def get(self) -> LoadedModel:
        """The model, waiting for (or starting) a load if needed; ModelUnavailable if it cannot be served now."""
        model = self._model
        if model is not None:
            return model
        with self._guard:
            if self._model is not None:
                return self._model
            attempt = self._attempt if self._in_flight() else None
            if attempt is None:
                wait = self._next_attempt - time.monotonic()
                if wait > 0:
                    raise ModelUnavailable(self._reason, retry_after=math.ceil(wait))
                attempt = self._start_attempt()
        if not attempt.done.wait(max(attempt.deadline - time.monotonic(), 0) + UNPICKLE_SECONDS):
            raise ModelUnavailable("model is still loading", retry_after=1)
        if self._model is not None:
            return self._model
        failure = attempt.failure
        wait = math.ceil(max(self._next_attempt - time.monotonic(), 1))
        raise ModelUnavailable(failure.reason, retry_after=wait, detail=failure.detail)

    def _in_flight(self) -> bool:
        return self._attempt is not None and not self._attempt.done.is_set()

    def _start_attempt(self) -> _Attempt:
        """Called with the guard held: a new attempt and its thread (which imports nothing)."""
        storage.import_client(self.uri)
        _STORES.add(self)
        attempt = _Attempt(deadline=time.monotonic() + self.download_timeout)
        self._attempt = attempt
        threading.Thread(target=self._run, args=(attempt,), name=LOADER_THREAD_NAME, daemon=True).start()
        return attempt

    def _run(self, attempt: _Attempt) -> None:
        """The loader thread: load, record the outcome, wake the waiting requests."""
        model, failure = None, None
        try:
            model = self._load(attempt.deadline)
        except ModelUnavailable as known:
            failure = known
        except Exception:  # a bug or an environment fault: still a 503 and a retry, never a crash
            log_event("ERROR", f"unexpected error loading the model from {self.uri}", with_traceback=True)
            failure = ModelUnavailable("model could not be loaded (server error)")
        with self._guard:
            if model is not None:
                self._model, self._failures = model, 0
            else:
                self._failures += 1
                backoff = backoff_seconds(self._failures)
                self._next_attempt = time.monotonic() + backoff
                self._reason = failure.reason
                log_event("ERROR", f"model unavailable: {failure.reason}", model_uri=self.uri, detail=failure.detail,
                          failures=self._failures, retry_in_seconds=backoff)
            attempt.failure = failure
            attempt.done.set()
        if model is not None:
            gc.freeze()  # imports + model are permanent: full collections skip them (no ~50 ms pauses)

    def _load(self, deadline: float) -> LoadedModel:
        started = time.perf_counter()
        data = self._fetch(self.uri, "model", deadline)
        digest = loading.sha256_hex(data)
        if self.sha256 and digest != self.sha256:
            raise ModelUnavailable(f"model bytes do not match the {MODEL_SHA256_ENV} pin; refusing to load",
                                   detail=f"sha256 {digest}, pinned {self.sha256}")
        try:
            model = loading.loads(data)
        except loading.ModelFileError as refused:  # its message is safe to show; its cause is for the log
            raise ModelUnavailable(str(refused), detail=repr(refused.__cause__ or refused)) from None
        metadata = self._metadata(loading.metadata_uri(self.uri), digest, deadline)
        log_event("INFO", f"loaded model {metadata['model_version']} from {self.uri}",
                  model_version=metadata["model_version"], size_bytes=len(data),
                  load_seconds=round(time.perf_counter() - started, 3))
        return LoadedModel(model=model, metadata=metadata)

    def _fetch(self, uri: str, what: str, deadline: float) -> bytes:
        try:
            return storage.read_bytes(uri, timeout=max(deadline - time.monotonic(), 0.001), max_bytes=self.max_bytes)
        except Exception as error:  # GCS client errors, refused connections, credentials, a directory, ...
            raise ModelUnavailable(self._storage_reason(error, what), detail=f"{uri}: {error!r}") from None

    def _storage_reason(self, error: Exception, what: str) -> str:
        """What went wrong reading `what`, in words safe to show callers."""
        if isinstance(error, FileNotFoundError):
            return f"{what} file not found at the configured {MODEL_URI_ENV}"
        if isinstance(error, storage.ObjectTooLarge):
            return f"{what} file is over the {MAX_BYTES_ENV} limit of {self.max_bytes:,} bytes"
        if isinstance(error, storage.NotARegularFile):
            return f"{what} path is not a regular file"
        if isinstance(error, TimeoutError):
            return f"{what} download took longer than {DOWNLOAD_TIMEOUT_ENV} ({self.download_timeout:g} s)"
        return f"{what} storage error ({type(error).__name__})"

    def _metadata(self, uri: str, digest: str, deadline: float) -> dict:
        """model.json beside the model when it describes these exact bytes, else the essentials."""
        derived = {"model_version": f"sha256-{digest[:12]}", "sha256": digest}
        try:
            metadata = json.loads(self._fetch(uri, "metadata", deadline))
        except (ModelUnavailable, ValueError) as error:
            log_event("WARNING", f"no usable model.json beside the model: {error}", metadata_uri=uri)
            return derived
        if not isinstance(metadata, dict) or metadata.get("sha256") != digest:
            log_event("WARNING", f"ignoring {uri}: it describes other model bytes")
            return derived
        return {**derived, **metadata}

    def _wait_for_attempt_in_flight(self) -> None:
        """Before a fork: let the load finish (it is bounded by its deadline) so the child inherits it."""
        attempt = self._attempt
        if attempt is not None:
            attempt.done.wait(max(attempt.deadline - time.monotonic(), 0) + UNPICKLE_SECONDS)

    def _after_fork_in_child(self) -> None:
        """In the forked worker: fresh locks; a load still in flight (past its deadline) starts over."""
        self._guard = threading.Lock()
        if self._in_flight():
            log_event("WARNING", "the model load in flight at fork outlived its deadline: loading again",
                      model_uri=self.uri)
            self._attempt = None
            self.start_loading()


def backoff_seconds(failures: int) -> float:
    """How long to wait before the next attempt after `failures` failed ones in a row: 1, 2, 4 ... 30 s."""
    return min(FIRST_BACKOFF_SECONDS * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)


def _positive_number(name: str, default: float, kind: type) -> float:
    """A positive, finite number from the environment variable `name`, or `default`.

    ValueError, one line naming the variable, otherwise: main.py builds the store at import, so a
    deployment with a bad value fails to start (nan would make the load deadline never fire).
    """
    text = os.environ.get(name) or str(default)
    try:
        value = kind(text)
    except ValueError:
        value = 0
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite {'whole ' if kind is int else ''}number, got {text!r}")
    return value

