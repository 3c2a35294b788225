"""GET /docs in a real headless Chromium (Debian's chromium + chromedriver, via Selenium).

With street tiles off the page must be self-contained (no request leaves the server's origin); with
them on, only OpenStreetMap's tile server is asked (blocked here through DevTools, so nothing leaves
the machine). It must show every operation and example of /openapi.json, and "Try it" must get the
API's own answers; its form and its map (click pickup, then dropoff) must show the same fare as
GET /predict, or the field-named error for a bad input, and the fare's breakdown as a waterfall. Needs `chromium` and `chromium-driver` (`make test` installs them
through scripts/system-packages.sh): when they are missing the tests fail under CI=true, and are
skipped elsewhere with a summary line at the end of the run saying so.

    DOCS_SCREENSHOT=/tmp/docs.png pytest tests/test_docs_page.py   # also saves a screenshot
"""

import json
import os
import re
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 15
FIELDS = ("pickup_datetime", "pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude",
          "passenger_count")
TYPED_RIDE = {  # Times Square to JFK on a winter weekday morning, typed into the form
    "pickup_datetime": "2014-01-15 08:30:00", "pickup_longitude": "-73.985130", "pickup_latitude": "40.758896",
    "dropoff_longitude": "-73.778925", "dropoff_latitude": "40.641766", "passenger_count": "2",
}
TILE_HOST = "tile.openstreetmap.org"
CENTRAL_PARK, PARK_SLOPE = (40.7812, -73.9665), (40.6710, -73.9814)
OUTSIDE_THE_AREA = {"Atlantic Ocean": (40.42, -73.60), "Long Island Sound": (41.0, -73.45),
                    "Connecticut": (41.06, -73.55)}

BROWSER_MISSING = "headless Chromium is missing"
INTERNAL_SCHEMES = {"data", "about", "blob", "chrome", "chrome-untrusted", "devtools"}
"""Never leave the browser: Chromium's own new-tab page loads chrome:// resources before /docs."""

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module; a clear failure if Debian's chromium is not installed."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        reason = (f"{BROWSER_MISSING}: {', '.join(missing)} not found; install the Debian packages chromium and "
                  "chromium-driver (scripts/system-packages.sh test does, as root or with sudo)")
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -r requirements-dev.txt", pytrace=False)

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path_factory.mktemp("chromedriver") / "log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT_SECONDS)
    driver.set_script_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.05).until(condition, message=f"waiting for {what}")


def open_docs(driver, base_url: str, tiles: bool = False) -> None:
    """Load /docs, by default without street tiles: the tests stay offline."""
    driver.get_log("performance")  # drop what earlier tests left
    driver.get(base_url + ("/docs" if tiles else "/docs?tiles=off"))
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete", "the page to load")


def result_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "result").text.strip()


def submit_form(driver, values: dict[str, str] | None = None) -> None:
    """Type `values` into the form (the rest stay pre-filled) and click "Get fare"."""
    from selenium.webdriver.common.by import By

    for name, value in (values or {}).items():
        field = driver.find_element(By.ID, name)
        field.clear()
        field.send_keys(value)
    driver.execute_script("document.getElementById('result').textContent = ''")
    driver.find_element(By.ID, "submit").click()
    wait_for(driver, lambda d: result_text(d) not in ("", "…"), "a result under the form")


def form_values(driver) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    return {name: driver.find_element(By.ID, name).get_attribute("value") for name in FIELDS}


def api_answer(base_url: str, values: dict[str, str]) -> dict:
    with urllib.request.urlopen(f"{base_url}/predict?{urllib.parse.urlencode(values)}", timeout=10) as response:
        assert response.status == 200
        return json.load(response)


def api_fare(base_url: str, values: dict[str, str]) -> float:
    return api_answer(base_url, values)["fare"]


def signed(dollars: float) -> str:
    """How the waterfall shows what a group adds: +$0.72, −$0.39."""
    return f"{'−' if dollars < 0 else '+'}${abs(dollars):.2f}"


def waterfall(driver) -> list[tuple[str, str]]:
    """(part, amount) of each step of the breakdown under the form, as shown."""
    from selenium.webdriver.common.by import By

    return [(row.get_attribute("data-part"), row.find_element(By.CSS_SELECTOR, ".amount").text)
            for row in driver.find_elements(By.CSS_SELECTOR, "#breakdown .step")]


def expected_waterfall(answer: dict) -> list[tuple[str, str]]:
    """The steps the page must show for an answer with a breakdown: the base, each group, the fare."""
    (base_name, base), *groups = answer["breakdown"].items()
    return [(base_name, f"${base:.2f}"), *((name, signed(value)) for name, value in groups),
            ("fare", f"${answer['fare']:.2f}")]


def requested_urls(driver) -> list[str]:
    """Every URL the tab asked for since the last call, from Chromium's DevTools network events."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def save_screenshot(driver) -> None:
    path = os.environ.get("DOCS_SCREENSHOT")
    if path:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(max(height + 120, 1000), 8000))
        driver.save_screenshot(path)
        driver.set_window_size(1280, 1000)


def other_hosts(urls: list[str], base_url: str) -> list[str]:
    origin = urllib.parse.urlsplit(base_url)[:2]
    return [url for url in urls
            if urllib.parse.urlsplit(url).scheme not in INTERNAL_SCHEMES and urllib.parse.urlsplit(url)[:2] != origin]


def test_without_tiles_the_page_asks_only_its_own_server(browser, live_server):
    open_docs(browser, live_server)
    wait_for(browser, lambda d: "/health" in d.find_element("id", "reference").text, "the API reference")
    urls = requested_urls(browser)
    for own in ("/docs?tiles=off", "/openapi.json", "/docs/leaflet.js", "/docs/leaflet.css", "/model/area",
                "/docs/boroughs.geojson"):
        assert live_server + own in urls, urls
    assert other_hosts(urls, live_server) == []
    assert not any(url.endswith("/favicon.ico") for url in urls)  # the icon is inline
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], f"console errors on /docs: {errors}"


def test_street_tiles_come_only_from_openstreetmap_with_attribution(browser, live_server):
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": [f"*://{TILE_HOST}/*"]})  # nothing leaves the machine
    try:
        open_docs(browser, live_server, tiles=True)
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#map img.leaflet-tile"), "tiles being asked for")
        assert browser.find_element(By.ID, "tiles").is_selected()
        attribution = browser.find_element(By.CSS_SELECTOR, ".leaflet-control-attribution").text
        assert "OpenStreetMap contributors" in attribution
        elsewhere = other_hosts(requested_urls(browser), live_server)
        assert elsewhere and {urllib.parse.urlsplit(url).hostname for url in elsewhere} == {TILE_HOST}

        browser.find_element(By.ID, "tiles").click()  # tiles off: the layer and its attribution go
        assert browser.find_elements(By.CSS_SELECTOR, "#map img.leaflet-tile") == []
        assert "OpenStreetMap" not in browser.find_element(By.CSS_SELECTOR, ".leaflet-control-attribution").text
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        browser.get_log("browser")  # the blocked tiles' console errors belong to this test only


def test_api_reference_is_rendered_from_openapi_json(browser, live_server):
    from selenium.webdriver.common.by import By

    spec = load_reference(browser, live_server, expand=False)
    assert browser.find_element(By.ID, "reference").text.startswith(spec["info"]["description"])
    blocks = browser.find_elements(By.CSS_SELECTOR, "#reference .endpoint")
    assert not any(block.get_attribute("open") for block in blocks)  # one line per operation until opened
    titles = []
    for block in blocks:
        title = block.find_element(By.TAG_NAME, "summary")
        method, path = (title.find_element(By.CSS_SELECTOR, tag).text for tag in (".method", "code"))
        titles.append(f"{method} {path} {title.text.removeprefix(method).lstrip().removeprefix(path).strip()}")
    expected = [f"{method.upper()} {path} {operation['summary']}"
                for path, operations in spec["paths"].items() for method, operation in operations.items()]
    assert titles == expected
    assert "pickup_latitude: pickup latitude, NYC service area" not in browser.find_element(By.ID, "reference").text

    browser.find_element(By.ID, "expand").click()
    assert all(block.get_attribute("open") for block in blocks)
    reference = browser.find_element(By.ID, "reference").text
    assert "pickup_latitude: pickup latitude, NYC service area" in reference
    assert "could not load" not in reference
    curl = browser.find_element(By.ID, "curl").text
    assert curl.startswith(f"curl '{live_server}/predict?pickup_datetime=")


@pytest.mark.parametrize("typed", [None, TYPED_RIDE], ids=["prefilled", "typed"])
def test_get_fare_shows_the_fare_of_get_predict(browser, live_server, typed):
    open_docs(browser, live_server)
    submit_form(browser, typed)
    values = form_values(browser)
    if typed:
        assert values == typed
    fare = api_fare(live_server, values)
    assert result_text(browser) == f"${fare:.2f}"
    assert browser.find_element("id", "result").get_attribute("class") == ""
    if typed is None:
        save_screenshot(browser)


def test_invalid_latitude_shows_the_field_error(browser, live_server):
    open_docs(browser, live_server)
    submit_form(browser, {"pickup_latitude": "abc"})
    result = browser.find_element("id", "result")
    assert result.get_attribute("class") == "error"
    lines = result_text(browser).splitlines()
    assert lines[0] == "invalid ride fields"
    assert 'pickup_latitude: not a number: "abc"' in lines
    assert "$" not in result_text(browser)

    assert browser.find_element("id", "breakdown").get_attribute("hidden")  # no fare, no breakdown

    submit_form(browser, {"pickup_latitude": "40.783282"})  # the form recovers once the field is fixed
    assert re.fullmatch(r"\$\d+\.\d\d", result_text(browser)), result_text(browser)



def test_the_form_shows_the_fare_range_it_is_asked_for(browser, live_server):
    from selenium.webdriver.support.ui import Select

    open_docs(browser, live_server)
    Select(browser.find_element("id", "range")).select_by_value("80")
    submit_form(browser)
    with urllib.request.urlopen(f"{live_server}/predict?{urllib.parse.urlencode({**form_values(browser), 'range': 80})}",
                                timeout=10) as response:
        answer = json.load(response)
    fare, low, high = answer["fare"], answer["range"]["low"], answer["range"]["high"]
    assert result_text(browser) == f"${fare:.2f} (80% range: ${low:.2f} to ${high:.2f})"
    assert "range=80" in browser.find_element("id", "curl").text


def test_a_priced_ride_shows_its_breakdown_as_a_waterfall(browser, live_server):
    """Base, then each group from where the one before ended, then the fare: the API's breakdown, to the cent."""
    from selenium.webdriver.common.by import By

    open_docs(browser, live_server)
    assert browser.find_element(By.ID, "explain").is_selected()  # shown unless unticked
    submit_form(browser, TYPED_RIDE)
    answer = api_answer(live_server, {**form_values(browser), "explain": "1"})
    assert result_text(browser) == f"${answer['fare']:.2f}"
    assert waterfall(browser) == expected_waterfall(answer)
    assert "explain=1" in browser.find_element(By.ID, "curl").text  # the curl line asks what the page shows
    bars = browser.execute_script("""
        return [...document.querySelectorAll('#breakdown .step')].map((row) => {
          const bar = row.querySelector('.bar').getBoundingClientRect(), track = row.querySelector('.track');
          const box = track.getBoundingClientRect();
          return [bar.left - box.left, bar.right - box.left, box.width];
        });""")
    steps = list(answer["breakdown"].values())
    scale = bars[0][2] / max(np.cumsum(steps).max(), answer["fare"])  # pixels a dollar (no running total below 0)
    running = 0.0
    for (left, right, _), dollars in zip(bars, steps, strict=False):
        ends = sorted((running * scale, (running + dollars) * scale))
        assert left == pytest.approx(ends[0], abs=1.5) and right == pytest.approx(max(ends[1], ends[0] + 2), abs=1.5)
        running += dollars
    assert bars[-1][:2] == pytest.approx([0, answer["fare"] * scale], abs=1.5)  # the fare: from 0 to where all ended
    assert other_hosts(requested_urls(browser), live_server) == []
    save_screenshot(browser)


def test_unticked_the_form_shows_the_fare_alone(browser, live_server):
    from selenium.webdriver.common.by import By

    open_docs(browser, live_server)
    submit_form(browser)
    assert waterfall(browser)
    browser.find_element(By.ID, "explain").click()
    submit_form(browser)
    assert result_text(browser) == f"${api_fare(live_server, form_values(browser)):.2f}"
    assert browser.find_element(By.ID, "breakdown").get_attribute("hidden") and waterfall(browser) == []
    assert "explain" not in browser.find_element(By.ID, "curl").text


def spec_examples(spec: dict):
    """(operation, data-example key, value) for every example in the document, as /docs names them."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                for name, example in content.get("examples", {}).items():
                    yield f"{method} {path}", f"{method} {path} request {name}", example["value"]
            for status, response in operation["responses"].items():
                for content in response.get("content", {}).values():
                    for name, example in content.get("examples", {}).items():
                        yield f"{method} {path}", f"{method} {path} {status} {name}", example["value"]


def shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2)


def load_reference(driver, base_url: str, expand: bool = True) -> dict:
    """Open /docs, wait for its reference (all operations opened with "Expand all"); the spec it shows."""
    from selenium.webdriver.common.by import By

    with urllib.request.urlopen(base_url + "/openapi.json", timeout=10) as response:
        spec = json.load(response)
    open_docs(driver, base_url)
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#reference .endpoint"), "the API reference")
    if expand:
        driver.find_element(By.ID, "expand").click()
    return spec


def test_reference_shows_every_operation_parameter_and_example(browser, live_server):
    from selenium.webdriver.common.by import By

    spec = load_reference(browser, live_server)
    operations = {f"{method} {path}": operation
                  for path, methods in spec["paths"].items() for method, operation in methods.items()}
    shown_operations = [block.get_attribute("data-operation")
                        for block in browser.find_elements(By.CSS_SELECTOR, "#reference [data-operation]")]
    assert shown_operations == list(operations)
    for key, operation in operations.items():
        block = browser.find_element(By.CSS_SELECTOR, f'[data-operation="{key}"]')
        for parameter in operation.get("parameters", []):
            assert f"{parameter['name']}: {parameter['description']}" in block.text
        for status, response in operation["responses"].items():
            assert f"{status}: {response['description']}" in block.text
    examples = list(spec_examples(spec))
    assert {key.split(" ")[0] for key, _, _ in examples} == {"get", "post"}
    assert any("instances" in name for _, name, _ in examples) and any("bigquery" in name for _, name, _ in examples)
    for operation, name, value in examples:
        block = browser.find_element(By.CSS_SELECTOR, f'[data-operation="{operation}"] [data-example="{name}"] pre')
        assert block.text.strip() == shown(value).strip(), name


def click_try_it(driver, key: str) -> tuple[int, str]:
    """Click the "Try it" under the example `key`; the status and body the page shows."""
    from selenium.webdriver.common.by import By

    block = driver.find_element(By.CSS_SELECTOR, f'[data-try="{key}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", block)
    block.find_element(By.TAG_NAME, "button").click()
    answer = block.find_element(By.TAG_NAME, "pre")
    wait_for(driver, lambda d: answer.text.startswith("HTTP "), f"the answer to {key}")
    status_line, _, body = answer.text.partition("\n")
    return int(status_line.removeprefix("HTTP ")), body


def post(url: str, body: object, content_type: str) -> dict:
    data = (body if isinstance(body, str) else json.dumps(body)).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_try_it_gets_the_api_answer_for_every_post_example(browser, live_server):
    spec = load_reference(browser, live_server)
    tried = 0
    for path, operations in spec["paths"].items():
        operation = operations.get("post", {})
        url = live_server + path
        for parameter in operation.get("parameters", []):
            url = url.replace(f"{{{parameter['name']}}}", parameter["schema"]["example"])
        for content_type, content in operation.get("requestBody", {}).get("content", {}).items():
            for name, example in content["examples"].items():
                status, body = click_try_it(browser, f"post {path} request {name}")
                assert status == 200, (path, name, body)
                assert json.loads(body) == post(url, example["value"], content_type), (path, name)
                tried += 1
    assert tried >= 10


def test_try_it_on_the_read_endpoints(browser, live_server):
    spec = load_reference(browser, live_server)
    for path, operations in spec["paths"].items():
        if "get" in operations:
            status, body = click_try_it(browser, f"get {path} request")
            assert status == 200, (path, body)
    status, body = click_try_it(browser, "get /predict request")
    assert list(json.loads(body)) == ["fare"]


def click_map(driver, dx: int, dy: int) -> None:
    """Click the map `dx`, `dy` pixels from its centre, as a person would."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    ActionChains(driver).move_to_element_with_offset(driver.find_element(By.ID, "map"), dx, dy).click().perform()


def offset_of(driver, lat: float, lon: float) -> tuple[int, int]:
    """Pixels from the map's centre to a point, for click_map."""
    x, y = driver.execute_script("const size = map.getSize(), p = map.latLngToContainerPoint([arguments[0], "
                                 "arguments[1]]); return [p.x - size.x / 2, p.y - size.y / 2];", lat, lon)
    return round(x), round(y)


def wait_for_area(driver) -> None:
    wait_for(driver, lambda d: d.execute_script("return areaRings !== null"), "the service area from /model/area")


@pytest.mark.parametrize("coverage", [None, "80"], ids=["fare", "fare-and-range"])
def test_clicking_pickup_then_dropoff_prices_the_ride_on_the_route(browser, live_server, coverage):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_docs(browser, live_server)
    if coverage:
        Select(browser.find_element(By.ID, "range")).select_by_value(coverage)
    wait_for_area(browser)
    before = form_values(browser)
    browser.execute_script("document.getElementById('result').textContent = ''")
    pickup, dropoff = offset_of(browser, *CENTRAL_PARK), offset_of(browser, *PARK_SLOPE)
    click_map(browser, *pickup)
    after_pickup = form_values(browser)
    assert after_pickup["pickup_latitude"] != before["pickup_latitude"]
    assert after_pickup["dropoff_latitude"] == before["dropoff_latitude"]  # nothing priced until the dropoff
    assert result_text(browser) == ""
    click_map(browser, *dropoff)
    wait_for(browser, lambda d: result_text(d) not in ("", "…"), "the fare of the clicked ride")

    values = form_values(browser)
    clicked = browser.execute_script(
        "const size = map.getSize();"
        "return arguments[0].map(([dx, dy]) => map.containerPointToLatLng([size.x / 2 + dx, size.y / 2 + dy]));",
        [pickup, dropoff])
    for end, point in zip(("pickup", "dropoff"), clicked, strict=True):  # within 2 pixels (~0.003 degrees)
        assert float(values[f"{end}_latitude"]) == pytest.approx(point["lat"], abs=3e-3)
        assert float(values[f"{end}_longitude"]) == pytest.approx(point["lng"], abs=3e-3)
    query = {**values, **({"range": coverage} if coverage else {})}
    with urllib.request.urlopen(f"{live_server}/predict?{urllib.parse.urlencode(query)}", timeout=10) as response:
        answer = json.load(response)
    expected = f"${answer['fare']:.2f}"
    if coverage:
        expected += f" ({coverage}% range: ${answer['range']['low']:.2f} to ${answer['range']['high']:.2f})"
    assert result_text(browser) == expected
    assert browser.find_element(By.CSS_SELECTOR, "#map .route-label").text == expected
    assert waterfall(browser) == expected_waterfall(api_answer(live_server, {**query, "explain": "1"}))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map .leaflet-markers-pane path")) >= 6  # ends, landmarks
    assert other_hosts(requested_urls(browser), live_server) == []

    click_map(browser, 0, 0)  # a third click starts a new ride: the old route and its label go
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#map .route-label") == [], "the old label to fade")
    assert form_values(browser)["dropoff_latitude"] == values["dropoff_latitude"]


def test_without_tiles_the_map_shows_where_rides_can_be_priced(browser, live_server):
    """Offline the map still reads: the area shaded, the boroughs named, the airports marked, a legend."""
    from selenium.webdriver.common.by import By

    open_docs(browser, live_server)
    wait_for_area(browser)
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#map .place-label")) == 5, "the boroughs' names")
    names = sorted(label.text for label in browser.find_elements(By.CSS_SELECTOR, "#map .place-label"))
    assert names == ["BRONX", "BROOKLYN", "MANHATTAN", "QUEENS", "STATEN ISLAND"]
    landmarks = {label.text for label in browser.find_elements(By.CSS_SELECTOR, "#map .landmark")}
    assert {"JFK", "LaGuardia", "Newark Airport"} <= landmarks
    in_view = browser.execute_script(
        "const view = map.getBounds(); return [...document.querySelectorAll('#map .landmark')]"
        ".every((label) => { const box = label.getBoundingClientRect(), map_ = "
        "document.getElementById('map').getBoundingClientRect(); return box.left >= map_.left && "
        "box.right <= map_.right && box.top >= map_.top && box.bottom <= map_.bottom; });")
    assert in_view  # the three airports and Times Square are on screen at first
    shaded = browser.execute_script(
        "return [...document.querySelectorAll('#map .leaflet-overlay-pane path')]"
        ".filter((p) => p.getAttribute('fill-opacity') === '0.12').length")
    assert shaded == 1  # the service area: one shaded shape
    legend = browser.find_element(By.CSS_SELECTOR, "#map .legend").text
    for entry in ("pickup", "dropoff", "route", "where this model prices rides", "airport"):
        assert entry in legend
    assert "NYC Department of City Planning" in browser.find_element(By.CSS_SELECTOR,
                                                                      ".leaflet-control-attribution").text
    save_screenshot(browser)


@pytest.mark.parametrize("place", list(OUTSIDE_THE_AREA))
def test_a_click_outside_the_area_is_refused_on_the_page(browser, live_server, place):
    open_docs(browser, live_server)
    wait_for_area(browser)
    browser.execute_script("map.setView([40.75, -73.7], 9)")  # zoomed out: the Sound and the ocean in view
    before = form_values(browser)
    requested_urls(browser)
    click_map(browser, *offset_of(browser, *OUTSIDE_THE_AREA[place]))
    assert form_values(browser) == before
    assert browser.find_element("id", "result").get_attribute("class") == "error"
    assert "outside the area this model has rides from" in result_text(browser)
    assert not any("/predict" in url for url in requested_urls(browser))  # refused before any request


@pytest.mark.parametrize(("pickup", "dropoff"), [
    (CENTRAL_PARK, PARK_SLOPE),                    # southwards
    ((40.6413, -73.7781), (40.7580, -73.9855)),    # JFK to Times Square: westwards, onto a landmark
    ((40.7580, -73.9855), (40.7590, -73.9840)),    # 150 m: both ends under the label's width
])
def test_the_fare_label_never_hides_a_marker(browser, live_server, pickup, dropoff):
    from selenium.webdriver.common.by import By

    open_docs(browser, live_server)
    wait_for_area(browser)
    browser.execute_script("map.setView([40.72, -73.88], 11)")
    for point in (pickup, dropoff):
        click_map(browser, *offset_of(browser, *point))
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#map .route-label"), "the fare label")
    hidden = browser.execute_script("""
        const label = document.querySelector('#map .route-label');
        const markers = [...document.querySelectorAll('#map .leaflet-markers-pane path')];
        for (const element of [label, ...markers]) element.style.pointerEvents = 'auto';
        return markers.filter((marker) => {
          const box = marker.getBoundingClientRect();
          const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
          return top !== marker && label.contains(top);
        }).length;""")
    assert hidden == 0
    overlap = browser.execute_script("""
        const a = document.querySelector('#map .route-label').getBoundingClientRect();
        return [...document.querySelectorAll('#map .leaflet-markers-pane path')].slice(-2).some((marker) => {
          const b = marker.getBoundingClientRect();
          return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
        });""")
    assert not overlap  # beside the dropoff, away from the pickup: the ride's own ends stay clear of it
