"""The service area: drawn from the training rides, kept around every place clients send, refused outside."""

import itertools
import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from taxifare.model import geometry, places
from taxifare.model.loading import loads
from taxifare.model.service_area import ServiceArea, _encloses, _rings
from taxifare.training.area_from_rides import BOOTCAMP_BOX
from tests.test_api import RIDE, query

INSIDE = {
    "Times Square": (40.758, -73.9855), "Inwood, Manhattan": (40.868, -73.921), "the Battery": (40.703, -74.017),
    "Coney Island": (40.575, -73.970), "Williamsburg": (40.714, -73.961), "Flushing": (40.759, -73.830),
    "Far Rockaway": (40.605, -73.755), "Bellerose, Queens": (40.735, -73.715), "Riverdale, Bronx": (40.900, -73.912),
    "Wakefield, Bronx (north of the bootcamp box)": (40.905, -73.855), "City Island": (40.847, -73.786),
    "St. George, Staten Island": (40.643, -74.077), "Tottenville, Staten Island": (40.509, -74.240),
    "Staten Island's southern tip": (40.4995, -74.252), "JFK": (40.6413, -73.7781), "LaGuardia": (40.7769, -73.8740),
    "Newark Airport": (40.6895, -74.1745), "Jersey City": (40.728, -74.078), "Hoboken": (40.744, -74.032),
    "the bootcamp kit's pickup": (40.9, -73.70),
}
OUTSIDE = {
    "Atlantic, the issue's point": (40.3, -73.3), "Atlantic off Long Beach": (40.5, -73.5),
    "Atlantic off the Rockaways": (40.45, -73.75), "Atlantic off New Jersey": (40.2, -73.9),
    "Long Island Sound, mid": (41.0, -73.4), "Long Island Sound, east": (41.05, -73.2),
    "Connecticut, the issue's point": (41.9, -73.0), "Stamford CT": (41.053, -73.539), "Norwalk CT": (41.117, -73.408),
    "Bridgeport CT": (41.186, -73.195), "Danbury CT": (41.394, -73.454),
    "Poughkeepsie, the issue's upstate point": (41.7, -73.93), "Peekskill NY": (41.29, -73.92),
    "Newburgh NY": (41.503, -74.010), "Kingston NY": (41.927, -73.997),
    "Hauppauge, Long Island": (40.826, -73.203), "Ronkonkoma, Long Island": (40.815, -73.112),
    "Stony Brook, Long Island": (40.926, -73.141), "Bay Shore, Long Island": (40.725, -73.245),
    "Matawan NJ": (40.415, -74.230), "Freehold NJ": (40.260, -74.274), "Red Bank NJ": (40.347, -74.064),
    "Wayne NJ": (40.925, -74.276),
}


@pytest.fixture(scope="module")
def area(model_path) -> ServiceArea:
    return loads(open(model_path, "rb").read()).service_area


def inside(area: ServiceArea, points) -> np.ndarray:
    lat, lon = np.array(list(points), dtype=np.float64).T
    return area.contains(lon, lat)


def test_every_shared_ride_starts_and_ends_inside(area, valid_rides):
    assert area.ends_inside(valid_rides).all()


def test_every_point_of_the_bootcamp_box_is_inside(area):
    (west, east), (south, north) = BOOTCAMP_BOX
    steps = (east - west) / area.cell_lon * 3, (north - south) / area.cell_lat * 3  # three points a cell and more
    lon, lat = np.meshgrid(np.linspace(west, east, int(steps[0]) + 1), np.linspace(south, north, int(steps[1]) + 1))
    assert area.contains(lon.ravel(), lat.ravel()).all()


def test_every_borough_shore_and_airport_is_inside(area):
    for borough in places.boroughs()["features"]:
        shores = np.array([point for polygon in borough["geometry"]["coordinates"] for ring in polygon
                           for point in ring])
        assert area.contains(shores[:, 0], shores[:, 1]).all(), borough["properties"]["name"]
        assert area.contains(*np.array([borough["properties"]["label"]]).T).all()
    assert area.contains(*np.array(list(places.AIRPORTS.values())).T).all()


@pytest.mark.parametrize(("name", "point", "expected"), [
    *((name, point, True) for name, point in INSIDE.items()),
    *((name, point, False) for name, point in OUTSIDE.items()),
])
def test_named_places_land_on_the_expected_side(area, name, point, expected):
    assert bool(inside(area, [point])[0]) is expected, name


def test_the_area_stays_a_city_not_the_whole_box(area):
    cell_km2 = (area.cell_lon * geometry.KM_PER_DEGREE_LONGITUDE) * (area.cell_lat * geometry.KM_PER_DEGREE_LATITUDE)
    assert 1_500 < area.cells.sum() * cell_km2 < 4_000  # the service box is ~26,000 km2


# --- the grid and its outline -------------------------------------------------------------------

def test_contains_reads_the_cell_of_each_point():
    cells = np.zeros((4, 4), dtype=bool)
    cells[1, 1] = cells[2, 2] = True  # the outer ring stays outside: points off the grid land there
    area = ServiceArea(-74.0, 40.0, 0.1, 0.2, cells)
    area.check()
    lon = np.array([-73.81, -73.85, -73.75, -73.85, -73.75, -73.71, -74.5, -73.0, np.nan, -73.85, -73.0, -73.75])
    lat = np.array([40.21, 40.3, 40.3, 40.5, 40.59, 40.5, 40.3, 40.3, 40.3, np.inf, 40.5, 41.5])
    inside = [True, True, False, False, True, True, False, False, False, False, False, False]  # the last two: east
    np.testing.assert_array_equal(area.contains(lon, lat), inside)  # and north of the grid, beside an inside cell
    for one in range(len(lon)):  # one ride at a time takes the Python-float path: the same cells
        ride = {"pickup_longitude": lon[[one]], "pickup_latitude": lat[[one]],
                "dropoff_longitude": np.array([-73.85]), "dropoff_latitude": np.array([40.3])}
        assert area.all_inside(ride) is inside[one], (lon[one], lat[one])


NOT_NUMBERS = st.sampled_from([np.nan, np.inf, -np.inf])
LONGITUDES = st.one_of(st.floats(-74.05, -73.35), st.sampled_from([-74.0, -73.9, -73.5, -73.4]), NOT_NUMBERS)
LATITUDES = st.one_of(st.floats(39.95, 41.25), st.sampled_from([40.0, 40.2, 41.0, 41.2]), NOT_NUMBERS)


@settings(max_examples=300, deadline=None)
@given(st.tuples(LONGITUDES, LATITUDES, LONGITUDES, LATITUDES))
def test_one_ride_is_looked_up_as_a_batch_is(points):
    """all_inside answers one ride in Python floats: the same cells as `contains`, edges, NaN and off-grid included."""
    cells = np.zeros((6, 6), dtype=bool)
    cells[1:5, 1:4] = True  # inside: longitude -73.9 to -73.6, latitude 40.2 to 41.0, but for a hole
    cells[3, 2] = False
    area = ServiceArea(-74.0, 40.0, 0.1, 0.2, cells)
    ride = dict(zip(("pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"),
                    np.array(points)[:, None], strict=True))
    expected = bool(area.contains(np.array(points[0::2]), np.array(points[1::2])).all())
    assert area.all_inside(ride) is expected
    twice = {name: np.repeat(column, 2) for name, column in ride.items()}  # two rides: the vectorised path
    assert area.all_inside(twice) is expected


@pytest.mark.parametrize("n", [2, 3])
def test_a_batch_is_inside_only_if_every_ride_is(n):
    """Each ride of a small batch is looked at, whichever one is outside (a batch of one has its own path)."""
    cells = np.zeros((4, 4), dtype=bool)
    cells[1:3, 1:3] = True  # inside: longitude -73.9 to -73.7, latitude 40.2 to 40.6
    area = ServiceArea(-74.0, 40.0, 0.1, 0.2, cells)
    inside, outside = (-73.85, 40.3), (-73.5, 40.3)
    for odd_one in range(n):
        points = [outside if i == odd_one else inside for i in range(n)]
        rides = {"pickup_longitude": np.array([p[0] for p in points]), "pickup_latitude": np.array([p[1] for p in points]),
                 "dropoff_longitude": np.full(n, inside[0]), "dropoff_latitude": np.full(n, inside[1])}
        assert area.all_inside(rides) is False
        assert area.all_inside({**rides, "pickup_longitude": np.full(n, inside[0])}) is True


def ring_cell(row: int, column: int) -> np.ndarray:
    """A 4x4 grid with one inside cell in the middle and one at (row, column)."""
    cells = np.zeros((4, 4), dtype=bool)
    cells[1, 1] = cells[row, column] = True
    return cells


NUMBERS = "service_area needs finite float corners and positive cell sizes"
OUTER_RING = "service_area's outer ring of cells must be outside: points off the grid land there"
MALFORMED_AREAS = {  # (west, south, cell_lon, cell_lat, cells) -> the refusal, word for word
    "cells not bool": ((-74.0, 40.0, 0.1, 0.2, ring_cell(1, 1).astype(np.int8)),
                       "service_area.cells must be a 2-d bool array"),
    "cells one-dimensional": ((-74.0, 40.0, 0.1, 0.2, ring_cell(1, 1)[1]), "service_area.cells must be a 2-d bool array"),
    "an int corner": ((-74, 40.0, 0.1, 0.2, ring_cell(1, 1)), NUMBERS),
    "a NaN corner": ((-74.0, np.nan, 0.1, 0.2, ring_cell(1, 1)), NUMBERS),
    "an infinite cell size": ((-74.0, 40.0, np.inf, 0.2, ring_cell(1, 1)), NUMBERS),
    "a zero cell width": ((-74.0, 40.0, 0.0, 0.2, ring_cell(1, 1)), NUMBERS),
    "a negative cell height": ((-74.0, 40.0, 0.1, -0.2, ring_cell(1, 1)), NUMBERS),
    "no cell inside": ((-74.0, 40.0, 0.1, 0.2, np.zeros((4, 4), dtype=bool)), "service_area has no cell inside"),
    "the first row": ((-74.0, 40.0, 0.1, 0.2, ring_cell(0, 2)), OUTER_RING),
    "the last row": ((-74.0, 40.0, 0.1, 0.2, ring_cell(3, 2)), OUTER_RING),
    "the first column": ((-74.0, 40.0, 0.1, 0.2, ring_cell(2, 0)), OUTER_RING),
    "the last column": ((-74.0, 40.0, 0.1, 0.2, ring_cell(2, 3)), OUTER_RING),
}


@pytest.mark.parametrize("malformed", MALFORMED_AREAS)
def test_a_malformed_area_is_refused_saying_what_is_wrong(malformed):
    """A model file's area is checked at load: each flaw refused with its own message (the operator's log shows it)."""
    fields, message = MALFORMED_AREAS[malformed]
    with pytest.raises(ValueError) as refused:
        ServiceArea(*fields).check()
    assert str(refused.value) == message


def test_the_smallest_area_that_keeps_its_outer_ring_outside_is_accepted():
    ServiceArea(-74.0, 40.0, 0.1, 0.2, ring_cell(1, 2)).check()  # one row and column in from each edge: fine
    ServiceArea(-74.0, 40.0, 0.1, 0.2, ring_cell(2, 2)).check()


def ring_contains(rings: list, x: float, y: float) -> bool:
    """Even-odd over every ring of every polygon: GeoJSON's meaning of a MultiPolygon with holes."""
    crossings = 0
    for ring in rings:
        for (x0, y0), (x1, y1) in itertools.pairwise(ring):
            if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                crossings += 1
    return crossings % 2 == 1


def signed_area(ring: list) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2


def groups(cells: np.ndarray) -> int:
    """How many groups of inside cells joined side to side (cells touching only at a corner are two groups)."""
    unseen, count = {(int(r), int(c)) for r, c in zip(*np.nonzero(cells), strict=True)}, 0
    while unseen:
        count, todo = count + 1, [unseen.pop()]
        while todo:
            row, column = todo.pop()
            for cell in ((row + 1, column), (row - 1, column), (row, column + 1), (row, column - 1)):
                if cell in unseen:
                    unseen.remove(cell)
                    todo.append(cell)
    return count


def grid(*rows: str) -> np.ndarray:
    """Cells from rows of '#' (inside) and '.', the first row the northernmost."""
    return np.array([[c == "#" for c in row] for row in reversed(rows)])


NESTED = grid("###########",
              "#.........#",
              "#.#######.#",
              "#.#.....#.#",
              "#.#.###.#.#",
              "#.#.#.#.#.#",
              "#.#.###.#.#",
              "#.#.....#.#",
              "#.#######.#",
              "#.........#",
              "###########")  # islands in holes in islands: each hole goes to the smallest ring around it
SIDE_BY_SIDE = grid("###.###", "#.#.#.#", "###.###")  # two shells, one hole each
CORNERS = grid("#.#.", ".#.#", "#.##", ".#..")  # cells that touch only at corners; a hole open at a corner
HIGH_HOLE = grid("###", "#.#", "###", "..#", "##.", ".#.", "###", "###", "#..")  # a hole far from the first row
LONG_HOLES = grid("##.######", ".#.######", "#....#..#", "##..#.###", "##.####.#", ".####..##", ".#.######",
                  "##...#.#.")  # holes of several cells, some meeting at corners
STRAIGHT_START = grid("#####", "#.###", "##..#", "#####")  # two holes meeting at a corner: one traced from mid-edge


@settings(max_examples=150, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 7), st.integers(1, 7))).filter(lambda cells: cells.any()))
@example(NESTED)
@example(SIDE_BY_SIDE)
@example(CORNERS)
@example(STRAIGHT_START)
@example(HIGH_HOLE)
@example(LONG_HOLES)
def test_the_geojson_outline_holds_exactly_the_inside_cells(cells):
    """Each polygon (shell less its own holes) holds one group of cells; rings turn at every corner; bounds fit."""
    west, south, cell_lon, cell_lat = -74.5, 40.25, 0.125, 0.0625  # binary fractions: corners map back exactly
    area = ServiceArea(west, south, cell_lon, cell_lat, cells)
    feature = area.to_geojson({"model_version": "v1"})
    assert feature["type"] == "Feature" and feature["properties"] == {"model_version": "v1"}
    assert area.to_geojson()["properties"] == {} and feature["geometry"]["type"] == "MultiPolygon"
    coordinates = feature["geometry"]["coordinates"]
    polygons = [[[((lon - west) / cell_lon, (lat - south) / cell_lat) for lon, lat in ring] for ring in polygon]
                for polygon in coordinates]
    for row, column in np.ndindex(cells.shape):  # in exactly one polygon if inside, in none if outside
        assert sum(ring_contains(polygon, column + 0.5, row + 0.5) for polygon in polygons) == cells[row, column]
    assert len(polygons) == groups(cells)
    for polygon in polygons:  # RFC 7946: closed rings, shells counter-clockwise, holes clockwise
        assert signed_area(polygon[0]) > 0 and all(signed_area(hole) < 0 for hole in polygon[1:])
        for ring in polygon:
            assert ring[0] == ring[-1] and len(ring) >= 5
            steps = [(x1 - x0, y1 - y0) for (x0, y0), (x1, y1) in itertools.pairwise(ring)]
            assert all((dx == 0) != (dy == 0) and float(dx).is_integer() and float(dy).is_integer()
                       for dx, dy in steps)  # along cell edges
            for (dx0, dy0), (dx1, dy1) in itertools.pairwise([*steps, steps[0]]):
                assert dx0 * dy1 - dy0 * dx1 != 0  # every corner kept is a turn: no corner on a straight run
    lons = [lon for polygon in coordinates for ring in polygon for lon, _ in ring]
    lats = [lat for polygon in coordinates for ring in polygon for _, lat in ring]
    assert area.bounds() == (min(lons), min(lats), max(lons), max(lats))
    assert json.loads(json.dumps(feature)) == feature


@settings(max_examples=150, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 7), st.integers(1, 7))).filter(lambda cells: cells.any()))
@example(NESTED)
@example(SIDE_BY_SIDE)
def test_each_traced_ring_encloses_exactly_the_cell_centres_inside_it(cells):
    """The ray test that gives each hole to the ring around it, against the even-odd rule on every cell centre."""
    for ring in _rings(cells):
        for row, column in np.ndindex(cells.shape):
            x, y = column + 0.5, row + 0.5
            assert bool(_encloses(ring, x, y)) == ring_contains([ring], x, y), (ring, x, y)


# --- the API ------------------------------------------------------------------------------------

def test_a_ride_from_open_water_is_refused_naming_the_point(client):
    response = client.get(query(pickup_latitude=40.3, pickup_longitude=-73.3))
    assert response.status_code == 400
    body = response.get_json()
    assert body["details"] == {"pickup": "latitude 40.3, longitude -73.3 is outside the area this model has rides "
                                         "from: it cannot price it (the area: /model/area)"}


def test_a_ride_to_connecticut_is_refused_and_to_jfk_priced(client):
    refused = client.get(query(dropoff_latitude=41.053, dropoff_longitude=-73.539))
    assert refused.status_code == 400 and list(refused.get_json()["details"]) == ["dropoff"]
    assert "has rides to" in refused.get_json()["details"]["dropoff"]
    priced = client.get(query(dropoff_latitude=40.6413, dropoff_longitude=-73.7781))
    assert priced.status_code == 200 and list(priced.get_json()) == ["fare"]


def test_the_bootcamp_kits_ride_keeps_its_fare(client):
    response = client.get("/predict?pickup_datetime=2013-07-06 10:18:00&pickup_longitude=-73.70&pickup_latitude=40.9"
                          "&dropoff_longitude=-73.98&dropoff_latitude=40.70&passenger_count=2")
    assert response.status_code == 200 and list(response.get_json()) == ["fare"]


def test_a_batch_names_each_row_outside_and_prices_nothing(client):
    atlantic = {**RIDE, "dropoff_latitude": 40.3, "dropoff_longitude": -73.3}
    stamford = {**RIDE, "pickup_latitude": 41.053, "pickup_longitude": -73.539}
    response = client.post("/", json={"instances": [RIDE, atlantic, RIDE, stamford]})
    assert response.status_code == 400
    assert list(response.get_json()["details"]) == ["instances[1].dropoff", "instances[3].pickup"]
    calls = client.post("/", json={"calls": [[atlantic[name] for name in RIDE]]})
    assert calls.status_code == 400 and "calls[0].dropoff" in calls.get_json()["errorMessage"]


def test_the_area_is_published_as_geojson(client, area):
    response = client.get("/model/area")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    feature = response.get_json()
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "MultiPolygon"
    rings = [ring for polygon in feature["geometry"]["coordinates"] for ring in polygon]
    for name, (lat, lon) in {**INSIDE, **OUTSIDE}.items():
        assert ring_contains(rings, lon, lat) == (name in INSIDE), name
    metadata = client.get("/model").get_json()
    assert metadata["service_area"]["geojson"] == "/model/area"
    west, south, east, north = metadata["service_area"]["bounds"]
    assert west <= BOOTCAMP_BOX[0][0] and east >= BOOTCAMP_BOX[0][1] and south < BOOTCAMP_BOX[1][0]
    assert north > BOOTCAMP_BOX[1][1]
