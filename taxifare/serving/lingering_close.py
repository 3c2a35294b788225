"""Close a connection whose request body was left unread without destroying the answer on it.

Most HTTP clients read the answer only once they have sent the whole body (Python's urllib,
requests and httpx do). When the function answers early (a 413 for a body over the cap, before
reading it) and the connection is then closed with the client's bytes still arriving, the kernel
resets it, and the reset discards our answer in the client's buffers: urllib reports "Broken pipe"
for a 30,000-ride batch and never sees the 413. RFC 9112 section 9.6 says what to do: close the
write side after the answer, keep reading (and discarding) what the client still sends for a while,
then close. This module does that on gunicorn's socket, after gunicorn has written the answer.

Bounded in every way: bytes go into one small buffer reused for every read (no memory grows), and
the discard stops when the client closes, when the declared body is read, after LINGER_IDLE_SECONDS
without a byte, after LINGER_SECONDS in all, or after LINGER_MAX_BYTES. Each lingering connection
holds a server thread (THREADS: 8 deployed) for that long: no longer than one stalled read of a body
under the cap (BODY_READ_TIMEOUT_SECONDS) already can. Under another server (the Flask test client,
werkzeug's) there is no socket to read, and nothing is done.
"""

import enum
import socket
import time
from functools import partial
from typing import BinaryIO

from werkzeug import Response

LINGER_SECONDS = 10.0
"""Total discard time: what one stalled body read may already hold a thread for
(BODY_READ_TIMEOUT_SECONDS), so lingering gives a slow client nothing it could not take anyway. It
lets a 200,000-ride batch (38 MB) through at 4 MB/s."""
LINGER_IDLE_SECONDS = 1.0
"""Silence that ends the discard. A client still uploading sends continuously; one that has stopped
is reading our answer, or gone. It is also what a client that finished sending but keeps the
connection for reuse (a requests.Session) costs a thread: gunicorn announces keep-alive whatever the
application says, and reads up to 8 KiB of the body ahead with the headers, so the end of a declared
body is rarely seen on the socket. Apache's lingering close waits 2 s; 1 s halves that cost."""
LINGER_MAX_BYTES = 64 * 1024 * 1024
"""Discard at most this much: twice the 32 MiB Cloud Run's front end lets through to the container,
and more than a mistaken 200,000-ride batch (38 MB). A client sending more is sending a file, not a
batch, and gets the reset. Discarding costs 0.5 ms of CPU per MB on loopback (35 ms for 64 MiB)."""
DISCARD_BUFFER_BYTES = 64 * 1024
"""The one buffer every read of a lingering connection lands in: the size bodies are read in."""
SOCKET_KEY = "gunicorn.socket"


class Ending(enum.Enum):
    """Why a lingering close stopped."""

    PEER_CLOSED = "the client closed"
    BODY_READ = "the declared body was read"
    IDLE = "nothing arrived for LINGER_IDLE_SECONDS"
    TIME_LIMIT = "LINGER_SECONDS passed"
    SIZE_LIMIT = "LINGER_MAX_BYTES were discarded"
    SOCKET_ERROR = "the connection failed"


def linger_after(response: Response, environ: dict) -> None:
    """Discard the rest of the request body once `response` is sent, then close (gunicorn, HTTP/1 only).

    gunicorn writes the whole answer, then calls the response's close(), which runs this. HTTP/2
    multiplexes streams on one socket: never touched here.
    """
    sock = environ.get(SOCKET_KEY)
    if sock is None or not environ.get("SERVER_PROTOCOL", "").startswith("HTTP/1"):
        return
    declared = environ.get("CONTENT_LENGTH", "")
    response.call_on_close(partial(discard_rest, sock, int(declared) if declared.isdigit() else None,
                                   environ.get("wsgi.input")))


def discard_rest(sock: socket.socket, declared: int | None, body: BinaryIO | None = None) -> Ending:
    """Half-close, read and drop what the client still sends, then shut the socket down.

    `declared` (the Content-Length) bounds the bytes still to come: the body minus whatever the
    server already took off the socket. The final shutdown makes gunicorn's own drain and keep-alive
    handling find the connection closed at once instead of waiting for bytes; a client still sending
    past a bound gets a reset. `body` (wsgi.input) is then read to its end: see drop_buffered.
    """
    limit = LINGER_MAX_BYTES if declared is None else min(declared, LINGER_MAX_BYTES)
    at_limit = Ending.BODY_READ if declared is not None and declared <= LINGER_MAX_BYTES else Ending.SIZE_LIMIT
    buffer = bytearray(DISCARD_BUFFER_BYTES)
    deadline = time.monotonic() + LINGER_SECONDS
    discarded = 0
    previous_timeout = sock.gettimeout()
    try:
        sock.shutdown(socket.SHUT_WR)  # the answer is complete: the client sees its end now
        while discarded < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Ending.TIME_LIMIT
            sock.settimeout(min(LINGER_IDLE_SECONDS, remaining))
            received = sock.recv_into(buffer, min(len(buffer), limit - discarded))
            if not received:
                return Ending.PEER_CLOSED
            discarded += received
        return at_limit
    except TimeoutError:
        return Ending.TIME_LIMIT if time.monotonic() >= deadline else Ending.IDLE
    except OSError:
        return Ending.SOCKET_ERROR
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already reset by the client
        drop_buffered(body)  # cannot wait for bytes: the socket is shut or reset, and its timeout still set
        try:
            sock.settimeout(previous_timeout)
        except OSError:
            pass


def drop_buffered(body: BinaryIO | None) -> None:
    """Read what the server holds of the body already (the socket is shut: nothing more can come).

    gunicorn's chunked-body parser keeps up to 1 MiB read ahead in a generator that references its
    reader, a reference cycle: left suspended, it outlives the connection until a full garbage
    collection, and 8 chunked uploads refused this way left the worker 15 MB larger each time.
    Read to its end, the parser finishes and its buffers go at once.
    """
    if body is None:
        return
    try:
        while body.read(DISCARD_BUFFER_BYTES):
            pass
    except Exception:  # noqa: BLE001  the end of the body, however the server says it (gunicorn's NoMoreData)
        pass
