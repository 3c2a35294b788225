"""Raw HTTP clients for hostile-traffic tests and benchmarks: what well-behaved libraries refuse to send.

Malformed chunked encoding, uploads cut short, bodies that never come, 256 MiB bodies, and bodies
built to amplify memory or CPU; plus the gunicorn worker's memory, read from /proc.
"""

import json
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from taxifare.serving.request_parsing import MAX_BODY_BYTES, MAX_JSON_CONTAINERS
from tests.servers import FunctionServer

MIB = 1024 * 1024


def exchange(port: int, head: bytes, body_parts: tuple[bytes, ...] = (), close_write: bool = False,
             timeout: float = 30) -> tuple[int, dict]:
    """Send raw bytes, optionally half-close, and read one HTTP response: (status, JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        return read_response(sock)


def read_response(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), json.loads(body[:length])


def post_head(length: int | None = None, chunked: bool = False, content_type: str = "application/json") -> bytes:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    return f"POST / HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()


def worker_memory_mb(server: FunctionServer) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the gunicorn worker, in MB."""
    worker = next(Path(f"/proc/{server.process.pid}/task").glob("*/children")).read_text().split()[0]
    status = Path(f"/proc/{worker}/status").read_text()
    return tuple(int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024
                 for field in ("VmRSS", "VmHWM"))


def send_huge(port: int, chunked: bool, size: int = 256 * MIB) -> int:
    """Stream `size` bytes of JSON-ish filler while reading the answer; the status the server sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(post_head(chunked=True) if chunked else post_head(length=size))
        answers: list[int] = []
        reader = threading.Thread(target=lambda: answers.append(read_response(sock)[0]), daemon=True)
        reader.start()
        block = b" " * MIB
        try:
            for _ in range(size // MIB):
                sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block)
                if answers:
                    break
        except OSError:
            pass  # the server answered and closed the connection: it will not read 256 MiB
        reader.join(30)
        return answers[0] if answers else 0


WORST_CASES = {
    "empty-object batch": ("application/json",
                           lambda: b'{"instances":[' + b"{}," * (MAX_BODY_BYTES // 3 - 10) + b"{}]}"),
    "many-field form": ("application/x-www-form-urlencoded", lambda: b"a&" * (MAX_BODY_BYTES // 2 - 1)),
    "deep JSON": ("application/json", lambda: b"[" * (MAX_JSON_CONTAINERS - 10) + b"]" * (MAX_JSON_CONTAINERS - 10)),
    "many numbers": ("application/json", lambda: b"[" + b"1," * (MAX_BODY_BYTES // 2 - 10) + b"1]"),
}


def post_body(port: int, content_type: str, body: bytes) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def at_once(count: int, call: Callable[..., int], *args: object) -> list[int]:
    """`call(*args)` `count` times concurrently; the results in order."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: call(*args), range(count)))
