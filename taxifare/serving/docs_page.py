"""The /docs page and the files it loads: all served by the function itself, so no CDN is needed.

The page draws the service box, the airports and the boroughs from the same constants and files the
model uses, and the serving model's own service area from /model/area, so the map cannot disagree
with validation; its form starts with the example ride of the README and /openapi.json. Leaflet is
vendored under static/leaflet/.
"""

import json
from functools import cache
from importlib.resources import files

from flask import Response

from taxifare.model import places
from taxifare.model.geometry import LANDMARKS
from taxifare.model.schema import LATITUDE_RANGE, LONGITUDE_RANGE
from taxifare.serving.examples import EXAMPLE_RIDE
from taxifare.serving.responses import CORS_HEADERS, GEOJSON_TYPE

PLACES_PLACEHOLDER = "__PLACES__"
ASSET_MAX_AGE_SECONDS = 86400
"""Leaflet changes only with a deploy: browsers may keep it a day."""


@cache
def docs_html() -> str:
    """The page, with the service area and landmarks filled in as JSON (built on first request)."""
    shores = [point for borough in places.boroughs()["features"] for polygon in borough["geometry"]["coordinates"]
              for ring in polygon for point in ring]
    (west, south), (east, north) = ([min(axis) for axis in zip(*shores)], [max(axis) for axis in zip(*shores)])
    page_places = {
        "landmarks": {**places.AIRPORTS, "Times Square": LANDMARKS["midtown"]},
        "service_box": [[LATITUDE_RANGE[0], LONGITUDE_RANGE[0]], [LATITUDE_RANGE[1], LONGITUDE_RANGE[1]]],
        "view": [[south, west], [north, east]],
        "example_ride": EXAMPLE_RIDE,
    }
    template = files("taxifare.serving").joinpath("docs.html").read_text(encoding="utf-8")
    return template.replace(PLACES_PLACEHOLDER, json.dumps(page_places))


@cache
def _leaflet_file(name: str) -> bytes:
    return files("taxifare.serving").joinpath("static", "leaflet", name).read_bytes()


def leaflet_asset(name: str, mimetype: str) -> Response:
    """One vendored Leaflet file, cacheable by browsers."""
    return _asset(_leaflet_file(name), mimetype)


def boroughs_asset() -> Response:
    """The boroughs' outline (GeoJSON), drawn on the map so it reads without street tiles."""
    return _asset(places.BOROUGHS_PATH.read_bytes(), GEOJSON_TYPE)


def _asset(data: bytes, mimetype: str) -> Response:
    """A static file that changes only with a deploy, cacheable by browsers."""
    return Response(data, status=200, mimetype=mimetype,
                    headers={**CORS_HEADERS, "Cache-Control": f"public, max-age={ASSET_MAX_AGE_SECONDS}"})
