"""Where a model may price rides: the cells of a grid over the service box that its training rides reach.

Trees answer anywhere, and confidently, even where they never saw a ride (open water, another state).
So a model carries the area it learned from: a grid of cells over the service box (schema's latitude
and longitude ranges), each inside the area or not. Training draws it from the rides
(taxifare.training.area_from_rides); the function refuses a pickup or dropoff in a cell outside it.
Traced into polygons, the same cells are published as GeoJSON for maps and clients.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from taxifare.model.checks import require_array
from taxifare.model.schema import DROPOFF_LATITUDE, DROPOFF_LONGITUDE, PICKUP_LATITUDE, PICKUP_LONGITUDE

COORDINATE_DECIMALS = 6
"""GeoJSON coordinates to about 10 cm: as precise as the cells' corners need."""
ENDS = ((PICKUP_LONGITUDE, PICKUP_LATITUDE), (DROPOFF_LONGITUDE, DROPOFF_LATITUDE))
"""The coordinate columns of a ride's two ends."""
Ring = list[tuple[int, int]]
"""A closed path along cell edges, as (column, row) grid corners; the last corner repeats the first."""


@dataclass(frozen=True, eq=False)
class ServiceArea:
    """Cells of a longitude/latitude grid, each inside the area or not.

    west, south: the grid's south-west corner (longitude, latitude).
    cell_lon, cell_lat: a cell's width and height in degrees.
    cells: bool array, rows from south to north, columns from west to east; its outer ring is never inside.
    """

    west: float
    south: float
    cell_lon: float
    cell_lat: float
    cells: np.ndarray

    def ends_inside(self, rides: object) -> np.ndarray:
        """Whether each ride's pickup (row 0) and dropoff (row 1) lie in the area: bool array (2, n_rides).

        Reads the coordinate columns by name from a dict of arrays or a DataFrame, as the model does.
        """
        lon = np.array([rides[PICKUP_LONGITUDE], rides[DROPOFF_LONGITUDE]], dtype=np.float64)
        lat = np.array([rides[PICKUP_LATITUDE], rides[DROPOFF_LATITUDE]], dtype=np.float64)
        return self._cells_at(lon, lat)

    def all_inside(self, rides: object) -> bool:
        """Whether every ride's pickup and dropoff lie in the area: the request path's question.

        One ride, the common request, is looked up in Python floats (~2 microseconds instead of the
        ~25 of a dozen numpy calls on one-element arrays), with the same arithmetic as `contains`.
        """
        if len(rides[PICKUP_LONGITUDE]) != 1:
            return bool(self.ends_inside(rides).all())
        return all(self._cell_inside(float(rides[lon][0]), float(rides[lat][0])) for lon, lat in ENDS)

    def _cell_inside(self, lon: float, lat: float) -> bool:
        """`contains` for one point: max(0.0, NaN) is 0.0, as np.fmax drops NaN; int() truncates as astype does."""
        rows, columns = self.cells.shape
        column = min(max(0.0, (lon - self.west) / self.cell_lon), columns - 1)
        row = min(max(0.0, (lat - self.south) / self.cell_lat), rows - 1)
        return bool(self.cells[int(row), int(column)])

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Whether each point lies in a cell of the area.

        A point off the grid (or NaN: fmax and fmin drop it) is clamped onto the grid's outer ring of
        cells, which are never inside (check() holds it): one lookup, no bounds test. A handful of numpy
        calls for a single ride, on the request path.
        """
        return self._cells_at(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))

    def _cells_at(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        rows, columns = self.cells.shape
        column = np.fmin(np.fmax((lon - self.west) / self.cell_lon, 0), columns - 1)
        row = np.fmin(np.fmax((lat - self.south) / self.cell_lat, 0), rows - 1)
        return self.cells[row.astype(np.intp), column.astype(np.intp)]

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the cells inside the area."""
        rows, columns = np.nonzero(self.cells)
        return (self.west + columns.min() * self.cell_lon, self.south + rows.min() * self.cell_lat,
                self.west + (columns.max() + 1) * self.cell_lon, self.south + (rows.max() + 1) * self.cell_lat)

    def to_geojson(self, properties: dict | None = None) -> dict:
        """The area as one GeoJSON Feature: a MultiPolygon tracing the inside cells' outline (RFC 7946).

        Outer rings run counter-clockwise and holes clockwise, as RFC 7946 asks; corners where the
        outline only turns are kept, straight runs are not.
        """
        polygons = [[self._lon_lat(ring) for ring in polygon] for polygon in _polygons(_rings(self.cells))]
        return {"type": "Feature", "properties": properties or {},
                "geometry": {"type": "MultiPolygon", "coordinates": polygons}}

    def _lon_lat(self, ring: Ring) -> list[list[float]]:
        return [[round(self.west + column * self.cell_lon, COORDINATE_DECIMALS),
                 round(self.south + row * self.cell_lat, COORDINATE_DECIMALS)] for column, row in ring]

    def check(self) -> None:
        """Raise ValueError unless the grid has the structure `contains` relies on."""
        require_array(self.cells, "service_area.cells", np.bool_, 2)
        numbers = (self.west, self.south, self.cell_lon, self.cell_lat)
        if not all(isinstance(n, float) and np.isfinite(n) for n in numbers) or min(self.cell_lon, self.cell_lat) <= 0:
            raise ValueError("service_area needs finite float corners and positive cell sizes")
        if not self.cells.any():
            raise ValueError("service_area has no cell inside")
        if self.cells[[0, -1]].any() or self.cells[:, [0, -1]].any():
            raise ValueError("service_area's outer ring of cells must be outside: points off the grid land there")


Corner = tuple[int, int]
Step = tuple[int, int]


def _rings(cells: np.ndarray) -> list[Ring]:
    """The outline of the inside cells as closed rings of grid corners, the inside always on the left.

    Each edge between an inside cell and an outside one (or the grid's border) is one step; steps
    chain into rings. Where two inside cells touch only at a corner the ring turns left, keeping to
    the cell it follows, so rings never cross (a ring may touch itself at such a corner). Outer rings
    come out counter-clockwise, holes clockwise.
    """
    padded = np.pad(cells, 1)
    inside = padded[1:-1, 1:-1]
    edges = (  # (the neighbour across the edge, the step's start corner in the cell, the step)
        (padded[:-2, 1:-1], (0, 0), (1, 0)),   # south neighbour: the bottom edge, eastwards
        (padded[1:-1, 2:], (1, 0), (0, 1)),    # east neighbour: the right edge, northwards
        (padded[2:, 1:-1], (1, 1), (-1, 0)),   # north neighbour: the top edge, westwards
        (padded[1:-1, :-2], (0, 1), (0, -1)),  # west neighbour: the left edge, southwards
    )
    steps: dict[Corner, list[Step]] = {}
    for neighbour, (dx, dy), step in edges:
        for row, column in zip(*np.nonzero(inside & ~neighbour), strict=True):
            steps.setdefault((int(column) + dx, int(row) + dy), []).append(step)
    rings = []
    while steps:  # start where only one step leaves: never where two cells touch at a corner
        start = next((corner for corner, leaving in steps.items() if len(leaving) == 1), next(iter(steps)))
        rings.append(_trace(steps, start))
    return rings


def _trace(steps: dict[Corner, list[Step]], start: Corner) -> Ring:
    """Follow (and use up) the steps from `start` back to it; keep only the corners where the ring turns."""
    corners, corner, heading, first = [], start, None, None
    while corner != start or heading is None:
        leaving = steps[corner]
        step = leaving[0] if len(leaving) == 1 else (-heading[1], heading[0])  # two ways on: turn left
        leaving.remove(step)
        if not leaving:
            del steps[corner]
        if step != heading:
            corners.append(corner)
        heading, first = step, first or step
        corner = (corner[0] + step[0], corner[1] + step[1])
    if heading == first:  # the start lies on a straight run: not a corner
        corners = corners[1:]
    return [*corners, corners[0]]


def _signed_area(ring: Ring) -> float:
    """Shoelace area: positive for counter-clockwise rings."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2


def _encloses(ring: Ring, x: float, y: float) -> bool:
    """Ray casting: whether the point (never on an edge: cell centres are at half-integers) is inside.

    The ring runs along cell edges, so only its vertical edges cross the eastward ray, each at its own x.
    """
    inside = False
    for (x0, y0), (_, y1) in itertools.pairwise(ring):
        if (y0 > y) != (y1 > y) and x < x0:
            inside = not inside
    return inside


def _polygons(rings: list[Ring]) -> list[list[Ring]]:
    """Outer rings, each followed by the holes it encloses (a hole goes to the smallest ring around it)."""
    outers = [ring for ring in rings if _signed_area(ring) > 0]
    polygons = {id(ring): [ring] for ring in outers}
    for hole in (ring for ring in rings if _signed_area(ring) < 0):
        (x0, y0), (x1, y1) = hole[0], hole[1]
        dx, dy = np.sign(x1 - x0), np.sign(y1 - y0)
        x, y = (x0 + x0 + dx) / 2 - dy / 2, (y0 + y0 + dy) / 2 + dx / 2  # the inside cell left of its first edge
        around = min((ring for ring in outers if _encloses(ring, x, y)), key=_signed_area)
        polygons[id(around)].append(hole)
    return list(polygons.values())
