"""Derive the boroughs' outline the project ships (taxifare/model/nyc_boroughs.geojson) from the shared one.

    python scripts/derive_boroughs.py [--source ../shared/data/nyc_boroughs.geojson]

The shared file (NYC Department of City Planning borough boundaries, simplified to ~40 m) is map data,
not rides; its README allows shipping a derived, further simplified outline, credited. This keeps
what a map and a service area need: each borough's shores to ~100 m (Douglas-Peucker on the flat
kilometre map), islands of 0.1 km^2 and more, and a label point (the centroid of its largest part).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from taxifare.model import geometry, places
from taxifare.training.cli import shared_data_dir

TOLERANCE_KM = 0.1
MIN_ISLAND_KM2 = 0.1
DECIMALS = 5


def simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker: the fewest points that stay within `tolerance` of the line (endpoints kept)."""
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        start, end = points[first], points[last]
        segment = end - start
        length = np.hypot(*segment)
        inner = points[first + 1:last] - start
        if length == 0:
            distances = np.hypot(inner[:, 0], inner[:, 1])
        else:
            distances = np.abs(segment[0] * inner[:, 1] - segment[1] * inner[:, 0]) / length
        farthest = int(np.argmax(distances))
        if distances[farthest] > tolerance:
            middle = first + 1 + farthest
            keep[middle] = True
            stack += [(first, middle), (middle, last)]
    return points[keep]


def area_km2(ring_km: np.ndarray) -> float:
    x, y = ring_km[:, 0], ring_km[:, 1]
    return float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])) / 2


def centroid(ring_km: np.ndarray) -> np.ndarray:
    x, y = ring_km[:, 0], ring_km[:, 1]
    cross = x[:-1] * y[1:] - x[1:] * y[:-1]
    return np.array([np.sum((x[:-1] + x[1:]) * cross), np.sum((y[:-1] + y[1:]) * cross)]) / (3 * np.sum(cross))


def to_km(ring: list) -> np.ndarray:
    lon, lat = np.array(ring, dtype=np.float64).T
    return np.column_stack(geometry.grid_km(lon, lat))


def to_lon_lat(points_km: np.ndarray) -> list[list[float]]:
    lon = geometry.GRID_ORIGIN[0] + points_km[:, 0] / geometry.KM_PER_DEGREE_LONGITUDE
    lat = geometry.GRID_ORIGIN[1] + points_km[:, 1] / geometry.KM_PER_DEGREE_LATITUDE
    return [[round(float(a), DECIMALS), round(float(b), DECIMALS)] for a, b in zip(lon, lat, strict=True)]


def derive(source: dict) -> dict:
    features = []
    for feature in source["features"]:
        polygons, largest = [], (0.0, None)
        for polygon in feature["geometry"]["coordinates"]:
            shell = to_km(polygon[0])
            size = abs(area_km2(shell))
            if size < MIN_ISLAND_KM2:
                continue
            rings = [simplify(shell, TOLERANCE_KM)]
            holes = [to_km(hole) for hole in polygon[1:]]
            rings += [simplify(hole, TOLERANCE_KM) for hole in holes if abs(area_km2(hole)) >= MIN_ISLAND_KM2]
            polygons.append([to_lon_lat(ring) for ring in rings if len(ring) >= 4])
            largest = max(largest, (size, shell), key=lambda pair: pair[0])
        label = to_lon_lat(centroid(largest[1])[None, :])[0]
        features.append({"type": "Feature",
                         "properties": {"name": feature["properties"]["BoroName"], "label": label},
                         "geometry": {"type": "MultiPolygon", "coordinates": polygons}})
    return {"type": "FeatureCollection", "credit": places.BOROUGHS_CREDIT, "features": features}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=shared_data_dir() / "nyc_boroughs.geojson")
    args = parser.parse_args()
    derived = derive(json.loads(args.source.read_text()))
    places.BOROUGHS_PATH.write_text(json.dumps(derived, separators=(",", ":")) + "\n")
    points = sum(len(ring) for f in derived["features"] for p in f["geometry"]["coordinates"] for ring in p)
    print(f"wrote {places.BOROUGHS_PATH} ({places.BOROUGHS_PATH.stat().st_size:,} bytes, {points:,} points)")


if __name__ == "__main__":
    main()
