"""Read and write bytes at a local path or a `gs://bucket/object` URI.

Model reads are bounded: one deadline for the whole read (not per network operation, so a
trickling server cannot stretch it) and a size cap enforced while reading. A local path must be
a regular file: a FIFO or a device is refused before it is read (local paths are real in the
cloud: Cloud Storage FUSE volume mounts).

google-cloud-storage is imported on first use: a server with a local model never pays for it.
Against an emulator, set `STORAGE_EMULATOR_HOST`: the client then needs no credentials. The same
code streams training data and uploads models.
"""

import os
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

GCS_SCHEME = "gs://"
READ_CHUNK_BYTES = 1 << 20
DEFAULT_MAX_BYTES = 1 << 30


class ObjectTooLarge(ValueError):
    """The object is bigger than the caller's cap."""


class NotARegularFile(OSError):
    """A local path names a FIFO, a device or a socket: reading it could block or never end."""


class NoCredentials(PermissionError):
    """Cloud Storage needs Google credentials and none were found."""


CREDENTIALS_HINT = ("run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a "
                    "service account key)")


@contextmanager
def gcs_errors(uri: str) -> Iterator[None]:
    """Turn the storage client's errors into ones that name the URI and what to do."""
    from google.api_core import exceptions
    from google.auth.exceptions import DefaultCredentialsError

    try:
        yield
    except DefaultCredentialsError:
        raise NoCredentials(f"no Google credentials to access {uri}: {CREDENTIALS_HINT}") from None
    except exceptions.NotFound:
        raise FileNotFoundError(f"no such object or bucket: {uri}") from None
    except exceptions.Forbidden as error:
        raise PermissionError(f"access to {uri} denied: {error.message}") from None


def is_gcs_uri(uri: str) -> bool:
    """True for `gs://...` URIs."""
    return uri.startswith(GCS_SCHEME)


def split_gcs_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> ("bucket", "a/b"); raises ValueError when either part is missing."""
    bucket, _, name = uri.removeprefix(GCS_SCHEME).partition("/")
    if not is_gcs_uri(uri) or not bucket or not name:
        raise ValueError(f"not a gs://bucket/object URI: {uri!r}")
    return bucket, name


def import_client(uri: str) -> None:
    """Import what reading `uri` will need, now, in the calling thread.

    A background reader then imports nothing: an import that registers fork handlers while
    gunicorn is forking breaks them ("RuntimeError: release unlocked lock" at os.fork()).
    """
    if is_gcs_uri(uri):
        import google.api_core.exceptions  # noqa: F401
        import google.auth.exceptions  # noqa: F401
        import google.cloud.storage  # noqa: F401
        import google.cloud.storage.retry  # noqa: F401


def _blob(uri: str):
    from google.cloud import storage

    bucket, name = split_gcs_uri(uri)
    return storage.Client().bucket(bucket).blob(name)


def open_binary(uri: str) -> BinaryIO:
    """A streaming binary reader, so a multi-GB CSV is never held in memory whole."""
    if is_gcs_uri(uri):
        with gcs_errors(uri):
            blob = _blob(uri)
            blob.reload()  # fails here, not in the caller's CSV parser, when the object is missing or forbidden
            return blob.open("rb")
    return open(uri, "rb")


class _BoundedBuffer:
    """A write target that refuses more than `max_bytes` or writes after `deadline` (time.monotonic)."""

    def __init__(self, uri: str, max_bytes: int, deadline: float):
        self.uri, self.max_bytes, self.deadline = uri, max_bytes, deadline
        self.chunks: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise ObjectTooLarge(f"{self.uri} is over the {self.max_bytes:,}-byte limit")
        if time.monotonic() > self.deadline:
            raise TimeoutError(f"reading {self.uri} took longer than its deadline")
        self.chunks.append(bytes(data))
        return len(data)

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)


def read_bytes(uri: str, timeout: float = 60.0, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The whole object, in memory (Cloud Run's disk is RAM anyway), within `timeout` seconds.

    Raises FileNotFoundError (missing file or object), ObjectTooLarge, NotARegularFile,
    TimeoutError, or the storage client's own errors.
    """
    deadline = time.monotonic() + timeout
    sink = _BoundedBuffer(uri, max_bytes, deadline)
    if is_gcs_uri(uri):
        _download(uri, sink, deadline)
    else:
        _read_regular_file(Path(uri), sink)
    return sink.getvalue()


def _download(uri: str, sink: _BoundedBuffer, deadline: float) -> None:
    from google.cloud.storage.retry import DEFAULT_RETRY

    remaining = max(deadline - time.monotonic(), 0.001)
    with gcs_errors(uri):
        _blob(uri).download_to_file(sink, timeout=remaining, retry=DEFAULT_RETRY.with_timeout(remaining))


def _read_regular_file(path: Path, sink: _BoundedBuffer) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait for a writer
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(f"{path} is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(f"{path} is not a regular file")
        if info.st_size > sink.max_bytes:
            raise ObjectTooLarge(f"{path} is over the {sink.max_bytes:,}-byte limit")
        os.set_blocking(fd, True)
        while chunk := os.read(fd, READ_CHUNK_BYTES):
            sink.write(chunk)
    finally:
        os.close(fd)


def copy_file(path: Path, uri: str, content_type: str = "application/octet-stream") -> None:
    """Copy a local file to a local path or a GCS object."""
    if is_gcs_uri(uri):
        with gcs_errors(uri):
            _blob(uri).upload_from_filename(str(path), content_type=content_type)
    else:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, uri)


def check_writable(prefix: str) -> None:
    """Fail now, not after a long training run, if files cannot be written under `prefix`."""
    if not is_gcs_uri(prefix):
        Path(prefix).mkdir(parents=True, exist_ok=True)
        return
    from google.cloud import storage

    bucket = prefix.removeprefix(GCS_SCHEME).partition("/")[0]
    if not bucket:
        raise ValueError(f"not a gs://bucket/prefix URI: {prefix!r}")
    with gcs_errors(prefix):
        if not storage.Client().bucket(bucket).exists():
            raise FileNotFoundError(f"no bucket gs://{bucket} for {prefix}: create it (./deploy.sh model does)")
