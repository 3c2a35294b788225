"""Draw a model's service area from its training rides, and the places every NYC client relies on.

1. Mark every cell (about 0.5 x 0.5 km) of the service box where a training ride starts or ends.
2. Close the gaps between such cells up to CLOSING_KM: the streets between sampled rides are served.
3. Add what clients already send, however few training rides went there: the five boroughs, the
   three airports, and the box the bootcamp's own data cleaning keeps (its test kit prices a ride
   from its corner).
4. Widen the whole by MARGIN_KM (shores, bridges, a pickup across the street from the last ride) and
   fill enclosed holes.
What stays out is where no NYC ride of the training data goes: open ocean, Long Island Sound, most of
Connecticut, upstate New York, eastern Long Island, central New Jersey.
"""

import itertools

import numpy as np
import pandas as pd
from scipy import ndimage

from taxifare.model import geometry, places
from taxifare.model.schema import (
    DROPOFF_LATITUDE,
    DROPOFF_LONGITUDE,
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    PICKUP_LATITUDE,
    PICKUP_LONGITUDE,
)
from taxifare.model.service_area import ServiceArea

CELL_KM = 0.5
CLOSING_KM = 2.0
"""Gaps between cells with rides up to this wide are closed: a sampled city has holes, the real one not."""
MARGIN_KM = 1.0
AIRPORT_RADIUS_KM = 3.0
"""Covers each airport's terminals, cargo areas and access roads around its landmark point."""
BOOTCAMP_BOX = ((-74.3, -73.7), (40.5, 40.9))
"""(longitude, latitude) ranges the bootcamp's data cleaning keeps: its clients send rides anywhere in it."""


def empty_grid() -> ServiceArea:
    """A grid of ~CELL_KM cells over the whole service box and a ring of cells around it, every cell outside.

    The box's edges run through the middle of cells (never along a cell's edge, where rounding would
    decide the side): a point on the edge is always in a cell of the box, not of the ring.
    """
    cell_lat = CELL_KM / geometry.KM_PER_DEGREE_LATITUDE
    cell_lon = CELL_KM / geometry.KM_PER_DEGREE_LONGITUDE
    rows = int(np.ceil((LATITUDE_RANGE[1] - LATITUDE_RANGE[0]) / cell_lat)) + 3
    columns = int(np.ceil((LONGITUDE_RANGE[1] - LONGITUDE_RANGE[0]) / cell_lon)) + 3
    return ServiceArea(float(LONGITUDE_RANGE[0]) - 1.5 * cell_lon, float(LATITUDE_RANGE[0]) - 1.5 * cell_lat,
                       cell_lon, cell_lat, np.zeros((rows, columns), dtype=bool))


def learn_service_area(rides: pd.DataFrame) -> ServiceArea:
    """The area of a model trained on `rides` (cleaned: every point inside the service box)."""
    grid = empty_grid()
    lon = np.concatenate([rides[PICKUP_LONGITUDE].to_numpy(), rides[DROPOFF_LONGITUDE].to_numpy()])
    lat = np.concatenate([rides[PICKUP_LATITUDE].to_numpy(), rides[DROPOFF_LATITUDE].to_numpy()])
    visited = _cells_of_points(grid, lon, lat)
    area = visited | ndimage.binary_closing(visited, _disk(CLOSING_KM))  # | : closing may erode at the border
    area |= _always_served(grid)
    area = ndimage.binary_fill_holes(ndimage.binary_dilation(area, _disk(MARGIN_KM)))
    area[[0, -1]] = area[:, [0, -1]] = False  # the outer ring stays outside: points off the grid land there
    return ServiceArea(grid.west, grid.south, grid.cell_lon, grid.cell_lat, area)


def _disk(radius_km: float) -> np.ndarray:
    """The cells within `radius_km` of a cell's centre (cells are CELL_KM square on the flat map)."""
    reach = int(np.ceil(radius_km / CELL_KM))
    offsets = np.arange(-reach, reach + 1)
    return np.hypot(*np.meshgrid(offsets, offsets)) * CELL_KM <= radius_km


def _centres(grid: ServiceArea) -> tuple[np.ndarray, np.ndarray]:
    rows, columns = grid.cells.shape
    return np.meshgrid(grid.west + (np.arange(columns) + 0.5) * grid.cell_lon,
                       grid.south + (np.arange(rows) + 0.5) * grid.cell_lat)


def _cells_of_points(grid: ServiceArea, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The cells holding at least one of the points."""
    cells = np.zeros_like(grid.cells)
    column = np.floor((lon - grid.west) / grid.cell_lon).astype(np.intp)
    row = np.floor((lat - grid.south) / grid.cell_lat).astype(np.intp)
    on_grid = (row >= 0) & (row < cells.shape[0]) & (column >= 0) & (column < cells.shape[1])
    cells[row[on_grid], column[on_grid]] = True
    return cells


def _always_served(grid: ServiceArea) -> np.ndarray:
    """The bootcamp's box, the boroughs and the airports, as cells whose centre is inside them.

    The cells their edges cut through join with the margin that follows.
    """
    lon, lat = _centres(grid)
    (west, east), (south, north) = BOOTCAMP_BOX
    served = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    for borough in places.boroughs()["features"]:
        for polygon in borough["geometry"]["coordinates"]:
            served |= _in_polygon(lon, lat, polygon)
    x, y = geometry.grid_km(lon, lat)
    for airport_lon, airport_lat in places.AIRPORTS.values():
        airport_x, airport_y = geometry.grid_km(np.array(airport_lon), np.array(airport_lat))
        served |= np.hypot(x - airport_x, y - airport_y) <= AIRPORT_RADIUS_KM
    return served


def _in_polygon(lon: np.ndarray, lat: np.ndarray, polygon: list) -> np.ndarray:
    """Even-odd ray casting of many points against one GeoJSON polygon (its shell and holes).

    Only the points inside the shell's bounding box are tested, edge by edge.
    """
    inside = np.zeros(lon.shape, dtype=bool)
    shell = np.asarray(polygon[0], dtype=np.float64)
    (west, south), (east, north) = shell.min(axis=0), shell.max(axis=0)
    near = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    x, y = lon[near], lat[near]
    crossings = np.zeros(x.shape, dtype=bool)
    for ring in polygon:
        ring = np.asarray(ring, dtype=np.float64)
        for (x0, y0), (x1, y1) in itertools.pairwise(ring):
            if y0 != y1:
                crossings ^= ((y0 > y) != (y1 > y)) & (x < x0 + (y - y0) * (x1 - x0) / (y1 - y0))
    inside[near] = crossings
    return inside
