"""Vectorised distances and bearings between points given in degrees (WGS 84)."""

import numpy as np

EARTH_RADIUS_KM = 6371.0088
MANHATTAN_GRID_ROTATION_DEG = 29.0
"""Manhattan's avenues run about 29 degrees east of true north."""

LANDMARKS = {
    "jfk": (-73.7781, 40.6413),
    "lga": (-73.8740, 40.7769),
    "ewr": (-74.1745, 40.6895),
    "midtown": (-73.9855, 40.7580),
}
"""(longitude, latitude) of the places that shape NYC fares: the airports and Times Square."""


def haversine_km(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Great-circle distance in kilometres."""
    lon1, lat1, lon2, lat2 = (np.radians(a) for a in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def trip_offsets_km(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """East and north displacement in km on a flat map around the trip (exact enough within a city)."""
    km_per_degree = np.radians(EARTH_RADIUS_KM)
    east = (lon2 - lon1) * km_per_degree * np.cos(np.radians((lat1 + lat2) / 2))
    north = (lat2 - lat1) * km_per_degree
    return east, north


def manhattan_km(east: np.ndarray, north: np.ndarray) -> np.ndarray:
    """Distance along Manhattan's street grid (axes rotated 29 degrees), what a cab really drives."""
    theta = np.radians(MANHATTAN_GRID_ROTATION_DEG)
    along_avenues = east * np.sin(theta) + north * np.cos(theta)
    along_streets = east * np.cos(theta) - north * np.sin(theta)
    return np.abs(along_avenues) + np.abs(along_streets)


def bearing_deg(east: np.ndarray, north: np.ndarray) -> np.ndarray:
    """Direction of travel in degrees clockwise from north, in [-180, 180]."""
    return np.degrees(np.arctan2(east, north))
