"""JSON responses with CORS, so any web page can call the function from a browser.

JSON is written as Python's json module writes it ({"fare": 12.47}) with a final newline, so a
terminal prompt does not land on the answer's line.
"""

import json

from flask import Response

JSON_TYPE = "application/json"
GEOJSON_TYPE = "application/geo+json"
"""RFC 7946's media type: maps and GIS tools recognise it."""
MODEL_VERSION_HEADER = "X-Model-Version"
"""Which model answered: set on every answer once the instance has its model (api.handle)."""
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": MODEL_VERSION_HEADER}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Max-Age": "3600",
}


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None,
                  mimetype: str = JSON_TYPE) -> Response:
    """A JSON response, CORS-enabled."""
    return Response(json.dumps(body) + "\n", status=status, mimetype=mimetype, headers={**CORS_HEADERS, **(headers or {})})


def error_response(status: int, message: str, details: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None, refused_rows: int | None = None) -> Response:
    """{"error": message, "details": {field: reason}}: what went wrong, and where.

    A batch refused row by row adds "refused_rows": how many rows were refused in all.
    """
    body = {"error": message, "details": details or {}}
    if refused_rows is not None:
        body["refused_rows"] = refused_rows
    return json_response(body, status, headers)


def preflight_response(allow: str) -> Response:
    """Answer a CORS preflight (OPTIONS) for any origin, with the methods this path takes."""
    return Response(status=204, headers={**PREFLIGHT_HEADERS, "Access-Control-Allow-Methods": allow, "Allow": allow})


def html_response(html: str) -> Response:
    """The /docs page."""
    return Response(html, status=200, mimetype="text/html", headers=CORS_HEADERS)
