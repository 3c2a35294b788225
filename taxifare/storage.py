"""Read and write bytes at a local path or a `gs://bucket/object` URI.

google-cloud-storage is imported on first use: a server with a local model never pays for it.

The same code serves training data, model uploads and model loading. Against an emulator, set
`STORAGE_EMULATOR_HOST`: google-cloud-storage then needs no credentials.
"""

import shutil
from pathlib import Path
from typing import BinaryIO

GCS_SCHEME = "gs://"


def is_gcs_uri(uri: str) -> bool:
    """True for `gs://...` URIs."""
    return uri.startswith(GCS_SCHEME)


def split_gcs_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> ("bucket", "a/b"); raises ValueError when either part is missing."""
    bucket, _, name = uri.removeprefix(GCS_SCHEME).partition("/")
    if not is_gcs_uri(uri) or not bucket or not name:
        raise ValueError(f"not a gs://bucket/object URI: {uri!r}")
    return bucket, name


def _blob(uri: str):
    from google.cloud import storage

    bucket, name = split_gcs_uri(uri)
    return storage.Client().bucket(bucket).blob(name)


def open_binary(uri: str) -> BinaryIO:
    """A streaming binary reader, so a multi-GB CSV is never held in memory whole."""
    if is_gcs_uri(uri):
        return _blob(uri).open("rb")
    return open(uri, "rb")


def read_bytes(uri: str, timeout: float = 60.0) -> bytes:
    """The whole object, in memory (Cloud Run's disk is RAM anyway), within about `timeout` seconds.

    A missing GCS object raises FileNotFoundError, like a missing file.
    """
    if not is_gcs_uri(uri):
        return Path(uri).read_bytes()
    from google.api_core.exceptions import NotFound
    from google.cloud.storage.retry import DEFAULT_RETRY

    try:
        return _blob(uri).download_as_bytes(timeout=timeout, retry=DEFAULT_RETRY.with_timeout(timeout))
    except NotFound:
        raise FileNotFoundError(f"no object at {uri}") from None


def copy_file(path: Path, uri: str, content_type: str = "application/octet-stream") -> None:
    """Copy a local file to a local path or a GCS object."""
    if is_gcs_uri(uri):
        _blob(uri).upload_from_filename(str(path), content_type=content_type)
    else:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, uri)
