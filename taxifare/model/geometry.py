"""Where points are, on a flat kilometre map around Midtown, seen along any compass bearing.

Within the service area a flat map is exact to within 1% of great-circle distances, and it lets
every distance the features need come from one array of coordinates, rotated once.
"""

import numpy as np

EARTH_RADIUS_KM = 6371.0088
MANHATTAN_GRID_ROTATION_DEG = 29.0
"""Manhattan's avenues run about 29 degrees east of true north; its streets cross them at 119."""

LANDMARKS = {
    "jfk": (-73.7781, 40.6413),
    "lga": (-73.8740, 40.7769),
    "ewr": (-74.1745, 40.6895),
    "midtown": (-73.9855, 40.7580),
}
"""(longitude, latitude) of the places that shape NYC fares: the airports and Times Square."""

GRID_ORIGIN = LANDMARKS["midtown"]
KM_PER_DEGREE_LATITUDE = float(np.radians(EARTH_RADIUS_KM))
KM_PER_DEGREE_LONGITUDE = KM_PER_DEGREE_LATITUDE * float(np.cos(np.radians(GRID_ORIGIN[1])))


def grid_km(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kilometres east and north of Midtown, on the flat map."""
    return (lon - GRID_ORIGIN[0]) * KM_PER_DEGREE_LONGITUDE, (lat - GRID_ORIGIN[1]) * KM_PER_DEGREE_LATITUDE


def axes(angles_deg: tuple[float, ...]) -> np.ndarray:
    """Unit vectors (east, north components) of axes at compass bearings `angles_deg`, for `rotate`.

    Bearing 0 is north and 90 east; Manhattan's avenues run along bearing 29, its streets along 119.
    Computed once per set of axes, not per ride.
    """
    radians = np.radians(np.asarray(angles_deg))
    return np.array([np.sin(radians), np.cos(radians)])


GRID_AXES = axes((MANHATTAN_GRID_ROTATION_DEG, MANHATTAN_GRID_ROTATION_DEG + 90))


def rotate(x: np.ndarray, y: np.ndarray, unit_vectors: np.ndarray) -> np.ndarray:
    """Coordinates of points (x east, y north) along the axes of `axes(...)`: shape x.shape + (n_axes,)."""
    return x[..., None] * unit_vectors[0] + y[..., None] * unit_vectors[1]


def street_grid_km(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Distance along Manhattan's street grid (avenues, then streets): what a cab drives, roughly."""
    x, y = grid_km(np.array([lon1, lon2]), np.array([lat1, lat2]))
    along = rotate(x, y, GRID_AXES)
    return np.abs(along[1] - along[0]).sum(axis=-1)
