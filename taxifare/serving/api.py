"""The HTTP API: which path and method go where, and how each outcome is answered.

Read top to bottom: `handle` (log + safety net) -> `route` -> one handler per endpoint.
Parsing lives in request_parsing.py, field checks in validation.py, the model in model_store.py,
the /docs page and its files in docs_page.py.
"""

import re
import time

import numpy as np
from flask import Request, Response

from taxifare.model.fare_model import FareModel
from taxifare.serving.docs_page import boroughs_asset, docs_html, leaflet_asset
from taxifare.serving.json_log import log_event, log_request
from taxifare.serving.lingering_close import linger_after
from taxifare.serving.model_store import ModelStore, ModelUnavailable
from taxifare.serving.openapi import openapi_spec
from taxifare.serving.request_parsing import RANGE_FIELD, RequestError, Shape, finish_body, parse_ride_request
from taxifare.serving.responses import (
    GEOJSON_TYPE,
    MODEL_VERSION_HEADER,
    error_response,
    html_response,
    json_response,
    preflight_response,
)
from taxifare.serving.ride_time import OffsetTable
from taxifare.serving.validation import (
    AREA_PATH,
    MAX_REPORTED_ERRORS,
    InvalidRides,
    check_service_area,
    validate_records,
)

GREETING = {"greeting": "Hello"}
UNAVAILABLE = "model unavailable, retry shortly"
PREDICT_PATHS = {"/", "/predict"}
KSERVE_PATH = re.compile(r"/v1/models/[\w.-]+:predict")
READ_METHODS = {"GET", "HEAD"}
PREDICT_METHODS = READ_METHODS | {"POST"}
PREDICT_ALLOW, PAGE_ALLOW = "GET, POST, OPTIONS", "GET, OPTIONS"
SHOWN_PATH_CHARS = 100
"""An error message quotes at most this much of a path the router does not know (the log line cuts its own)."""


def handle(request: Request, store: ModelStore) -> Response:
    """Answer one request and log it; an unexpected error becomes a plain 500, never a trace.

    Once the model is loaded every answer carries X-Model-Version, set here so that no handler can forget it."""
    started = time.perf_counter()
    rows, error = 0, None
    try:
        response, rows = route(request, store)
    except Exception as unexpected:  # the safety net: every known failure is answered before here
        log_event("ERROR", f"unhandled error on {request.method} {request.path}", with_traceback=True)
        response, error = error_response(500, "internal error"), type(unexpected).__name__
    finally:
        body_left = finish_body(request)
    if body_left:  # refused before it was read (a 413), or never wanted: let the client finish, then close
        linger_after(response, request.environ)
    model = store.loaded
    if model is not None:
        response.headers.add(MODEL_VERSION_HEADER, model.version)
    log_request(request, response.status_code, time.perf_counter() - started, model and model.version, rows, error)
    return response


def route(request: Request, store: ModelStore) -> tuple[Response, int]:
    """Dispatch on path and method; returns the response and the number of rides priced."""
    method, path = request.method, request.path
    if path in PREDICT_PATHS or KSERVE_PATH.fullmatch(path):
        if method == "OPTIONS":
            return preflight_response(PREDICT_ALLOW), 0
        if method not in PREDICT_METHODS:
            return not_allowed(method, path, PREDICT_ALLOW), 0
        if path == "/" and method in READ_METHODS and not request.args:
            return json_response(GREETING), 0
        return predict(request, store)
    page = PAGES.get(path) or DOCS_ASSETS.get(path)
    if page is None:
        return error_response(404, f"no such endpoint: {path[:SHOWN_PATH_CHARS]}",
                              {"path": "see /docs for the API"}), 0
    if method == "OPTIONS":
        return preflight_response(PAGE_ALLOW), 0
    if method not in READ_METHODS:
        return not_allowed(method, path, PAGE_ALLOW), 0
    return page(store), 0


def not_allowed(method: str, path: str, allow: str) -> Response:
    """405 naming the methods that work, in the Allow header too."""
    return error_response(405, f"method {method} is not allowed on {path[:SHOWN_PATH_CHARS]}",
                          {"method": f"use {allow}"}, {"Allow": allow})


def predict(request: Request, store: ModelStore) -> tuple[Response, int]:
    """Price the rides of a request in one vectorised call and answer in the caller's shape."""
    shape = Shape.SINGLE
    try:
        rides = parse_ride_request(request)
        shape = rides.shape
        columns = validate_records(rides.records, rides.row_label, new_york_table(store))
        loaded = store.get()
        check_service_area(loaded.model.service_area, columns, rides.row_label)
        answers = price(loaded.model, columns, rides.coverage, rides.explain, shape)
    except RequestError as refused:
        return refusal(refused.status, refused.message, refused.details, refused.shape,
                       refused_rows=refused.refused_rows), 0
    except InvalidRides as invalid:
        return refusal(400, "invalid ride fields", invalid.details, shape, refused_rows=invalid.refused_rows), 0
    except ModelUnavailable as down:
        return refusal(503, UNAVAILABLE, {"model": down.reason}, shape, retry_after(down)), 0
    if shape is not Shape.SINGLE:
        body = {shape.value: answers}
    else:  # one ride: {"fare": x}, or the object of the fare and what the options add to it
        body = answers[0] if rides.coverage is not None or rides.explain else {shape.value: answers[0]}
    return json_response(body), len(answers)


def new_york_table(store: ModelStore) -> OffsetTable | None:
    """The serving model's New York offset table for a batch's naive times; None until a model is loaded."""
    loaded = store.loaded
    return None if loaded is None else loaded.model.features.offset_table


def price(model: FareModel, columns: dict[str, np.ndarray], coverage: int | None, explain: bool,
          shape: Shape) -> list:
    """Each ride's fare in dollars to the cent; with options, {"fare", "range": {"coverage", "low", "high"},
    "breakdown": {"base", group: dollars, ...}} (the range, the breakdown or both)."""
    if coverage is None and not explain:
        return np.round(model.predict(columns), 2).tolist()
    if coverage is not None and coverage not in model.range_coverages:
        offered = ", ".join(map(str, model.range_coverages)) or "none"
        raise RequestError(400, "invalid range", {RANGE_FIELD: f"no {coverage}% range: this model offers {offered}"},
                           shape)
    explanation = model.explain(columns) if explain else None
    if coverage is None:
        answers = [{"fare": fare} for fare in np.round(explanation.fares, 2).tolist()]
    else:
        fares, low, high = (np.round(values, 2).tolist() for values in model.predict_range(columns, coverage))
        answers = [{"fare": fare, "range": {"coverage": coverage, "low": lo, "high": hi}}
                   for fare, lo, hi in zip(fares, low, high, strict=True)]
    if explanation is not None:  # the cents of each breakdown add up to its fare's, as shown
        for answer, breakdown in zip(answers, explanation.breakdowns(), strict=True):
            answer["breakdown"] = breakdown
    return answers


def retry_after(down: ModelUnavailable) -> dict[str, str]:
    """When to come back: the store's backoff, at least a second."""
    return {"Retry-After": str(max(down.retry_after, 1))}


def refusal(status: int, message: str, details: dict[str, str], shape: Shape,
            headers: dict[str, str] | None = None, refused_rows: int | None = None) -> Response:
    """An error in the caller's convention: BigQuery wants {"errorMessage"}, everyone else our error body.

    A batch refused row by row says how many rows were refused in all, and that only the first
    MAX_REPORTED_ERRORS errors are listed when that many are: in the message (BigQuery's too) and,
    as a number, in "refused_rows".
    """
    if refused_rows is not None and shape is not Shape.SINGLE:
        listed = f"; only the first {len(details)} errors are listed" if len(details) >= MAX_REPORTED_ERRORS else ""
        message = f"{message}: {refused_rows:,} {'row' if refused_rows == 1 else 'rows'} refused{listed}"
    else:
        refused_rows = None
    if shape is Shape.BIGQUERY:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in details.items())
        return json_response({"errorMessage": f"{message}: {reasons}" if reasons else message}, status, headers)
    return error_response(status, message, details, headers, refused_rows)


def health(store: ModelStore) -> Response:
    """200 once the model can be served, 503 (with Retry-After) otherwise."""
    try:
        model = store.get()
    except ModelUnavailable as down:
        return json_response({"status": "unavailable", "reason": down.reason}, 503, retry_after(down))
    return json_response({"status": "ok", "model_version": model.version, "model_sha256": model.metadata["sha256"]})


def model_info(store: ModelStore) -> Response:
    """The serving model's metadata (its model.json)."""
    try:
        return json_response(store.get().metadata)
    except ModelUnavailable as down:
        return error_response(503, UNAVAILABLE, {"model": down.reason}, retry_after(down))


def model_area(store: ModelStore) -> Response:
    """Where the serving model prices rides, as GeoJSON (404 for a model that has no area: it prices the box)."""
    try:
        area = store.get().area_geojson
    except ModelUnavailable as down:
        return error_response(503, UNAVAILABLE, {"model": down.reason}, retry_after(down))
    if area is None:
        return error_response(404, "this model has no service area: it prices the whole service box",
                              {"path": "see /model"})
    return json_response(area, mimetype=GEOJSON_TYPE)


PAGES = {
    "/health": health,
    "/model": model_info,
    AREA_PATH: model_area,
    "/openapi.json": lambda store: json_response(openapi_spec()),
    "/docs": lambda store: html_response(docs_html()),
}
"""The read-only endpoints besides predictions: each one documented in /openapi.json."""
DOCS_ASSETS = {
    "/docs/leaflet.js": lambda store: leaflet_asset("leaflet.js", "text/javascript"),
    "/docs/leaflet.css": lambda store: leaflet_asset("leaflet.css", "text/css"),
    "/docs/boroughs.geojson": lambda store: boroughs_asset(),
}
"""Files the /docs page loads: answered like pages, not part of the API."""
