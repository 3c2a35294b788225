"""GET /docs in a real headless Chromium (Debian's chromium + chromedriver, via Selenium).

The page must be self-contained (no request leaves the server's origin), render the API reference
from /openapi.json, and its "Get fare" form must show the same fare as GET /predict, or the
field-named error for a bad input. Needs `chromium` and `chromium-driver` (`make test` installs them
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
ABSOLUTE_URL = re.compile(r"""(?:\b(?:src|href|action|poster)\s*=\s*["']?|url\(\s*["']?|@import\s+["']?)"""
                          r"""((?:https?:)?//[^"'\s)>]+)""", re.IGNORECASE)

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


def open_docs(driver, base_url: str) -> None:
    driver.get_log("performance")  # drop what earlier tests left
    driver.get(base_url + "/docs")
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


def api_fare(base_url: str, values: dict[str, str]) -> float:
    with urllib.request.urlopen(f"{base_url}/predict?{urllib.parse.urlencode(values)}", timeout=10) as response:
        assert response.status == 200
        return json.load(response)["fare"]


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


def test_docs_page_is_self_contained(browser, live_server):
    with urllib.request.urlopen(live_server + "/docs", timeout=10) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "text/html"
        html = response.read().decode("utf-8")
    external = [url for url in ABSOLUTE_URL.findall(html)
                if urllib.parse.urlsplit(url if ":" in url.split("//")[0] else "http:" + url).hostname
                not in ("127.0.0.1", "localhost")]
    assert external == [], f"/docs links to other hosts: {external}"

    open_docs(browser, live_server)
    wait_for(browser, lambda d: "/health" in d.find_element("id", "reference").text, "the API reference")
    origin = urllib.parse.urlsplit(live_server)
    urls = requested_urls(browser)
    assert f"{live_server}/docs" in urls and f"{live_server}/openapi.json" in urls, urls
    network = [url for url in urls if urllib.parse.urlsplit(url).scheme not in INTERNAL_SCHEMES]
    elsewhere = [url for url in network if urllib.parse.urlsplit(url)[:2] != origin[:2]]
    assert elsewhere == [], f"/docs made requests outside {live_server}: {elsewhere}"
    errors = [e["message"] for e in browser.get_log("browser")
              if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
    assert errors == [], f"console errors on /docs: {errors}"


def test_api_reference_is_rendered_from_openapi_json(browser, live_server):
    from selenium.webdriver.common.by import By

    with urllib.request.urlopen(live_server + "/openapi.json", timeout=10) as response:
        spec = json.load(response)
    open_docs(browser, live_server)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#reference .endpoint"), "the API reference")
    assert browser.find_element(By.ID, "reference").text.startswith(spec["info"]["description"])
    titles = []
    for block in browser.find_elements(By.CSS_SELECTOR, "#reference .endpoint"):
        title = block.find_element(By.CSS_SELECTOR, "div")
        method, path = (title.find_element(By.CSS_SELECTOR, tag).text for tag in (".method", "code"))
        titles.append(f"{method} {path} {title.text.removeprefix(method).lstrip().removeprefix(path).strip()}")
    expected = [f"{method.upper()} {path} {operation['summary']}"
                for path, operations in spec["paths"].items() for method, operation in operations.items()]
    assert titles == expected
    assert any(t.startswith("GET /predict ") for t in titles) and any(t.startswith("POST /predict ") for t in titles)
    assert any(t.startswith("GET /health ") for t in titles)
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
