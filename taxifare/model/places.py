"""The places every New York client names: the five boroughs and the airports.

Both sides of the package use them: training keeps them inside every model's service area (a
rider may ask for a ride to Staten Island or Newark Airport however few training rides went
there), and the /docs map draws them so it can be read without street tiles.
"""

import json
from functools import cache
from pathlib import Path

from taxifare.model.geometry import LANDMARKS

BOROUGHS_PATH = Path(__file__).with_name("nyc_boroughs.geojson")
"""Derived from ../shared/data/nyc_boroughs.geojson by scripts/derive_boroughs.py (shores to ~100 m)."""
BOROUGHS_CREDIT = "Borough boundaries: NYC Department of City Planning"
AIRPORTS = {"JFK": LANDMARKS["jfk"], "LaGuardia": LANDMARKS["lga"], "Newark Airport": LANDMARKS["ewr"]}
"""(longitude, latitude) of the three airports NYC cabs serve."""


@cache
def boroughs() -> dict:
    """The five boroughs as a GeoJSON FeatureCollection: outline, `name` and a `label` point each."""
    return json.loads(BOROUGHS_PATH.read_text(encoding="utf-8"))
