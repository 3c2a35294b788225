"""Start the function the way users and Cloud Run do: a real functions-framework (gunicorn) process."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.gcs_emulator import free_port

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS_FRAMEWORK = Path(sys.executable).parent / "functions-framework"


class FunctionServer:
    """functions-framework --target predict on a free loopback port, stdout captured to a file."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [str(FUNCTIONS_FRAMEWORK), "--target", "predict", "--source", str(REPO / "main.py"),
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def wait_listening(self, timeout: float = 30) -> "FunctionServer":
        """Wait until the server answers anything (the greeting needs no model)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
                    return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        raise RuntimeError(f"server did not listen within {timeout} s: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
