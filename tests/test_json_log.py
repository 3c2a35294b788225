"""The log's lines, field by field: what Cloud Logging parses and what an operator searches for."""

import json
from datetime import datetime
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder

from taxifare.serving.json_log import (
    MAX_HEADER_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_PATH_CHARS,
    log_event,
    log_request,
    severity,
    trace_field,
    truncate,
)

TRACE = "105445aa7843bc8bf206b12000100000"


def request(path: str = "/predict", method: str = "GET", headers: dict | None = None):
    return EnvironBuilder(path=path, method=method, headers=headers or {}).get_request()


def lines(capsys) -> list[dict]:
    """The JSON lines written since the last call (every line must parse)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_truncate_keeps_short_text_and_says_how_much_it_cut():
    assert truncate("abc", 3) == "abc"
    assert truncate("abcd", 3) == "abc...[1 more characters]"
    assert truncate("x" * 12_345, 10) == "x" * 10 + "...[12,335 more characters]"


@pytest.mark.parametrize(("status", "level"), [(200, "INFO"), (304, "INFO"), (399, "INFO"), (400, "WARNING"),
                                               (499, "WARNING"), (500, "ERROR"), (503, "ERROR")])
def test_severity_is_error_for_our_faults_and_warning_for_refusals(status, level):
    assert severity(status) == level


def test_a_request_line_has_cloud_loggings_fields_and_no_query_string(capsys):
    log_request(request("/predict?pickup_latitude=40.78", headers={"User-Agent": "curl/8.5"}), 200, 0.0012345,
                "v1", 3)
    expected = {"severity": "INFO", "message": "GET /predict 200",
                "httpRequest": {"requestMethod": "GET", "requestUrl": "/predict", "status": 200,
                                "latency": "0.001234s", "userAgent": "curl/8.5"},
                "model_version": "v1", "rows": 3}
    assert capsys.readouterr().out == json.dumps(expected, separators=(",", ":")) + "\n"  # compact: one short line


def test_a_refused_request_line_carries_its_error_and_no_model(capsys):
    log_request(request(method="DELETE"), 405, 0.5, None, 0, error="method not allowed")
    assert lines(capsys) == [{
        "severity": "WARNING", "message": "DELETE /predict 405",
        "httpRequest": {"requestMethod": "DELETE", "requestUrl": "/predict", "status": 405, "latency": "0.500000s",
                        "userAgent": ""},
        "model_version": None, "rows": 0, "error": "method not allowed"}]


def test_a_client_chosen_path_and_user_agent_are_cut_to_their_limits(capsys):
    log_request(request("/" + "p" * 1000, headers={"User-Agent": "u" * 1000}), 404, 0.0, None, 0)
    entry = lines(capsys)[0]
    assert entry["httpRequest"]["requestUrl"] == truncate("/" + "p" * 1000, MAX_PATH_CHARS)
    assert entry["message"] == f"GET {truncate('/' + 'p' * 1000, MAX_PATH_CHARS)} 404"
    assert entry["httpRequest"]["userAgent"] == truncate("u" * 1000, MAX_HEADER_CHARS)


@pytest.mark.parametrize(("header", "project", "expected"), [
    (f"{TRACE}/1;o=1", "my-project", f"projects/my-project/traces/{TRACE}"),
    (f"{TRACE}/1;o=1", None, TRACE),
    (TRACE, "my-project", f"projects/my-project/traces/{TRACE}"),
    (f"{TRACE}/1/2;o=1", None, TRACE),  # malformed, a slash too many: the trace id still ends at the first
    ("t" * 1000, None, truncate("t" * 1000, MAX_HEADER_CHARS)),
])
def test_the_trace_groups_the_line_under_its_request(monkeypatch, header, project, expected):
    if project:
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
    else:
        monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert trace_field(request(headers={"X-Cloud-Trace-Context": header})) == {
        "logging.googleapis.com/trace": expected}


def test_without_a_trace_header_the_line_has_no_trace_field(monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    assert trace_field(request()) == {}
    assert trace_field(request(headers={"X-Cloud-Trace-Context": ""})) == {}


def test_an_event_line_carries_its_fields_cut_to_the_message_limit(capsys):
    log_event("WARNING", "m" * (MAX_MESSAGE_CHARS + 5), model_uri="u" * (MAX_MESSAGE_CHARS + 1), attempt=2)
    assert lines(capsys) == [{"severity": "WARNING", "message": truncate("m" * (MAX_MESSAGE_CHARS + 5),
                                                                         MAX_MESSAGE_CHARS),
                              "model_uri": truncate("u" * (MAX_MESSAGE_CHARS + 1), MAX_MESSAGE_CHARS), "attempt": 2}]


def test_a_field_json_cannot_write_is_written_as_text_not_lost(capsys):
    log_event("INFO", "loaded model", path=Path("/models/model.joblib"), at=datetime(2026, 11, 30, 14, 0))
    assert lines(capsys) == [{"severity": "INFO", "message": "loaded model", "path": "/models/model.joblib",
                              "at": "2026-11-30 14:00:00"}]


def test_an_event_with_its_traceback_is_still_one_line(capsys):
    try:
        raise KeyError("boom")
    except KeyError:
        log_event("ERROR", "unexpected error", with_traceback=True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    message = json.loads(out)["message"]
    assert message.startswith("unexpected error\nTraceback (most recent call last):")
    assert message.endswith("KeyError: 'boom'\n")


def test_an_event_without_its_traceback_has_none(capsys):
    try:
        raise KeyError("boom")
    except KeyError:
        log_event("ERROR", "load failed")
    assert lines(capsys) == [{"severity": "ERROR", "message": "load failed"}]
