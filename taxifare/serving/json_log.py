"""Structured JSON log lines on stdout, which Cloud Logging parses into fields.

One line per request: severity, method, path (never the query string: it holds coordinates),
status, latency, rows priced, model version and the trace id from X-Cloud-Trace-Context. Model
loading events use the same format, so nothing arrives as unparsed multi-line text.
"""

import json
import os
import sys
import traceback

from flask import Request

TRACE_HEADER = "X-Cloud-Trace-Context"
PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"
MAX_PATH_CHARS = 512
MAX_HEADER_CHARS = 256
MAX_MESSAGE_CHARS = 16 * 1024
"""Cloud Logging refuses entries over 256 KB: a client-chosen path or header must never make one."""


def truncate(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with a marker saying how much was left out."""
    return text if len(text) <= limit else f"{text[:limit]}...[{len(text) - limit:,} more characters]"


def severity(status: int) -> str:
    """ERROR for our faults, WARNING for refused requests, INFO otherwise."""
    return "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"


def trace_field(request: Request) -> dict[str, str]:
    """Cloud Logging's trace field, so the line groups under its request in the console."""
    header = request.headers.get(TRACE_HEADER)
    if not header:
        return {}
    trace_id = truncate(header.split("/", 1)[0], MAX_HEADER_CHARS)
    project = os.environ.get(PROJECT_ENV)
    return {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace_id}" if project else trace_id}


def log_request(request: Request, status: int, seconds: float, model_version: str | None, rows: int,
                error: str | None = None) -> None:
    """Write the request's line (path and user agent cut short when a client makes them long)."""
    method, path = truncate(request.method, MAX_HEADER_CHARS), truncate(request.path, MAX_PATH_CHARS)
    entry = {
        "severity": severity(status),
        "message": f"{method} {path} {status}",
        "httpRequest": {"requestMethod": method, "requestUrl": path, "status": status, "latency": f"{seconds:.6f}s",
                        "userAgent": truncate(request.headers.get("User-Agent", ""), MAX_HEADER_CHARS)},
        "model_version": model_version,
        "rows": rows,
        **trace_field(request),
    }
    if error:
        entry["error"] = error
    _write(entry)


def log_event(level: str, message: str, with_traceback: bool = False, **fields: object) -> None:
    """A non-request event (model loaded, load failed); the traceback, if asked, rides in the message."""
    if with_traceback:
        message = f"{message}\n{traceback.format_exc()}"
    _write({"severity": level, "message": truncate(message, MAX_MESSAGE_CHARS),
            **{name: truncate(value, MAX_MESSAGE_CHARS) if isinstance(value, str) else value
               for name, value in fields.items()}})


def _write(entry: dict) -> None:
    """One write call per line, so threads never interleave within a line."""
    sys.stdout.write(json.dumps(entry, separators=(",", ":"), default=str) + "\n")
