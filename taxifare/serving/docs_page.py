"""The /docs page and the files it loads: all served by the function itself, so no CDN is needed.

The page draws the service area and the fare-shaping landmarks from the same constants the model
uses, so the map cannot disagree with validation. Leaflet is vendored under static/leaflet/.
"""

import json
from functools import cache
from importlib.resources import files

from flask import Response

from taxifare.model.geometry import LANDMARKS
from taxifare.model.schema import LATITUDE_RANGE, LONGITUDE_RANGE
from taxifare.serving.responses import CORS_HEADERS

PLACES_PLACEHOLDER = "__PLACES__"
ASSET_MAX_AGE_SECONDS = 86400
"""Leaflet changes only with a deploy: browsers may keep it a day."""


@cache
def docs_html() -> str:
    """The page, with the service area and landmarks filled in as JSON (built on first request)."""
    places = {
        "landmarks": LANDMARKS,
        "service_area": [[LATITUDE_RANGE[0], LONGITUDE_RANGE[0]], [LATITUDE_RANGE[1], LONGITUDE_RANGE[1]]],
    }
    template = files("taxifare.serving").joinpath("docs.html").read_text(encoding="utf-8")
    return template.replace(PLACES_PLACEHOLDER, json.dumps(places))


@cache
def _leaflet_file(name: str) -> bytes:
    return files("taxifare.serving").joinpath("static", "leaflet", name).read_bytes()


def leaflet_asset(name: str, mimetype: str) -> Response:
    """One vendored Leaflet file, cacheable by browsers."""
    return Response(_leaflet_file(name), status=200, mimetype=mimetype,
                    headers={**CORS_HEADERS, "Cache-Control": f"public, max-age={ASSET_MAX_AGE_SECONDS}"})
